/**
 * Text-level stop strings for streamed output. Text that could still turn into a stop string is held
 * back; a stop string itself (and anything after it) is never released.
 *
 * @example
 * const s = new StopStrings(['\nUser:']);
 * s.push('Hi!\nUs');   // { text: 'Hi!', stop: null }     — '\nUs' may begin a stop string
 * s.push('er: x');     // { text: '', stop: '\nUser:' }
 */
import { InputError } from '../errors.ts';

export class StopStrings {
  private pending = '';
  private readonly maxLen: number;
  private stopped = false;

  constructor(readonly stops: readonly string[]) {
    for (const s of stops)
      if (typeof s !== 'string' || s === '') throw new InputError(`stop strings must be non-empty strings, got ${JSON.stringify(s)}`);
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  /**
   * Add text; returns what is now safe to emit and, when a stop string completed, which one (the text
   * before it is returned; nothing after it ever is).
   */
  push(text: string): { text: string; stop: string | null } {
    if (this.stopped) return { text: '', stop: null };
    if (!this.stops.length) return { text, stop: null };
    const p = this.pending + text;
    let at = -1;
    let hit: string | null = null;
    for (const s of this.stops) {
      const i = p.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        hit = s;
      }
    }
    if (hit !== null) {
      this.pending = '';
      this.stopped = true;
      return { text: p.slice(0, at), stop: hit };
    }
    const hold = this.heldLength(p);
    this.pending = p.slice(p.length - hold);
    return { text: p.slice(0, p.length - hold), stop: null };
  }

  /** Release held-back text (the output ended without completing a stop string). */
  flush(): string {
    const p = this.pending;
    this.pending = '';
    return this.stopped ? '' : p;
  }

  /** Length of the longest suffix of p that is a proper prefix of some stop string. */
  private heldLength(p: string): number {
    for (let len = Math.min(p.length, this.maxLen - 1); len > 0; len--) {
      const tail = p.slice(p.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) return len;
    }
    return 0;
  }
}
