/**
 * GGUF metadata value types and the shapes of parsed / to-be-written files (spec §1.1–1.3).
 * Re-exported from `gguf.ts`; import from there.
 */
import type { GGMLType } from './ggml-types.ts';

/** Metadata value type ids (gguf.h `enum gguf_type`). */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** 64-bit integers are numbers when they are safe integers, bigints otherwise. */
export type GGUFScalar = number | bigint | boolean | string;
/** Arrays decode to plain JS arrays of scalars (GGUF has no nested arrays in practice; the C reader rejects them). */
export type GGUFValue = GGUFScalar | GGUFScalar[];

export interface GGUFTypeInfo {
  type: GGUFValueType;
  /** element type, only when `type` is ARRAY */
  arrayType?: GGUFValueType;
}

export interface GGUFTensorInfo {
  name: string;
  /** dims in ggml order: ne[0] is the contiguous row length */
  ne: number[];
  /** `ne` reversed (PyTorch order) */
  shape: number[];
  type: GGMLType;
  /** `GGMLType[type]`, e.g. `Q4_K` */
  typeName: string;
  /** byte offset relative to the data blob (`GGUFFile.dataOffset`) */
  offset: number;
  byteSize: number;
}

export interface GGUFFile {
  version: number;
  alignment: number;
  /** absolute byte offset of the tensor data blob */
  dataOffset: number;
  /** key → value in file order (a null-prototype object, so any key is safe) */
  metadata: Record<string, GGUFValue>;
  metadataTypes: Record<string, GGUFTypeInfo>;
  /** tensor infos in file order */
  tensors: GGUFTensorInfo[];
  /** the whole file (tensor data is read from here without copying) */
  bytes: Uint8Array;
}

export interface GGUFWriteTensor {
  name: string;
  /** PyTorch order (the writer stores it reversed as ggml `ne`) */
  shape: number[];
  type: GGMLType;
  /** exactly the tensor's bytes in ggml block layout */
  data: Uint8Array;
}

export interface GGUFWriteInput {
  metadata: Record<string, GGUFValue>;
  /** explicit value types per key; keys not listed get the default inference (see `writeGGUF`) */
  metadataTypes?: Record<string, GGUFTypeInfo>;
  tensors: GGUFWriteTensor[];
  /** data alignment; default `metadata['general.alignment']` or 32 */
  alignment?: number;
}

/** Byte size of fixed-size value types (STRING and ARRAY are variable). */
export const GGUF_VALUE_SIZE: Readonly<Partial<Record<GGUFValueType, number>>> = {
  [GGUFValueType.UINT8]: 1,
  [GGUFValueType.INT8]: 1,
  [GGUFValueType.UINT16]: 2,
  [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4,
  [GGUFValueType.INT32]: 4,
  [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT64]: 8,
  [GGUFValueType.INT64]: 8,
  [GGUFValueType.FLOAT64]: 8,
};

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** gguf.cpp limits */
export const GGUF_MAX_STRING = 1 << 30;
export const GGUF_MAX_ARRAY = 1 << 30;
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

const INTEGER_TYPES = new Set([
  GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16, GGUFValueType.UINT32,
  GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64,
]);

export function isIntegerType(t: GGUFValueType): boolean {
  return INTEGER_TYPES.has(t);
}

export function valueTypeName(t: number): string {
  return GGUFValueType[t] ?? `type${t}`;
}
