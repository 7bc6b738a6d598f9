/**
 * Backend selection. `wasm` (SIMD kernels on a worker pool over one shared memory) is the default;
 * `VISTA_BACKEND=ref` selects the plain-TypeScript reference kernels and `VISTA_THREADS=n` the thread
 * count. Kernels the active backend does not support fall back to `ref` per call.
 */
import { ConfigError } from '../errors.ts';
import { installBackend, type Backend } from '../tensor/kernels.ts';
import { setAllocator } from '../tensor/storage.ts';
import { refBackend } from './ref/index.ts';
import { createWasmBackend } from './wasm/index.ts';
import { availableParallelism } from 'node:os';

export type BackendName = 'ref' | 'wasm';

let current: Backend | null = null;
// one wasm backend per thread count: each owns a shared memory and a worker pool, so switching back and
// forth (tests compare backends) must not build new ones
const wasmBackends = new Map<number, Backend>();

export interface BackendOptions {
  name?: BackendName;
  threads?: number;
}

/** Select and install a backend (idempotent for the same choice). Returns it. */
export function initBackend(opts: BackendOptions = {}): Backend {
  const name = opts.name ?? (process.env.VISTA_BACKEND as BackendName | undefined) ?? 'wasm';
  const envThreads = process.env.VISTA_THREADS ? Number(process.env.VISTA_THREADS) : undefined;
  const threads = opts.threads ?? envThreads ?? Math.min(availableParallelism(), 8);
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError(`VISTA_THREADS must be a positive integer, got ${threads}`);
  if (current && current.name === name && (name === 'ref' || current.threads === threads)) return current;
  let b: Backend;
  if (name === 'ref') b = refBackend;
  else if (name === 'wasm') {
    b = wasmBackends.get(threads) ?? createWasmBackend(threads);
    wasmBackends.set(threads, b);
  }
  else throw new ConfigError(`unknown backend '${name as string}' (expected ref or wasm)`);
  current = b;
  setAllocator(b.allocator);
  installBackend(b, refBackend);
  return b;
}

export { refBackend };
