/**
 * Body of a pool worker. It runs as an `eval` worker built from `workerMain.toString()`: that works
 * the same from source under tsx (whose loader does not reach worker threads in Node 20) and from
 * compiled JS in dist, and needs no file next to the module. `workerMain` must therefore be
 * self-contained: no imports, no closures; the control-block layout is passed in.
 *
 * Loop: instantiate the kernels on the shared memory, report ready, then wait for dispatches — spin
 * briefly on the sequence word, then sleep in Atomics.wait. Arguments travel as f64 (pointers and sizes
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
  for (;;) {
    let s: number;
    let spins = 0;
    while ((s = Atomics.load(ctrl, L.SEQ)) === seq) {
      if (++spins > L.SPIN) {
        Atomics.wait(ctrl, L.SEQ, seq);
        spins = 0;
      }
    }
    seq = s;
    if (Atomics.load(ctrl, L.STOP)) return;
    const nth = Atomics.load(ctrl, L.NTH);
    if (ith >= nth) continue;
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
