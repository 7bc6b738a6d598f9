/**
 * The `wasm` backend: AssemblyScript SIMD kernels (asm/, built into build/wasm/) on a worker pool over
 * one shared WasmMemory that is also the tensors' arena, so kernels read tensors in place.
 * Creation is synchronous: the module is compiled with `new WasmModule` and the workers start
 * in the background; the first multi-threaded dispatch waits for them.
 *
 * Kernels the wasm code does not implement report `supports() === false` and vista runs the reference
 * kernel instead. Arrays that are not in the arena (heap tensors made before the backend was chosen,
 * user buffers) are staged through scratch copies: correct, slower.
 */
import type { Backend, KernelName, MatmulParams } from '../../tensor/kernels.ts';
import type { DType } from '../../tensor/dtype.ts';
import { refBackend } from '../ref/index.ts';
import { ThreadPool } from '../threads/pool.ts';
import { WasmArena } from './arena.ts';
import { compileKernels, type WasmFlavour } from './loader.ts';
import { Stager } from './stage.ts';
import { matmul, matmulShared } from './matmul.ts';
import { JOBS_ADDR, KERNELS, type Kernels } from './kernels.ts';
import { ops, SUPPORTED } from './ops.ts';
import { WA } from './wasm-api.ts';

export interface WasmBackendOptions {
  /** 'auto' (default): relaxed SIMD when the runtime accepts it, else plain SIMD */
  flavour?: WasmFlavour | 'auto';
  /** memory limit in 64 KiB pages (default: the wasm32 maximum, 4 GiB) */
  maxPages?: number;
}

export interface WasmFeatures {
  simd: true;
  relaxedSimd: boolean;
  threads: number;
  flavour: WasmFlavour;
}

export interface WasmBackend extends Backend {
  readonly features: WasmFeatures;
  readonly arena: WasmArena;
  /** stop the worker threads (optional: they never keep the process alive) */
  close(): void;
}

// low memory kept out of the arena: [0, 64 KiB) = null page, job counter (256) and the compiler's static
// data (from 4096, checked below); then the f16→f32 table (256 KiB)
const RESERVED = 64 * 1024 + 256 * 1024;

export function createWasmBackend(threads: number, opts: WasmBackendOptions = {}): WasmBackend {
  const { module, flavour } = compileKernels(opts.flavour ?? 'auto');
  const maxPages = opts.maxPages ?? 65536;
  const memory = new WA.Memory({ initial: Math.min(maxPages, 256), maximum: maxPages, shared: true });
  const instance = new WA.Instance(module, { env: { memory } });
  const dataEnd = (instance.exports.data_end as () => number)();
  if (dataEnd > 65536) throw new Error(`internal: wasm static data ends at ${dataEnd}, past the f16 table at 65536`);
  (instance.exports.f16_table_init as () => void)();
  const arena = new WasmArena(memory, RESERVED, maxPages);
  const zero = instance.exports.zero_bytes as (p: number, n: number) => void;
  arena.zero = (off, n) => zero(off, n);
  const pool = new ThreadPool(threads, module, memory, instance.exports, KERNELS);
  const k: Kernels = { pool, arena, exports: instance.exports, stager: new Stager(arena), threads,
    jobs: new Int32Array(memory.buffer as SharedArrayBuffer, JOBS_ADDR, 1) };
  const features: WasmFeatures = { simd: true, relaxedSimd: flavour === 'relaxed', threads, flavour };
  const impl = ops(k);
  const backend: WasmBackend = {
    ...refBackend,
    ...impl,
    name: 'wasm',
    threads,
    allocator: arena,
    features,
    arena,
    supports(kernel: KernelName, dtypes: readonly DType[]): boolean {
      if (kernel === 'matmul' || kernel === 'matmulShared') return true;
      return SUPPORTED.has(kernel) && dtypes.every((d) => d === 'f32');
    },
    matmul(p: MatmulParams): void {
      matmul(k, p);
    },
    matmulShared(ps: readonly MatmulParams[]): void {
      matmulShared(k, ps);
    },
    close(): void {
      pool.close();
    },
  };
  return backend;
}
