/**
 * ggml tensor types as they appear in GGUF tensor infos: ids (ggml/include/ggml.h `enum ggml_type`), block
 * geometry (ggml/src/ggml-common.h), and the mapping to vista's storage `DType` where one exists.
 * See ../shared/specs/gguf-multimodal.md §1.6.
 */
import type { DType } from '../tensor/dtype.ts';

/** ggml type ids. Ids 4, 5, 31–33 and 36–38 were removed upstream and never appear in valid files. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export interface GGMLTypeTraits {
  /** elements per block (1 for plain scalar types) */
  readonly blockElems: number;
  /** bytes per block */
  readonly blockBytes: number;
}

const QK_K = 256;

/** Block geometry of every type a GGUF file may declare (packed struct sizes from ggml-common.h). */
export const GGML_TYPES: Readonly<Record<GGMLType, GGMLTypeTraits>> = {
  [GGMLType.F32]: { blockElems: 1, blockBytes: 4 },
  [GGMLType.F16]: { blockElems: 1, blockBytes: 2 },
  [GGMLType.Q4_0]: { blockElems: 32, blockBytes: 18 },
  [GGMLType.Q4_1]: { blockElems: 32, blockBytes: 20 },
  [GGMLType.Q5_0]: { blockElems: 32, blockBytes: 22 },
  [GGMLType.Q5_1]: { blockElems: 32, blockBytes: 24 },
  [GGMLType.Q8_0]: { blockElems: 32, blockBytes: 34 },
  [GGMLType.Q8_1]: { blockElems: 32, blockBytes: 36 },
  [GGMLType.Q2_K]: { blockElems: QK_K, blockBytes: 84 },
  [GGMLType.Q3_K]: { blockElems: QK_K, blockBytes: 110 },
  [GGMLType.Q4_K]: { blockElems: QK_K, blockBytes: 144 },
  [GGMLType.Q5_K]: { blockElems: QK_K, blockBytes: 176 },
  [GGMLType.Q6_K]: { blockElems: QK_K, blockBytes: 210 },
  [GGMLType.Q8_K]: { blockElems: QK_K, blockBytes: 292 },
  [GGMLType.IQ2_XXS]: { blockElems: QK_K, blockBytes: 66 },
  [GGMLType.IQ2_XS]: { blockElems: QK_K, blockBytes: 74 },
  [GGMLType.IQ3_XXS]: { blockElems: QK_K, blockBytes: 98 },
  [GGMLType.IQ1_S]: { blockElems: QK_K, blockBytes: 50 },
  [GGMLType.IQ4_NL]: { blockElems: 32, blockBytes: 18 },
  [GGMLType.IQ3_S]: { blockElems: QK_K, blockBytes: 110 },
  [GGMLType.IQ2_S]: { blockElems: QK_K, blockBytes: 82 },
  [GGMLType.IQ4_XS]: { blockElems: QK_K, blockBytes: 136 },
  [GGMLType.I8]: { blockElems: 1, blockBytes: 1 },
  [GGMLType.I16]: { blockElems: 1, blockBytes: 2 },
  [GGMLType.I32]: { blockElems: 1, blockBytes: 4 },
  [GGMLType.I64]: { blockElems: 1, blockBytes: 8 },
  [GGMLType.F64]: { blockElems: 1, blockBytes: 8 },
  [GGMLType.IQ1_M]: { blockElems: QK_K, blockBytes: 56 },
  [GGMLType.BF16]: { blockElems: 1, blockBytes: 2 },
  [GGMLType.TQ1_0]: { blockElems: QK_K, blockBytes: 54 },
  [GGMLType.TQ2_0]: { blockElems: QK_K, blockBytes: 66 },
  [GGMLType.MXFP4]: { blockElems: 32, blockBytes: 17 },
};

/** Whether `id` is a ggml type id a GGUF file may legitimately use. */
export function isGGMLType(id: number): id is GGMLType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPES, id);
}

/** Upper-case name as in gguf-py (`Q4_K`, `BF16`), or `type<id>` for unknown ids. */
export function ggmlTypeName(type: number): string {
  return isGGMLType(type) ? GGMLType[type] : `type${type}`;
}

/** Bytes taken by a tensor of `ne` (ggml order) elements of `type`; ne[0] must be a multiple of the block. */
export function ggmlByteSize(type: GGMLType, ne: readonly number[]): number {
  const t = GGML_TYPES[type];
  let n = 1;
  for (const d of ne) n *= d;
  return (n / t.blockElems) * t.blockBytes;
}

const TO_DTYPE: Partial<Record<GGMLType, DType>> = {
  [GGMLType.F32]: 'f32',
  [GGMLType.F16]: 'f16',
  [GGMLType.BF16]: 'bf16',
  [GGMLType.Q8_0]: 'q8_0',
  [GGMLType.Q4_0]: 'q4_0',
};

/** The vista storage dtype with the same byte layout, or undefined when vista has none. */
export function ggmlToDType(type: GGMLType): DType | undefined {
  return TO_DTYPE[type];
}

/** The ggml type id of a vista dtype (every vista dtype is a GGUF layout). */
export function dtypeToGGML(dtype: DType): GGMLType {
  switch (dtype) {
    case 'f32':
      return GGMLType.F32;
    case 'f16':
      return GGMLType.F16;
    case 'bf16':
      return GGMLType.BF16;
    case 'q8_0':
      return GGMLType.Q8_0;
    case 'q4_0':
      return GGMLType.Q4_0;
  }
}
