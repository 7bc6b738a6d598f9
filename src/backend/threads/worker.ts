/**
 * Body of a pool worker. It runs as an `eval` worker built from `workerMain.toString()`: that works
 * the same from source under tsx (whose loader does not reach worker threads in Node 20) and from
 * compiled JS in dist, and needs no file next to the module. `workerMain` must therefore be
 * self-contained: no imports, no closures; the control-block layout is passed in.
 *
 * Loop: instantiate the kernels on the shared memory, report ready, then wait for dispatches — spin on
 * the sequence word for up to SPIN_MS, then sleep in Atomics.wait. Arguments travel as f64 (pointers and sizes
 * fit exactly); (ith, nth) are appended.
 */
import * as P from './protocol.ts';
import type { WorkerInit } from './protocol.ts';

type Kernel = (...args: number[]) => void;
type Layout = typeof P;

function workerMain(init: WorkerInit, L: Layout): void {
  const { ith, module, memory, names } = init;
  const ctrl = new Int32Array(init.ctrl);
  const args = new Float64Array(init.args);
  const WA = (globalThis as unknown as { WebAssembly: { Instance: new (m: unknown, i: unknown) => { exports: Record<string, unknown> } } }).WebAssembly;
  const inst = new WA.Instance(module, { env: { memory } });
  const fns = names.map((n) => inst.exports[n] as Kernel);
  let seq = Atomics.load(ctrl, L.SEQ);
  Atomics.add(ctrl, L.READY, 1);
  Atomics.notify(ctrl, L.READY);
  const call: number[] = [];
  let quietUntil = 0;
  for (;;) {
    let s: number;
    let polls = 0;
    let t0 = -1;
    let last = 0;
    while ((s = Atomics.load(ctrl, L.SEQ)) === seq) {
      if (++polls < L.POLLS) continue;
      polls = 0;
      const now = performance.now();
      if (t0 < 0) t0 = now;
      else if (now - t0 >= L.SPIN_MS || now < quietUntil || now - last >= L.PREEMPTED_MS) {
        // out of time, backing off, or descheduled between two clock reads (more threads than free cores)
        if (now - last >= L.PREEMPTED_MS) quietUntil = now + L.BACKOFF_MS;
        Atomics.wait(ctrl, L.SEQ, seq);
        t0 = -1;
      }
      last = now;
    }
    seq = s;
    if (Atomics.load(ctrl, L.STOP)) return;
    // claim this worker's share (revoked, or none in this dispatch: nothing to do)
    if (Atomics.compareExchange(ctrl, L.SLOT + ith, 1, 0) !== 1) continue;
    const nth = Atomics.load(ctrl, L.NTH);
    const n = ctrl[L.NARGS]!;
    call.length = 0;
    for (let i = 0; i < n; i++) call.push(args[i]!);
    call.push(ith, nth);
    try {
      fns[ctrl[L.FN]!]!(...call);
    } catch {
      Atomics.store(ctrl, L.ERROR, 1);
    }
    if (Atomics.sub(ctrl, L.PENDING, 1) === 1) Atomics.notify(ctrl, L.PENDING);
  }
}

/** Source of an eval worker running workerMain on its workerData. */
export function workerSource(): string {
  const layout: Record<string, number> = {};
  for (const [k, v] of Object.entries(P)) if (typeof v === 'number') layout[k] = v;
  return `(${workerMain.toString()})(require('node:worker_threads').workerData, ${JSON.stringify(layout)});`;
}
