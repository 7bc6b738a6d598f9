/**
 * A pool of `threads - 1` worker_threads running the same wasm module on the same shared memory; the
 * calling thread takes share 0. `run` is synchronous: it publishes (kernel, args) in a shared control
 * block, wakes the workers, does its own share and waits for theirs (spin up to SPIN_MS, then Atomics.wait).
 * Workers are unref()-ed: they never keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import { workerSource } from './worker.ts';
import { CTRL_INTS, ERROR, FN, MAX_ARGS, NARGS, BACKOFF_MS, MAX_THREADS, NTH, PENDING, POLLS, PREEMPTED_MS, READY, SEQ, SLOT, SPIN_MS, STOP, type WorkerInit } from './protocol.ts';
import { type WasmExports, type WasmMemory, type WasmModule } from '../wasm/wasm-api.ts';

type Kernel = (...args: number[]) => void;

const READY_TIMEOUT_MS = 60_000;

export class ThreadPool {
  readonly threads: number;
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly fns: Kernel[];
  private ready: boolean;
  private readonly call: number[] = [];
  private workerError: Error | null = null;
  /** no spinning before this time (performance.now()): this thread was descheduled while spinning */
  private quietUntil = 0;

  /** `exports` are the caller's own instance of `module`; `names` the kernels dispatchable by index. */
  constructor(threads: number, module: WasmModule, memory: WasmMemory,
    exports: WasmExports, readonly names: readonly string[]) {
    if (threads > MAX_THREADS) throw new Error(`vista wasm backend: at most ${MAX_THREADS} threads, got ${threads}`);
    this.threads = threads;
    const ctrlBuf = new SharedArrayBuffer(CTRL_INTS * 4);
    const argsBuf = new SharedArrayBuffer(MAX_ARGS * 8);
    this.ctrl = new Int32Array(ctrlBuf);
    this.args = new Float64Array(argsBuf);
    this.fns = names.map((n) => {
      const f = exports[n];
      if (typeof f !== 'function') throw new Error(`internal: wasm module has no export '${n}'`);
      return f as Kernel;
    });
    this.ready = threads <= 1;
    const source = workerSource();
    for (let ith = 1; ith < threads; ith++) {
      const init: WorkerInit = { ith, module, memory, ctrl: ctrlBuf, args: argsBuf, names };
      const w = new Worker(source, { eval: true, workerData: init, execArgv: [] });
      w.on('error', (e) => {
        this.workerError = e instanceof Error ? e : new Error(String(e));
      });
      w.unref();
      this.workers.push(w);
    }
  }

  private waitReady(): void {
    const want = this.threads - 1;
    const t0 = Date.now();
    for (;;) {
      const r = Atomics.load(this.ctrl, READY);
      if (r >= want) break;
      if (this.workerError) throw new Error(`vista wasm backend: a worker failed to start: ${this.workerError.message}`);
      if (Date.now() - t0 > READY_TIMEOUT_MS)
        throw new Error(`vista wasm backend: only ${r} of ${want} worker threads started within ${READY_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.ctrl, READY, r, 50);
    }
    this.ready = true;
  }

  /**
   * Run kernel `fn` (index into names) as fn(...args, ith, nth) on `nth` threads (≤ threads). `jobs`: the
   * kernel takes jobs from a shared counter until none are left, so the calling thread alone finishes it
   * and shares that workers have not started by then are revoked.
   */
  run(fn: number, args: readonly number[], nth = this.threads, jobs = false): void {
    nth = Math.max(1, Math.min(nth, this.threads));
    const call = this.call;
    call.length = 0;
    for (const a of args) call.push(a);
    if (nth === 1) {
      call.push(0, 1);
      this.fns[fn]!(...call);
      return;
    }
    if (!this.ready) this.waitReady();
    const ctrl = this.ctrl;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i]!;
    ctrl[NARGS] = args.length;
    ctrl[FN] = fn;
    Atomics.store(ctrl, NTH, nth);
    Atomics.store(ctrl, PENDING, nth - 1);
    for (let i = 1; i < nth; i++) Atomics.store(ctrl, SLOT + i, 1);
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    call.push(0, nth);
    let err: unknown = null;
    try {
      this.fns[fn]!(...call);
    } catch (e) {
      err = e;
    }
    // shares not started yet: revoked (jobs kernels), or waited for asleep (the worker may need this core)
    let unstarted = false;
    for (let i = 1; i < nth; i++) {
      if (jobs && Atomics.compareExchange(ctrl, SLOT + i, 1, 0) === 1) Atomics.sub(ctrl, PENDING, 1);
      else if (Atomics.load(ctrl, SLOT + i) === 1) unstarted = true;
    }
    let polls = 0;
    let t0 = -1;
    let last = 0;
    for (;;) {
      const p = Atomics.load(ctrl, PENDING);
      if (p === 0) break;
      if (++polls < POLLS) continue;
      polls = 0;
      const now = performance.now();
      if (t0 < 0) t0 = now;
      else if (unstarted || now - t0 >= SPIN_MS || now < this.quietUntil || now - last >= PREEMPTED_MS) {
        if (now - last >= PREEMPTED_MS) this.quietUntil = now + BACKOFF_MS;
        Atomics.wait(ctrl, PENDING, p, 100);
        if (this.workerError) throw new Error(`vista wasm backend: worker died: ${this.workerError.message}`);
        t0 = -1;
      }
      last = now;
    }
    if (err) throw err;
    if (Atomics.load(ctrl, ERROR)) {
      Atomics.store(ctrl, ERROR, 0);
      throw new Error(`vista wasm backend: kernel '${this.names[fn]}' failed in a worker thread`);
    }
  }

  /** Stop the workers (tests; the process can exit without it). */
  close(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, SEQ, 1);
    Atomics.notify(this.ctrl, SEQ);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }
}
