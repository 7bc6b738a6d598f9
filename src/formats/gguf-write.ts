/**
 * GGUF v3 writer (little-endian). Tensors are laid out contiguously in the given order, each padded with zeros
 * to the alignment, with offsets as the running sum — the layout current gguf.cpp requires (spec §1.4) and
 * gguf-py writes. Import from `gguf.ts`.
 */
import { ModelFormatError } from '../errors.ts';
import { alignUp } from './cursor.ts';
import { GGML_TYPES, ggmlByteSize, ggmlTypeName, isGGMLType } from './ggml-types.ts';
import {
  GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ARRAY, GGUF_MAX_STRING,
  type GGUFScalar, type GGUFTypeInfo, type GGUFValue, GGUFValueType, type GGUFWriteInput, valueTypeName,
} from './gguf-types.ts';

const fail = (msg: string): never => {
  throw new ModelFormatError(`writeGGUF: ${msg}`);
};
const utf8 = new TextEncoder();

/** Growable little-endian byte sink for the header (the tensor data is copied once into the final buffer). */
class Sink {
  buf = new Uint8Array(1 << 12);
  view = new DataView(this.buf.buffer);
  len = 0;
  reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  // reserve() may reallocate, so it runs before `this.view` / `this.buf` are read
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  string(s: string, what: string): void {
    const b = utf8.encode(s);
    if (b.length > GGUF_MAX_STRING) fail(`${what} is ${b.length} bytes; GGUF strings are limited to ${GGUF_MAX_STRING}`);
    this.u64(b.length);
    this.bytes(b);
  }
}

const INT_RANGE: Partial<Record<GGUFValueType, readonly [bigint, bigint]>> = {
  [GGUFValueType.UINT8]: [0n, 0xffn],
  [GGUFValueType.INT8]: [-0x80n, 0x7fn],
  [GGUFValueType.UINT16]: [0n, 0xffffn],
  [GGUFValueType.INT16]: [-0x8000n, 0x7fffn],
  [GGUFValueType.UINT32]: [0n, 0xffffffffn],
  [GGUFValueType.INT32]: [-0x80000000n, 0x7fffffffn],
  [GGUFValueType.UINT64]: [0n, 0xffffffffffffffffn],
  [GGUFValueType.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

const INT_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8,
};

const isInt = (v: number): boolean => Number.isInteger(v) && !Object.is(v, -0);

/** Default value type of a scalar (see `writeGGUF`). */
function inferScalar(v: GGUFScalar): GGUFValueType {
  if (typeof v === 'string') return GGUFValueType.STRING;
  if (typeof v === 'boolean') return GGUFValueType.BOOL;
  if (typeof v === 'bigint') return v < 0n ? GGUFValueType.INT64 : GGUFValueType.UINT64;
  if (!isInt(v)) return GGUFValueType.FLOAT32;
  if (v >= 0 && v < 2 ** 32) return GGUFValueType.UINT32;
  if (v < 0 && v >= -(2 ** 31)) return GGUFValueType.INT32;
  if (v >= 0 && v < 2 ** 64) return GGUFValueType.UINT64;
  if (v < 0 && v >= -(2 ** 63)) return GGUFValueType.INT64;
  return GGUFValueType.FLOAT64;
}

/** Default element type of an array: strings → STRING, bools → BOOL, integers → INT32 (INT64 if needed), else FLOAT32. */
function inferArray(key: string, a: GGUFScalar[]): GGUFValueType {
  if (a.length === 0) return GGUFValueType.INT32;
  const kind = typeof a[0];
  if (a.some((x) => typeof x !== kind)) fail(`array "${key}" mixes element kinds; give metadataTypes["${key}"]`);
  if (kind === 'string') return GGUFValueType.STRING;
  if (kind === 'boolean') return GGUFValueType.BOOL;
  if (kind === 'bigint') return (a as bigint[]).some((x) => x > 0x7fffffffffffffffn) ? GGUFValueType.UINT64 : GGUFValueType.INT64;
  const nums = a as number[];
  if (nums.every((x) => isInt(x) && x >= -(2 ** 31) && x < 2 ** 31)) return GGUFValueType.INT32;
  if (nums.every((x) => isInt(x) && x >= -(2 ** 63) && x < 2 ** 63)) return GGUFValueType.INT64;
  return GGUFValueType.FLOAT32;
}

function writeScalar(s: Sink, t: GGUFValueType, v: GGUFScalar, what: string): void {
  const bad = (): never => fail(`${what} = ${String(v)} (${typeof v}) cannot be written as ${valueTypeName(t)}`);
  const range = INT_RANGE[t];
  if (range) {
    if (typeof v === 'number' ? !Number.isInteger(v) : typeof v !== 'bigint') bad();
    if (typeof v === 'number' ? v < range[0] || v > range[1] : (v as bigint) < range[0] || (v as bigint) > range[1]) bad();
    const at = s.reserve(INT_SIZE[t]!);
    switch (t) {
      case GGUFValueType.UINT8: s.view.setUint8(at, v as number); break;
      case GGUFValueType.INT8: s.view.setInt8(at, v as number); break;
      case GGUFValueType.UINT16: s.view.setUint16(at, v as number, true); break;
      case GGUFValueType.INT16: s.view.setInt16(at, v as number, true); break;
      case GGUFValueType.UINT32: s.view.setUint32(at, v as number, true); break;
      case GGUFValueType.INT32: s.view.setInt32(at, v as number, true); break;
      default: s.view.setBigUint64(at, BigInt.asUintN(64, BigInt(v as number | bigint)), true);
    }
    return;
  }
  let at: number;
  switch (t) {
    case GGUFValueType.FLOAT32:
      if (typeof v !== 'number') bad();
      at = s.reserve(4);
      s.view.setFloat32(at, v as number, true);
      return;
    case GGUFValueType.FLOAT64:
      if (typeof v !== 'number') bad();
      at = s.reserve(8);
      s.view.setFloat64(at, v as number, true);
      return;
    case GGUFValueType.BOOL:
      if (typeof v !== 'boolean') bad();
      s.u8(v ? 1 : 0);
      return;
    case GGUFValueType.STRING:
      if (typeof v !== 'string') bad();
      s.string(v as string, what);
      return;
    default:
      bad();
  }
}

function writeKV(s: Sink, key: string, v: GGUFValue, given: GGUFTypeInfo | undefined): void {
  if (!key) fail('metadata keys must be non-empty');
  const type = given?.type ?? (Array.isArray(v) ? GGUFValueType.ARRAY : inferScalar(v));
  if (!(type in GGUFValueType)) fail(`metadataTypes["${key}"].type ${String(type)} is not a GGUF value type`);
  s.string(key, `key "${key}"`);
  s.u32(type);
  if (type !== GGUFValueType.ARRAY) {
    if (Array.isArray(v)) fail(`"${key}" is an array but metadataTypes says ${valueTypeName(type)}`);
    writeScalar(s, type, v as GGUFScalar, `"${key}"`);
    return;
  }
  if (!Array.isArray(v)) fail(`"${key}" = ${String(v)} is not an array but metadataTypes says ARRAY`);
  const arr = v as GGUFScalar[];
  const et = given?.arrayType ?? inferArray(key, arr);
  if (et === GGUFValueType.ARRAY || !(et in GGUFValueType)) fail(`"${key}" has element type ${String(et)}; nested arrays are not supported`);
  if (arr.length > GGUF_MAX_ARRAY) fail(`"${key}" has ${arr.length} elements; GGUF arrays are limited to ${GGUF_MAX_ARRAY}`);
  s.u32(et);
  s.u64(arr.length);
  for (let i = 0; i < arr.length; i++) writeScalar(s, et, arr[i]!, `"${key}"[${i}]`);
}

function resolveAlignment(input: GGUFWriteInput): number {
  const meta = input.metadata['general.alignment'];
  const a = input.alignment ?? (typeof meta === 'number' ? meta : GGUF_DEFAULT_ALIGNMENT);
  if (!Number.isInteger(a) || a <= 0 || a > 1 << 30 || (a & (a - 1)) !== 0) fail(`alignment ${a} is not a power of two`);
  if (meta !== undefined && meta !== a) fail(`alignment ${a} disagrees with metadata general.alignment = ${String(meta)}`);
  return a;
}

/**
 * Serialise metadata and tensors as a GGUF v3 file.
 *
 * Metadata keys are written in object order. Value types come from `metadataTypes[key]` when given, else:
 * integers → UINT32 if 0 ≤ v < 2^32, INT32 if negative and it fits, else UINT64/INT64; bigint → UINT64
 * (INT64 if negative); other numbers → FLOAT32 (so they read back as `Math.fround(v)`); strings → STRING;
 * booleans → BOOL; arrays by element kind (strings → STRING, all-integer → INT32, or INT64 when an element
 * does not fit, else FLOAT32; an empty array → INT32). A non-default alignment is recorded as
 * `general.alignment` (UINT32) when the metadata does not already hold it.
 *
 * Tensor shapes are PyTorch order; each `data` must be exactly the tensor's ggml byte size.
 * Throws `ModelFormatError` for input that cannot be represented (value out of range for its type,
 * duplicate or over-long tensor names, > 4 dims, partial blocks, wrong data length).
 *
 * @example
 *   const bytes = writeGGUF({ metadata: { 'general.architecture': 'llama' },
 *     tensors: [{ name: 'w', shape: [2, 32], type: GGMLType.F32, data: new Uint8Array(256) }] });
 */
export function writeGGUF(input: GGUFWriteInput): Uint8Array {
  const alignment = resolveAlignment(input);
  const entries = Object.entries(input.metadata);
  const types: Record<string, GGUFTypeInfo> = { ...input.metadataTypes };
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && input.metadata['general.alignment'] === undefined) {
    entries.push(['general.alignment', alignment]);
    types['general.alignment'] = { type: GGUFValueType.UINT32 };
  }
  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(input.tensors.length);
  s.u64(entries.length);
  for (const [k, v] of entries) writeKV(s, k, v, Object.prototype.hasOwnProperty.call(types, k) ? types[k] : undefined);

  const names = new Set<string>();
  let offset = 0;
  const placed: { data: Uint8Array; offset: number }[] = [];
  for (const t of input.tensors) {
    const nameLen = utf8.encode(t.name).length;
    if (!t.name || nameLen >= GGML_MAX_NAME) fail(`tensor name "${t.name}" must be 1..${GGML_MAX_NAME - 1} bytes`);
    if (names.has(t.name)) fail(`duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.shape.length > GGML_MAX_DIMS) fail(`tensor "${t.name}" has ${t.shape.length} dims; GGUF allows at most ${GGML_MAX_DIMS}`);
    if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor "${t.name}" has invalid shape [${t.shape.join(', ')}]`);
    if (!isGGMLType(t.type)) fail(`tensor "${t.name}" has unknown ggml type ${String(t.type)}`);
    const ne = [...t.shape].reverse();
    const block = GGML_TYPES[t.type].blockElems;
    if ((ne[0] ?? 1) % block !== 0)
      fail(`tensor "${t.name}" ${ggmlTypeName(t.type)} [${t.shape.join(', ')}]: the last dim must be a multiple of ${block}`);
    const size = ggmlByteSize(t.type, ne);
    if (t.data.byteLength !== size)
      fail(`tensor "${t.name}" ${ggmlTypeName(t.type)} [${t.shape.join(', ')}] needs ${size} bytes, got ${t.data.byteLength}`);
    s.string(t.name, `tensor name "${t.name}"`);
    s.u32(ne.length);
    for (const d of ne) s.u64(d);
    s.u32(t.type);
    s.u64(offset);
    placed.push({ data: t.data, offset });
    offset += alignUp(size, alignment);
  }
  const dataOffset = alignUp(s.len, alignment);
  const out = new Uint8Array(dataOffset + offset);
  out.set(s.buf.subarray(0, s.len));
  for (const p of placed) out.set(p.data, dataOffset + p.offset);
  return out;
}
