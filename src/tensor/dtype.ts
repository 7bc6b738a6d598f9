/**
 * Storage types. `f32` tensors may be strided views; every other type is a weight storage format kept
 * contiguous, with quantization blocks running along the last dimension exactly as GGUF lays them out
 * (../shared/specs/gguf-multimodal.md §1.6): a row of `n` elements is `n / blockElems` blocks.
 */
export type DType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export interface BlockInfo {
  /** elements per block */
  readonly elems: number;
  /** bytes per block */
  readonly bytes: number;
}

export const BLOCKS: Readonly<Record<DType, BlockInfo>> = {
  f32: { elems: 1, bytes: 4 },
  f16: { elems: 1, bytes: 2 },
  bf16: { elems: 1, bytes: 2 },
  q8_0: { elems: 32, bytes: 34 },
  q4_0: { elems: 32, bytes: 18 },
};

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];

/** Bytes taken by `n` elements of `dtype` (n must be a multiple of the block size). */
export function byteSize(dtype: DType, n: number): number {
  const b = BLOCKS[dtype];
  return (n / b.elems) * b.bytes;
}

export function isQuantized(dtype: DType): boolean {
  return dtype !== 'f32';
}
