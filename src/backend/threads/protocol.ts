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
export const CTRL_INTS = 16;
export const MAX_ARGS = 40;
/**
 * Spins on the control word before sleeping in Atomics.wait: dispatch latency vs cycles taken from
 * other threads. Kept short: on a shared 2-core machine long spins measured slower (VISTA_SPIN overrides).
 */
export const SPIN = Number(process.env.VISTA_SPIN ?? 256);

export interface WorkerInit {
  ith: number;
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  args: SharedArrayBuffer;
  names: readonly string[];
}
