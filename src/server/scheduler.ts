/**
 * Serves many generations on one thread, one decode step at a time: active sequences take turns
 * round-robin (each `next()` of a generation is one forward pass, with its own KV cache), the rest wait in
 * a bounded queue. A sequence whose signal aborts (client gone, time limit) is ended at its next turn —
 * `return()` runs the generator's `finally`, which frees its cache — or dropped from the queue at once.
 *
 * @example
 * const s = new Scheduler({ maxActive: 4, maxQueue: 16 });
 * const ticket = s.admit();                  // throws HttpError 429 when full
 * for await (const ev of s.run(ticket, vlm.chat(messages, { signal }), signal)) send(ev);
 */
import { HttpError } from './errors.ts';

export interface SchedulerOptions {
  /** Sequences decoding at once (each holds a KV cache). */
  readonly maxActive: number;
  /** Admitted requests waiting for a decoding slot (beyond that: 429). */
  readonly maxQueue: number;
}

interface Seq<T> {
  readonly gen: AsyncGenerator<T, void, undefined>;
  readonly signal: AbortSignal;
  readonly push: (r: IteratorResult<T, void> | { error: unknown }) => void;
  /** The consumer went away: end the sequence at its next turn. */
  stopped: boolean;
  readonly ticket: Ticket;
}

/** A place in the scheduler, held from admission (before images are fetched) until the sequence ends. */
export interface Ticket {
  released: boolean;
}

export class Scheduler {
  private admitted = 0;
  private readonly active: Seq<unknown>[] = [];
  private readonly waiting: Seq<unknown>[] = [];
  private turn = 0;
  private running = false;
  /** Decode steps taken (all sequences). */
  steps = 0;

  constructor(readonly opts: SchedulerOptions) {}

  get stats(): { active: number; waiting: number; admitted: number } {
    return { active: this.active.length, waiting: this.waiting.length, admitted: this.admitted };
  }

  /** Take a place or throw 429 (with Retry-After) when active + queued requests are at the limit. */
  admit(): Ticket {
    if (this.admitted >= this.opts.maxActive + this.opts.maxQueue)
      throw new HttpError(429, `server busy: ${this.admitted} requests in progress or queued; retry later`, 'rate_limit_exceeded', null, { 'Retry-After': '1' });
    this.admitted++;
    return { released: false };
  }

  release(t: Ticket): void {
    if (t.released) return;
    t.released = true;
    this.admitted--;
  }

  /** Events of `gen`, produced in turn with the other sequences. Releases the ticket when done. */
  async *run<T>(ticket: Ticket, gen: AsyncGenerator<T, void, undefined>, signal: AbortSignal): AsyncGenerator<T, void, undefined> {
    const buffer: (IteratorResult<T, void> | { error: unknown })[] = [];
    let wake: (() => void) | null = null;
    const seq: Seq<T> = {
      gen, signal, ticket, stopped: false,
      push: (r) => {
        buffer.push(r);
        wake?.();
      },
    };
    this.waiting.push(seq as Seq<unknown>);
    this.pump();
    try {
      for (;;) {
        while (!buffer.length) await new Promise<void>((r) => (wake = r));
        wake = null;
        const r = buffer.shift()!;
        if ('error' in r) throw r.error;
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // the consumer stopped early: make sure the sequence ends (and frees its cache) at its next turn
      seq.stopped = true;
      this.release(ticket);
    }
  }

  private pump(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => (this.running = false));
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.dropAbortedWaiting();
      while (this.active.length < this.opts.maxActive && this.waiting.length) this.active.push(this.waiting.shift()!);
      if (!this.active.length) return;
      this.turn %= this.active.length;
      const seq = this.active[this.turn]!;
      let finished = false;
      if (seq.signal.aborted || seq.stopped) {
        // end it at once; generate's finally frees the KV cache
        await seq.gen.return(undefined).catch(() => undefined);
        seq.push({ done: true, value: undefined });
        finished = true;
      } else {
        try {
          const r = await seq.gen.next();
          this.steps++;
          seq.push(r);
          finished = !!r.done;
        } catch (error) {
          seq.push({ error });
          finished = true;
        }
      }
      if (finished) {
        this.active.splice(this.turn, 1);
        this.release(seq.ticket); // even if its consumer never reads again
      }
      else this.turn++;
      // let I/O (new requests, client writes, aborts) run between steps
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private dropAbortedWaiting(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const s = this.waiting[i]!;
      if (s.signal.aborted || s.stopped) {
        this.waiting.splice(i, 1);
        void s.gen.return(undefined).catch(() => undefined);
        s.push({ done: true, value: undefined });
        this.release(s.ticket);
      }
    }
  }
}
