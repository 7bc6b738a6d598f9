/**
 * GGUF reader (v2 and v3, little-endian) and typed metadata getters. Pure functions over bytes: the caller
 * reads or maps the file. Layout and limits follow ggml/src/gguf.cpp (../shared/specs/gguf-multimodal.md §1):
 * every length is checked against the bytes that remain before anything is allocated, and every failure is a
 * `ModelFormatError` that says what was expected and at which byte offset.
 *
 * @example
 *   const f = readGGUF(new Uint8Array(await readFile('model.gguf')));
 *   const nLayer = getU32(f, 'llama.block_count');
 *   const w = f.tensors.find((t) => t.name === 'output.weight')!;   // w.shape = [vocab, n_embd]
 *   const bytes = tensorData(f, w);                                    // no copy
 */
import { ModelFormatError } from '../errors.ts';
import { Cursor, alignUp } from './cursor.ts';
import { GGML_TYPES, ggmlByteSize, ggmlTypeName, isGGMLType } from './ggml-types.ts';
import {
  GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ARRAY, GGUF_MAX_STRING, GGUF_VALUE_SIZE,
  type GGUFFile, type GGUFScalar, type GGUFTensorInfo, type GGUFTypeInfo, type GGUFValue, GGUFValueType,
  isIntegerType, valueTypeName,
} from './gguf-types.ts';

export * from './gguf-types.ts';
export * from './ggml-types.ts';
export { writeGGUF } from './gguf-write.ts';

/** Smallest encodings, used to bound counts by the bytes left before allocating anything. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key len + 1-byte key + type + 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8; // name len + 1 byte + n_dims + type + offset

function readString(c: Cursor, what: string): string {
  const n = c.length(`length of ${what}`, GGUF_MAX_STRING);
  return c.text(n, what);
}

function readScalar(c: Cursor, t: GGUFValueType, what: string): GGUFScalar {
  switch (t) {
    case GGUFValueType.UINT8: return c.u8(what);
    case GGUFValueType.INT8: return c.i8(what);
    case GGUFValueType.UINT16: return c.u16(what);
    case GGUFValueType.INT16: return c.i16(what);
    case GGUFValueType.UINT32: return c.u32(what);
    case GGUFValueType.INT32: return c.i32(what);
    case GGUFValueType.FLOAT32: return c.f32(what);
    case GGUFValueType.BOOL: return c.u8(what) !== 0;
    case GGUFValueType.STRING: return readString(c, what);
    case GGUFValueType.UINT64: return c.u64(what);
    case GGUFValueType.INT64: return c.i64(what);
    case GGUFValueType.FLOAT64: return c.f64(what);
    default: return c.fail(`${what}: unknown value type ${t as number}`);
  }
}

function readValueType(c: Cursor, what: string, allowArray: boolean): GGUFValueType {
  const at = c.pos;
  const t = c.u32(what);
  if (t > GGUFValueType.FLOAT64 || (t === GGUFValueType.ARRAY && !allowArray))
    c.fail(`${what} is ${t}; expected a value type 0..12${allowArray ? '' : ' other than ARRAY (nested arrays are not supported)'}`, at);
  return t as GGUFValueType;
}

function readKV(c: Cursor, file: GGUFFile, index: number): void {
  const at = c.pos;
  const key = readString(c, `key of metadata entry ${index}`);
  if (!key) c.fail(`metadata entry ${index} has an empty key`, at);
  if (Object.prototype.hasOwnProperty.call(file.metadata, key)) c.fail(`duplicate metadata key "${key}"`, at);
  const type = readValueType(c, `value type of "${key}"`, true);
  if (type !== GGUFValueType.ARRAY) {
    file.metadata[key] = readScalar(c, type, `value of "${key}"`);
    file.metadataTypes[key] = { type };
    return;
  }
  const arrayType = readValueType(c, `element type of array "${key}"`, false);
  const countAt = c.pos;
  const n = c.length(`element count of "${key}"`, GGUF_MAX_ARRAY);
  const minElem = GGUF_VALUE_SIZE[arrayType] ?? 8; // a string is at least its u64 length
  if (n * minElem > c.remaining)
    c.fail(`array "${key}" claims ${n} ${valueTypeName(arrayType)} elements (≥ ${n * minElem} bytes) but only ${c.remaining} bytes remain`, countAt);
  const arr = new Array<GGUFScalar>(n);
  for (let i = 0; i < n; i++) arr[i] = readScalar(c, arrayType, `element ${i} of "${key}"`);
  file.metadata[key] = arr;
  file.metadataTypes[key] = { type, arrayType };
}

function readAlignment(c: Cursor, file: GGUFFile): number {
  const v = file.metadata['general.alignment'];
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const t = file.metadataTypes['general.alignment']!.type;
  if (!isIntegerType(t) || typeof v !== 'number' || v <= 0 || v > 1 << 30 || (v & (v - 1)) !== 0)
    c.fail(`general.alignment must be a power-of-two integer, got ${String(v)} (${valueTypeName(t)})`);
  return v;
}

function readTensorInfo(c: Cursor, index: number, names: Set<string>): GGUFTensorInfo & { at: number } {
  const at = c.pos;
  const name = readString(c, `name of tensor ${index}`);
  const nameBytes = c.pos - at - 8;
  if (nameBytes >= GGML_MAX_NAME) c.fail(`tensor name "${name}" is ${nameBytes} bytes; ggml allows at most ${GGML_MAX_NAME - 1}`, at);
  if (names.has(name)) c.fail(`duplicate tensor name "${name}"`, at);
  names.add(name);
  const dimsAt = c.pos;
  const nDims = c.u32(`n_dims of tensor "${name}"`);
  if (nDims > GGML_MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dims; at most ${GGML_MAX_DIMS} are allowed`, dimsAt);
  const ne: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const dAt = c.pos;
    const v = c.i64big(`ne[${d}] of tensor "${name}"`);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor "${name}" has ne[${d}] = ${v}`, dAt);
    ne.push(Number(v));
  }
  const typeAt = c.pos;
  const type = c.i32(`type of tensor "${name}"`);
  if (!isGGMLType(type)) c.fail(`tensor "${name}" has unknown ggml type ${type}`, typeAt);
  const block = GGML_TYPES[type].blockElems;
  if ((ne[0] ?? 1) % block !== 0)
    c.fail(`tensor "${name}" of type ${ggmlTypeName(type)} has row length ne[0] = ${ne[0] ?? 1}, not a multiple of its block size ${block}`, typeAt);
  const offAt = c.pos;
  const offset = c.u64big(`data offset of tensor "${name}"`);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor "${name}" has data offset ${offset}`, offAt);
  return {
    name, ne, shape: [...ne].reverse(), type, typeName: ggmlTypeName(type), offset: Number(offset),
    byteSize: ggmlByteSize(type, ne), at: offAt,
  };
}

/**
 * Parse a GGUF file: header, metadata and tensor table. Tensor data is not copied (see `tensorData`).
 * Throws `ModelFormatError` for anything malformed: bad magic, versions other than 2/3, big-endian files,
 * truncation, oversize lengths, more than 4 dims, unknown tensor types, rows that are not whole blocks,
 * unaligned, overlapping or out-of-bounds tensor data, duplicate keys or tensor names.
 * With `fileSize`, `bytes` may be just a prefix holding the header (metadata and tensor table): tensor data
 * is then checked against the file size and read by the caller (see platform/gguf-file.ts).
 */
export function readGGUF(bytes: Uint8Array, opts: { fileSize?: number } = {}): GGUFFile {
  const c = new Cursor(bytes, 'GGUF');
  c.need(4, 'magic "GGUF"');
  if (c.view.getUint32(0, true) !== GGUF_MAGIC) {
    const got = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    c.fail(`bad magic: expected 47 47 55 46 ("GGUF"), got ${got}`);
  }
  c.pos = 4;
  const version = c.u32('version');
  if (version === 0) c.fail('invalid GGUF version 0', 4);
  if ((version & 0xffff) === 0) c.fail(`version field ${version} looks byte-swapped: big-endian GGUF files are not supported`, 4);
  if (version === 1) c.fail('GGUF v1 (32-bit lengths) is not supported; re-convert the model to v3', 4);
  if (version > 3) c.fail(`GGUF version ${version} is newer than the supported versions 2 and 3`, 4);
  const nTensorsBig = c.u64big('tensor count');
  const nKVBig = c.u64big('metadata count');
  // counts are bounded by the bytes that follow before anything is allocated for them
  const count = (v: bigint, min: number, what: string, at: number): number => {
    if (v * BigInt(min) > BigInt(c.remaining))
      c.fail(`${what} ${v} needs at least ${v * BigInt(min)} bytes but only ${c.remaining} bytes follow the header`, at);
    return Number(v);
  };
  const nTensors = count(nTensorsBig, MIN_TENSOR_INFO_BYTES, 'tensor count', 8);
  const nKV = count(nKVBig, MIN_KV_BYTES, 'metadata count', 16);

  const file: GGUFFile = {
    version, alignment: GGUF_DEFAULT_ALIGNMENT, dataOffset: 0,
    metadata: Object.create(null) as Record<string, GGUFValue>,
    metadataTypes: Object.create(null) as Record<string, GGUFTypeInfo>,
    tensors: [], bytes,
  };
  for (let i = 0; i < nKV; i++) readKV(c, file, i);
  file.alignment = readAlignment(c, file);

  if (nTensors * MIN_TENSOR_INFO_BYTES > c.remaining)
    c.fail(`tensor count ${nTensors} needs at least ${nTensors * MIN_TENSOR_INFO_BYTES} bytes of tensor infos, only ${c.remaining} left`);
  const names = new Set<string>();
  const infos: (GGUFTensorInfo & { at: number })[] = [];
  for (let i = 0; i < nTensors; i++) infos.push(readTensorInfo(c, i, names));
  file.dataOffset = alignUp(c.pos, file.alignment);

  const blob = (opts.fileSize ?? bytes.byteLength) - file.dataOffset;
  for (const t of infos) {
    if (t.offset % file.alignment !== 0)
      c.fail(`tensor "${t.name}" data offset ${t.offset} is not a multiple of the alignment ${file.alignment}`, t.at);
    if (t.offset + t.byteSize > blob)
      c.fail(`tensor "${t.name}" (${t.typeName} [${t.ne.join(', ')}]) needs bytes ${t.offset}..${t.offset + t.byteSize} of the data blob at ${file.dataOffset}, but the blob has ${Math.max(0, blob)} bytes`, t.at);
  }
  const sorted = [...infos].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!, t = sorted[i]!;
    if (t.byteSize > 0 && p.offset + p.byteSize > t.offset)
      c.fail(`tensor "${t.name}" data (offset ${t.offset}) overlaps tensor "${p.name}" (offset ${p.offset}, ${p.byteSize} bytes)`, t.at);
  }
  file.tensors = infos.map(({ at: _at, ...t }) => t);
  return file;
}

/** The bytes of one tensor (a subarray of `file.bytes`, no copy). */
export function tensorData(file: GGUFFile, info: GGUFTensorInfo): Uint8Array {
  const start = file.dataOffset + info.offset;
  if (start + info.byteSize > file.bytes.byteLength)
    throw new ModelFormatError(`GGUF: tensor "${info.name}" data ${start}..${start + info.byteSize} lies past the end of the ${file.bytes.byteLength}-byte file`);
  return file.bytes.subarray(start, start + info.byteSize);
}

/** The tensor info called `name`, or undefined. */
export function findTensor(file: GGUFFile, name: string): GGUFTensorInfo | undefined {
  return file.tensors.find((t) => t.name === name);
}

// ----------------------------------------------------------------------------------------- typed getters
// Converters are not consistent about integer widths (spec §1.2 tip), so integer getters accept any width.

function lookup<T>(f: GGUFFile, key: string, def: T | undefined, kind: string): { v: GGUFValue; t: GGUFTypeInfo } | { def: T } {
  if (Object.prototype.hasOwnProperty.call(f.metadata, key)) return { v: f.metadata[key]!, t: f.metadataTypes[key]! };
  if (def !== undefined) return { def };
  throw new ModelFormatError(`GGUF: missing metadata key "${key}" (expected ${kind})`);
}

function wrongType(key: string, kind: string, v: GGUFValue, t: GGUFTypeInfo): never {
  const shown = Array.isArray(v) ? `an array of ${v.length} ${valueTypeName(t.arrayType!)}` : `${valueTypeName(t.type)} ${String(v)}`;
  throw new ModelFormatError(`GGUF: metadata key "${key}" should be ${kind}, got ${shown}`);
}

export function hasKey(f: GGUFFile, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(f.metadata, key);
}

export function getString(f: GGUFFile, key: string, def?: string): string {
  const r = lookup(f, key, def, 'a string');
  if ('def' in r) return r.def;
  if (typeof r.v !== 'string') wrongType(key, 'a string', r.v, r.t);
  return r.v;
}

/** Any-width integer as a JS number; must be a safe integer within [min, max]. */
export function getInt(f: GGUFFile, key: string, def?: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  const kind = `an integer in [${min}, ${max}]`;
  const r = lookup(f, key, def, kind);
  if ('def' in r) return r.def;
  if (!isIntegerType(r.t.type) || typeof r.v !== 'number' || r.v < min || r.v > max) wrongType(key, kind, r.v, r.t);
  return r.v;
}

/** Any-width integer that fits a u32. */
export function getU32(f: GGUFFile, key: string, def?: number): number {
  return getInt(f, key, def, 0, 0xffffffff);
}

/** Any integer or float value as a JS number (64-bit integers beyond 2^53 are rejected). */
export function getNumber(f: GGUFFile, key: string, def?: number): number {
  const r = lookup(f, key, def, 'a number');
  if ('def' in r) return r.def;
  if (typeof r.v !== 'number' || r.t.type === GGUFValueType.BOOL) wrongType(key, 'a number', r.v, r.t);
  return r.v;
}

export function getBool(f: GGUFFile, key: string, def?: boolean): boolean {
  const r = lookup(f, key, def, 'a bool');
  if ('def' in r) return r.def;
  if (typeof r.v !== 'boolean') wrongType(key, 'a bool', r.v, r.t);
  return r.v;
}

export function getArray(f: GGUFFile, key: string, def?: GGUFScalar[]): GGUFScalar[] {
  const r = lookup(f, key, def, 'an array');
  if ('def' in r) return r.def;
  if (!Array.isArray(r.v)) wrongType(key, 'an array', r.v, r.t);
  return r.v;
}

export function getStringArray(f: GGUFFile, key: string, def?: string[]): string[] {
  const r = lookup(f, key, def, 'an array of strings');
  if ('def' in r) return r.def;
  if (!Array.isArray(r.v) || r.t.arrayType !== GGUFValueType.STRING) wrongType(key, 'an array of strings', r.v, r.t);
  return r.v as string[];
}

/** An array of any integer or float element type as numbers (64-bit elements beyond 2^53 are rejected). */
export function getNumberArray(f: GGUFFile, key: string, def?: number[]): number[] {
  const kind = 'an array of numbers';
  const r = lookup(f, key, def, kind);
  if ('def' in r) return r.def;
  const et = r.t.arrayType;
  if (!Array.isArray(r.v) || et === undefined || et === GGUFValueType.STRING || et === GGUFValueType.BOOL) wrongType(key, kind, r.v, r.t);
  const bad = r.v.findIndex((x) => typeof x !== 'number');
  if (bad >= 0) throw new ModelFormatError(`GGUF: metadata key "${key}" element ${bad} = ${String(r.v[bad])} does not fit a JS number`);
  return r.v as number[];
}
