/**
 * A pool of `threads - 1` worker_threads running the same wasm module on the same shared memory; the
 * calling thread takes share 0. `run` is synchronous: it publishes (kernel, args) in a shared control
 * block, wakes the workers, does its own share and waits for theirs (spin, then Atomics.wait).
 * Workers are unref()-ed: they never keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import { workerSource } from './worker.ts';
import { CTRL_INTS, ERROR, FN, MAX_ARGS, NARGS, NTH, PENDING, READY, SEQ, SPIN, STOP, type WorkerInit } from './protocol.ts';
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

  /** `exports` are the caller's own instance of `module`; `names` the kernels dispatchable by index. */
  constructor(threads: number, module: WasmModule, memory: WasmMemory,
    exports: WasmExports, readonly names: readonly string[]) {
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

  /** Run kernel `fn` (index into names) as fn(...args, ith, nth) on `nth` threads (≤ threads). */
  run(fn: number, args: readonly number[], nth = this.threads): void {
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
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    call.push(0, nth);
    let err: unknown = null;
    try {
      this.fns[fn]!(...call);
    } catch (e) {
      err = e;
    }
    let spins = 0;
    for (;;) {
      const p = Atomics.load(ctrl, PENDING);
      if (p === 0) break;
      if (++spins > SPIN) {
        Atomics.wait(ctrl, PENDING, p, 100);
        spins = 0;
        if (this.workerError) throw new Error(`vista wasm backend: worker died: ${this.workerError.message}`);
      }
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
