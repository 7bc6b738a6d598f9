/**
 * Dequantization of GGUF tensor types that vista does not compute in natively (Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K), and the bridge from a GGUF tensor to a vista `Tensor`. Formulas: ggml/src/ggml-quants.c
 * `dequantize_row_*` (../shared/specs/gguf-multimodal.md §1.6). Arithmetic is rounded to f32 at the same points
 * as the C code, so results match ggml (and a float32 NumPy port) bit for bit.
 */
import { ModelFormatError } from '../errors.ts';
import { dequantizeRow, f16ToF32 } from '../tensor/quant.ts';
import { Tensor } from '../tensor/tensor.ts';
import { GGML_TYPES, GGMLType, ggmlToDType, ggmlTypeName } from './ggml-types.ts';
import { type GGUFFile, type GGUFTensorInfo, tensorData } from './gguf.ts';

const fr = Math.fround;
const half = (b: Uint8Array, o: number): number => f16ToF32(b[o]! | (b[o + 1]! << 8));

/** Types `dequantizeGGML` handles. */
export const DEQUANT_TYPES: readonly GGMLType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
  GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];

function q4_1(src: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = half(src, o), m = half(src, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = src[o + 4 + j]!;
    y[p + j] = fr((q & 0x0f) * d + m);
    y[p + j + 16] = fr((q >> 4) * d + m);
  }
}

/** Q5_0 (`hasMin` false, offset −16) and Q5_1 (`hasMin` true: · d + m). */
function q5(src: Uint8Array, o: number, y: Float32Array, p: number, hasMin: boolean): void {
  const d = half(src, o);
  const m = hasMin ? half(src, o + 2) : 0;
  const h = o + (hasMin ? 4 : 2);
  const qh = (src[h]! | (src[h + 1]! << 8) | (src[h + 2]! << 16) | (src[h + 3]! << 24)) >>> 0;
  const off = hasMin ? 0 : 16;
  for (let j = 0; j < 16; j++) {
    const q = src[h + 4 + j]!;
    const x0 = ((q & 0x0f) | (((qh >>> j) & 1) << 4)) - off;
    const x1 = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - off;
    y[p + j] = hasMin ? fr(x0 * d + m) : x0 * d; // no `+ 0`: keeps ggml's −0
    y[p + j + 16] = hasMin ? fr(x1 * d + m) : x1 * d;
  }
}

/** 6-bit (scale, min) pair `j` of a Q4_K/Q5_K block (ggml `get_scale_min_k4`). */
function scaleMin(src: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [src[s + j]! & 63, src[s + j + 4]! & 63];
  return [
    (src[s + j + 4]! & 0x0f) | ((src[s + j - 4]! >> 6) << 4),
    (src[s + j + 4]! >> 4) | ((src[s + j]! >> 6) << 4),
  ];
}

/** Q4_K (`withHigh` false) and Q5_K (`withHigh` true: a fifth bit from qh). */
function qk45(src: Uint8Array, o: number, y: Float32Array, p: number, withHigh: boolean): void {
  const d = half(src, o), dmin = half(src, o + 2);
  const sc = o + 4;
  const qh = o + 16;
  const qs = withHigh ? o + 48 : o + 16;
  for (let c = 0; c < 4; c++) {
    const [s1, m1] = scaleMin(src, sc, 2 * c);
    const [s2, m2] = scaleMin(src, sc, 2 * c + 1);
    const d1 = fr(d * s1), mm1 = fr(dmin * m1), d2 = fr(d * s2), mm2 = fr(dmin * m2);
    const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
    const q = qs + 32 * c;
    for (let l = 0; l < 32; l++) {
      const b = src[q + l]!;
      const h = withHigh ? src[qh + l]! : 0;
      y[p + 64 * c + l] = fr(fr(d1 * ((b & 0x0f) + (h & u1 ? 16 : 0))) - mm1);
      y[p + 64 * c + 32 + l] = fr(fr(d2 * ((b >> 4) + (h & u2 ? 16 : 0))) - mm2);
    }
  }
}

function q6_k(src: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = half(src, o + 208);
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h, yo = p + 128 * h;
    const s = (i: number): number => (src[sc + i]! << 24) >> 24; // int8 scale
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const hb = src[qh + l]!;
      const q1 = ((src[ql + l]! & 0xf) | (((hb >> 0) & 3) << 4)) - 32;
      const q2 = ((src[ql + l + 32]! & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
      const q3 = ((src[ql + l]! >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      const q4 = ((src[ql + l + 32]! >> 4) | (((hb >> 6) & 3) << 4)) - 32;
      y[yo + l] = fr(fr(d * s(is)) * q1);
      y[yo + l + 32] = fr(fr(d * s(is + 2)) * q2);
      y[yo + l + 64] = fr(fr(d * s(is + 4)) * q3);
      y[yo + l + 96] = fr(fr(d * s(is + 6)) * q4);
    }
  }
}

/**
 * Decode `n` elements of ggml `type` starting at byte `srcOff` of `src` into `dst[dstOff..]` as f32.
 * `n` must be a whole number of blocks. F32/F16/BF16/Q8_0/Q4_0 go through vista's own `dequantizeRow`.
 * Throws `ModelFormatError` for types vista cannot decode (Q2_K, Q3_K, IQ*, …) or too few bytes.
 */
export function dequantizeGGML(type: GGMLType, src: Uint8Array, srcOff: number, n: number, dst: Float32Array, dstOff: number): void {
  const t = GGML_TYPES[type];
  if (!t || !DEQUANT_TYPES.includes(type))
    throw new ModelFormatError(`cannot dequantize ggml type ${ggmlTypeName(type)}; supported: ${DEQUANT_TYPES.map(ggmlTypeName).join(', ')}`);
  if (n % t.blockElems !== 0) throw new ModelFormatError(`${ggmlTypeName(type)}: ${n} elements is not a whole number of ${t.blockElems}-element blocks`);
  const nb = n / t.blockElems;
  if (srcOff < 0 || srcOff + nb * t.blockBytes > src.byteLength || dstOff < 0 || dstOff + n > dst.length)
    throw new ModelFormatError(`${ggmlTypeName(type)}: ${n} elements need ${nb * t.blockBytes} bytes at ${srcOff} (have ${src.byteLength}) and room for ${n} floats at ${dstOff} (have ${dst.length})`);
  const native = ggmlToDType(type);
  if (native) return dequantizeRow(native, src, srcOff, n, dst, dstOff);
  for (let b = 0; b < nb; b++) {
    const o = srcOff + b * t.blockBytes, p = dstOff + b * t.blockElems;
    switch (type) {
      case GGMLType.Q4_1: q4_1(src, o, dst, p); break;
      case GGMLType.Q5_0: q5(src, o, dst, p, false); break;
      case GGMLType.Q5_1: q5(src, o, dst, p, true); break;
      case GGMLType.Q4_K: qk45(src, o, dst, p, false); break;
      case GGMLType.Q5_K: qk45(src, o, dst, p, true); break;
      case GGMLType.Q6_K: q6_k(src, o, dst, p); break;
    }
  }
}

export interface ToTensorOptions {
  /**
   * `native` (default): F32/F16/BF16/Q8_0/Q4_0 keep their dtype; every other type is dequantized to f32.
   * `f32`: always dequantize to f32.
   */
  keep?: 'native' | 'f32';
  /**
   * Reads a tensor's bytes into `dst` (exactly `info.byteSize` bytes) when `file.bytes` holds only the
   * header: native tensors are then read straight into their storage, so weights are never held twice.
   */
  read?: (info: GGUFTensorInfo, dst: Uint8Array) => void;
}

/**
 * A GGUF tensor as a vista `Tensor` with the PyTorch-order shape (`info.shape`), copied out of the file.
 * Types vista stores natively (F32, F16, BF16, Q8_0, Q4_0) keep their dtype unless `keep: 'f32'`; the others
 * (Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) become f32 — 4–8× the memory of the file. (A later optimisation may
 * requantize them to q8_0 instead.) Throws `ModelFormatError` for types vista cannot decode.
 *
 * @example
 *   const w = ggufTensorToTensor(f, findTensor(f, 'blk.0.attn_q.weight')!);   // q8_0 [n_embd, n_embd]
 */
export function ggufTensorToTensor(file: GGUFFile, info: GGUFTensorInfo, opts: ToTensorOptions = {}): Tensor {
  const native = ggmlToDType(info.type);
  if (opts.read && native && (opts.keep ?? 'native') === 'native') {
    const t = Tensor.empty(info.shape, native);
    opts.read(info, t.storage.bytes.subarray(0, info.byteSize));
    t.name = info.name;
    return t;
  }
  let bytes: Uint8Array;
  if (opts.read) {
    bytes = new Uint8Array(info.byteSize);
    opts.read(info, bytes);
  } else bytes = tensorData(file, info);
  const named = (t: Tensor): Tensor => {
    t.name = info.name;
    return t;
  };
  if (native && (opts.keep ?? 'native') === 'native') return named(Tensor.fromBytes(bytes, info.shape, native));
  const out = Tensor.empty(info.shape);
  dequantizeGGML(info.type, bytes, 0, out.size, out.data, out.offset);
  return named(out);
}
