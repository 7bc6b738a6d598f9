import { type WasmMemory, type WasmModule } from '../wasm/wasm-api.ts';
/**
 * Layout of the control block shared by the pool and its workers (an Int32Array over one
 * SharedArrayBuffer, followed by a Float64Array of call arguments).
 */
export const SEQ = 0; // bumped once per dispatch; workers wait on it
export const FN = 1; // index of the wasm export to call
export const NTH = 2; // threads taking part in this dispatch
export const PENDING = 3; // workers still running; the caller waits on it
export const READY = 4; // workers that have instantiated the module
export const NARGS = 5;
export const STOP = 6;
export const ERROR = 7; // set by a worker whose call threw
/**
 * SLOT + ith: 1 while worker ith has a share of the current dispatch it has not started. A worker claims
 * its share by swapping 1 → 0; for job-taking kernels the caller, once out of jobs, revokes shares not yet
 * claimed the same way (their jobs are done), so it never waits for a worker the OS has not scheduled.
 */
export const SLOT = 8;
export const MAX_THREADS = 64;
export const CTRL_INTS = SLOT + MAX_THREADS;
export const MAX_ARGS = 40;
/**
 * How long (ms) a thread spins on the control word before sleeping in Atomics.wait: dispatch latency vs
 * cycles taken from other processes. Decoding dispatches a product every ~50–200 µs with small
 * single-threaded kernels in between; a worker that slept in the gap needs a futex wake-up (tens of µs,
 * more than a decode job) before it joins. A spin of a few hundred µs keeps it awake through a decode and
 * costs nothing once work stops. VISTA_SPIN_US overrides (0: sleep at once, after a few polls).
 */
export const SPIN_MS = Number(process.env.VISTA_SPIN_US ?? 250) / 1000;
/** polls of the control word between clock reads */
export const POLLS = 64;
/**
 * A gap this long (ms) between two clock reads of a spin means the thread was descheduled: more runnable
 * threads than free cores, where spinning only delays the thread it waits for. It then sleeps at once and
 * does not spin again for BACKOFF_MS.
 */
export const PREEMPTED_MS = 0.03;
export const BACKOFF_MS = 50;

export interface WorkerInit {
  ith: number;
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  args: SharedArrayBuffer;
  names: readonly string[];
}
