/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, format section of its README):
 * `u64 LE header length N` ; `N bytes of UTF-8 JSON` ; data. The JSON maps tensor name →
 * `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the data start) plus an optional
 * `__metadata__` string→string map. Validation matches the Rust crate's `Metadata::validate`: header ≤ 100 MB,
 * starts with `{`, tensors tile the data buffer exactly (sorted by offset, no gaps, no overlap, nothing left
 * over), and `numel × dtype size = end − begin`. HF tensor names are kept verbatim.
 *
 * @example
 *   const st = readSafetensors(bytes);
 *   const w = safetensorsToTensor(st, st.tensors.find((t) => t.name === 'model.embed_tokens.weight')!); // bf16 [V, E]
 */
import { ModelFormatError } from '../errors.ts';
import type { DType } from '../tensor/dtype.ts';
import { dequantizeRow } from '../tensor/quant.ts';
import { Tensor } from '../tensor/tensor.ts';

export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

/** Bytes per element. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export interface SafetensorsTensorInfo {
  /** the name exactly as in the file (HF spelling) */
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** byte offset relative to `dataOffset` */
  offset: number;
  byteSize: number;
}

export interface SafetensorsFile {
  /** `__metadata__` (empty when absent); a null-prototype object */
  metadata: Record<string, string>;
  /** tensors in data (offset) order */
  tensors: SafetensorsTensorInfo[];
  /** absolute byte offset of the data buffer (8 + header length) */
  dataOffset: number;
  bytes: Uint8Array;
}

export interface SafetensorsWriteTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}

/** Same bound as the Rust crate (`MAX_HEADER_SIZE`). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

const fail = (msg: string): never => {
  throw new ModelFormatError(`safetensors: ${msg}`);
};
const isDType = (d: unknown): d is SafetensorsDType => typeof d === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, d);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEntry(name: string, v: unknown): SafetensorsTensorInfo {
  if (!isObject(v)) return fail(`tensor "${name}": expected an object with dtype, shape and data_offsets, got ${JSON.stringify(v)}`);
  const { dtype, shape, data_offsets: offs } = v;
  if (!isDType(dtype)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0))
    fail(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(offs) || offs.length !== 2 || offs.some((o) => !Number.isSafeInteger(o) || (o as number) < 0) || offs[0] > offs[1])
    fail(`tensor "${name}": data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(offs)}`);
  const dims = shape as number[];
  const numel = dims.reduce((a, b) => a * b, 1);
  const byteSize = (offs as number[])[1]! - (offs as number[])[0]!;
  if (numel * SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDType] !== byteSize)
    fail(`tensor "${name}": ${dtype as string} [${dims.join(', ')}] needs ${numel * SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDType]} bytes but data_offsets ${JSON.stringify(offs)} span ${byteSize}`);
  return { name, dtype: dtype as SafetensorsDType, shape: [...dims], offset: (offs as number[])[0]!, byteSize };
}

/** Parse the header and check every tensor's extent. Tensor data is not copied (see `safetensorsData`). */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) fail(`file of ${bytes.byteLength} bytes is shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) fail(`header length ${n} exceeds the ${SAFETENSORS_MAX_HEADER}-byte limit (at byte offset 0)`);
  if (8n + n > BigInt(bytes.byteLength)) fail(`header length ${n} runs past the end of the ${bytes.byteLength}-byte file (at byte offset 0)`);
  const dataOffset = 8 + Number(n);
  const headerBytes = bytes.subarray(8, dataOffset);
  if (headerBytes[0] !== 0x7b) fail(`header must start with "{" (at byte offset 8)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(`header (bytes 8..${dataOffset}) is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) return fail('header must be a JSON object');

  const metadata = Object.create(null) as Record<string, string>;
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(v)) fail(`__metadata__ must be an object of strings, got ${JSON.stringify(v)}`);
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`__metadata__["${k}"] must be a string, got ${JSON.stringify(s)}`);
        metadata[k] = s as string;
      }
      continue;
    }
    tensors.push(parseEntry(name, v));
  }
  // the tensors must tile the data buffer: sorted by begin, each starting where the previous ended
  tensors.sort((a, b) => a.offset - b.offset || a.byteSize - b.byteSize);
  const dataLen = bytes.byteLength - dataOffset;
  let end = 0;
  for (const t of tensors) {
    if (t.offset !== end)
      fail(`tensor "${t.name}" starts at data offset ${t.offset} but the previous tensor ends at ${end} (tensors must be contiguous, without gaps or overlap)`);
    end = t.offset + t.byteSize;
    if (end > dataLen) fail(`tensor "${t.name}" ends at data offset ${end}, past the ${dataLen}-byte data buffer at byte offset ${dataOffset}`);
  }
  if (end !== dataLen) fail(`tensors cover ${end} bytes but the data buffer has ${dataLen} (trailing bytes after the last tensor)`);
  return { metadata, tensors, dataOffset, bytes };
}

/** The bytes of one tensor (a subarray of `file.bytes`, no copy). */
export function safetensorsData(file: SafetensorsFile, info: SafetensorsTensorInfo): Uint8Array {
  const start = file.dataOffset + info.offset;
  if (start + info.byteSize > file.bytes.byteLength) fail(`tensor "${info.name}" lies past the end of the file`);
  return file.bytes.subarray(start, start + info.byteSize);
}

const NATIVE: Partial<Record<SafetensorsDType, DType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/**
 * A float tensor as a vista `Tensor` (copied), shape as stored. F32/F16/BF16 keep their dtype unless
 * `keep: 'f32'`, which decodes F16/BF16 to f32. Integer dtypes are not tensors in vista: use `safetensorsToArray`.
 */
export function safetensorsToTensor(file: SafetensorsFile, info: SafetensorsTensorInfo, opts: { keep?: 'native' | 'f32' } = {}): Tensor {
  const dtype = NATIVE[info.dtype];
  if (!dtype) return fail(`tensor "${info.name}" has dtype ${info.dtype}; only F32, F16 and BF16 become tensors (use safetensorsToArray)`);
  const bytes = safetensorsData(file, info);
  let t: Tensor;
  if (dtype === 'f32' || (opts.keep ?? 'native') === 'native') t = Tensor.fromBytes(bytes, info.shape, dtype);
  else {
    t = Tensor.empty(info.shape);
    dequantizeRow(dtype, bytes, 0, t.size, t.data, t.offset);
  }
  t.name = info.name;
  return t;
}

export type SafetensorsArray =
  | Float64Array | Float32Array | BigInt64Array | BigUint64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/**
 * A copy of a tensor's values as a typed array of its dtype (F16/BF16 decoded to Float32Array, BOOL as 0/1
 * Uint8Array). F8 types are returned as raw bytes.
 */
export function safetensorsToArray(file: SafetensorsFile, info: SafetensorsTensorInfo): SafetensorsArray {
  const raw = safetensorsData(file, info).slice(); // copy: aligned, independent of the file
  const b = raw.buffer;
  switch (info.dtype) {
    case 'F64': return new Float64Array(b);
    case 'F32': return new Float32Array(b);
    case 'F16':
    case 'BF16': {
      const out = new Float32Array(info.byteSize / 2);
      dequantizeRow(info.dtype === 'F16' ? 'f16' : 'bf16', raw, 0, out.length, out, 0);
      return out;
    }
    case 'I64': return new BigInt64Array(b);
    case 'U64': return new BigUint64Array(b);
    case 'I32': return new Int32Array(b);
    case 'U32': return new Uint32Array(b);
    case 'I16': return new Int16Array(b);
    case 'U16': return new Uint16Array(b);
    case 'I8': return new Int8Array(b);
    default: return raw;
  }
}

/**
 * Serialise tensors (in the given order, contiguous) and optional string metadata. The JSON header is padded
 * with spaces to a multiple of 8 bytes, as the Rust crate does, so the data buffer is 8-byte aligned.
 */
export function writeSafetensors(tensors: SafetensorsWriteTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`metadata "${k}" must be a string, got ${typeof v}`);
    header.__metadata__ = metadata;
  }
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || names.has(t.name)) fail(`tensor name "${t.name}" is reserved or duplicated`);
    names.add(t.name);
    if (!isDType(t.dtype)) fail(`tensor "${t.name}": unknown dtype ${String(t.dtype)}`);
    if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor "${t.name}": invalid shape [${t.shape.join(', ')}]`);
    const size = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== size) fail(`tensor "${t.name}" ${t.dtype} [${t.shape.join(', ')}] needs ${size} bytes, got ${t.data.byteLength}`);
    Object.defineProperty(header, t.name, {
      value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] }, enumerable: true, writable: true, configurable: true,
    });
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}
