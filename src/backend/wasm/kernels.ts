/** The wasm exports the thread pool dispatches, and what the JS kernel wrappers share. */
import type { ThreadPool } from '../threads/pool.ts';
import type { WasmArena } from './arena.ts';
import type { Stager } from './stage.ts';
import { type WasmExports } from './wasm-api.ts';

export const KERNELS = [
  'gemm_f32', 'gemv_rows', 'gemv_cols', 'quant_rows_q8', 'round_rows', 'qmm', 'hmm',
  'softmax_rows', 'softmax_bwd_rows', 'rmsnorm_rows', 'layernorm_rows', 'layernorm_bwd_rows', 'rmsnorm_bwd_rows',
  'norm_param_grads', 'attention_fwd', 'adamw_step', 'binary_rows', 'unary_f32', 'affine_f32', 'unary_f64', 'unary_bwd_f64',
  'copy_strided', 'reduce_dim', 'rope_f32', 'cross_entropy', 'qmv_q8', 'unary_bwd_f32',
] as const;

export type KernelId = (typeof KERNELS)[number];

export const K: { readonly [N in KernelId]: number } = Object.fromEntries(KERNELS.map((n, i) => [n, i])) as never;

export interface Kernels {
  pool: ThreadPool;
  arena: WasmArena;
  exports: WasmExports;
  stager: Stager;
  threads: number;
  /** the job counter of asm/common.ts (JOBS): zero it before dispatching a kernel that takes jobs */
  jobs: Int32Array;
  /** whether the build has the fused q8_0 decode kernel (asked once) */
  qmv?: boolean;
}

export const JOBS_ADDR = 256;

/**
 * Kernels whose threads only take jobs (nextJob) until none are left: one thread can finish them alone, so
 * the pool may revoke shares a worker has not started. (gemv_cols zeroes the counter but splits by ith.)
 */
const JOB_ONLY = new Set<number>(['gemm_f32', 'gemv_rows', 'qmm', 'hmm', 'qmv_q8'].map((n) => KERNELS.indexOf(n as KernelId)));

/** dispatch a kernel whose threads take jobs from the shared counter */
export function runJobs(k: Kernels, fn: number, args: number[], nth: number): void {
  Atomics.store(k.jobs, 0, 0);
  k.pool.run(fn, args, nth, JOB_ONLY.has(fn));
}

/** threads worth using for `work` units (≈ flops or bytes): dispatch costs a few µs */
export function threadsFor(k: Kernels, work: number, minPerThread = 262144): number {
  return Math.max(1, Math.min(k.threads, Math.floor(work / minPerThread)));
}
