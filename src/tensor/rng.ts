/**
 * Seeded, deterministic random numbers (PCG32, O'Neill 2014): the same seed gives the same stream on every
 * machine and backend. Normal samples use Box–Muller in f64.
 */
export class Rng {
  private state: bigint;
  private readonly inc: bigint;
  private spare: number | null = null;

  constructor(seed: number | bigint = 0, stream: number | bigint = 54) {
    this.inc = ((BigInt(stream) << 1n) | 1n) & 0xffffffffffffffffn;
    this.state = 0n;
    this.nextU32();
    this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & 0xffffffffffffffffn;
    this.nextU32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & 0xffffffffffffffffn;
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** Snapshot of the generator state (for exact resume). */
  getState(): string {
    return `${this.state.toString(16)}:${this.spare ?? ''}`;
  }
  setState(s: string): void {
    const [st, sp] = s.split(':');
    this.state = BigInt(`0x${st}`);
    this.spare = sp ? Number(sp) : null;
  }
}
