/**
 * Seeded, deterministic random numbers: xoshiro128** (Blackman & Vigna 2018) seeded through splitmix32,
 * all in 32-bit integer arithmetic (fast in JS, no BigInt). The same seed gives the same stream on every
 * machine and backend. Normal samples use Box–Muller in f64.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  constructor(seed: number | bigint = 0, stream: number | bigint = 54) {
    let x = (Number(BigInt.asUintN(32, BigInt(seed))) ^ Math.imul(Number(BigInt.asUintN(32, BigInt(stream))), 0x9e3779b9)) >>> 0;
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
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
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0].map((v) => v.toString(16)).join(',') + `:${this.spare ?? ''}`;
  }
  setState(s: string): void {
    const [st, sp] = s.split(':');
    const parts = (st ?? '').split(',').map((h) => parseInt(h, 16));
    if (parts.length !== 4 || parts.some((v) => !Number.isFinite(v))) throw new Error(`internal: bad RNG state '${s}'`);
    [this.s0, this.s1, this.s2, this.s3] = parts.map((v) => v | 0) as [number, number, number, number];
    this.spare = sp ? Number(sp) : null;
  }
}
