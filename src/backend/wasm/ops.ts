/** Non-matmul kernels of the wasm backend (filled in as they land). */
import type { Backend, KernelName } from '../../tensor/kernels.ts';
import type { Kernels } from './kernels.ts';

export const SUPPORTED = new Set<KernelName>([]);

export function ops(k: Kernels): Partial<Backend> {
  void k;
  return {};
}
