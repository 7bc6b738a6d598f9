/**
 * Weight storage types with GGUF's exact block layouts (../shared/specs/gguf-multimodal.md §1.6):
 * F16 (IEEE half), BF16 (upper half of f32), Q8_0 (f16 scale + 32 int8), Q4_0 (f16 scale + 16 bytes of
 * nibbles: low nibble of byte j = element j, high nibble = element j + 16, stored as q + 8).
 * Quantizers round the way ggml's reference `quantize_row_*_ref` does, so files we write match theirs.
 */
import { ShapeError } from '../errors.ts';
import { BLOCKS, type DType } from './dtype.ts';
import { Tensor } from './tensor.ts';

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** f32 → IEEE binary16 bits, round to nearest even (as ggml's GGML_FP32_TO_FP16 / F16C). */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into the exponent: correct
  return sign | half;
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 0x1f ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function f16ToF32(h: number): number {
  return F16_TABLE[h & 0xffff]!;
}

/** f32 → bf16 bits, round to nearest even (NaN kept quiet), as ggml's GGML_FP32_TO_BF16. */
export function f32ToBf16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}

export function bf16ToF32(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

/** C's roundf: halves away from zero. */
const roundAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));

/** Encode `n` f32 values (n a multiple of the block size) into `dtype` bytes. */
export function quantizeRow(dtype: DType, src: Float32Array, srcOff: number, n: number, dst: Uint8Array, dstOff: number): void {
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < n; i++) dv.setFloat32(dstOff + 4 * i, src[srcOff + i]!, true);
      return;
    case 'f16':
      for (let i = 0; i < n; i++) dv.setUint16(dstOff + 2 * i, f32ToF16(src[srcOff + i]!), true);
      return;
    case 'bf16':
      for (let i = 0; i < n; i++) dv.setUint16(dstOff + 2 * i, f32ToBf16(src[srcOff + i]!), true);
      return;
    case 'q8_0':
      for (let b = 0; b < n / 32; b++) {
        const s = srcOff + 32 * b;
        const o = dstOff + 34 * b;
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[s + j]!));
        const d = Math.fround(amax / 127);
        const id = d ? Math.fround(1 / d) : 0;
        dv.setUint16(o, f32ToF16(d), true);
        for (let j = 0; j < 32; j++) dv.setInt8(o + 2 + j, roundAway(Math.fround(src[s + j]! * id)));
      }
      return;
    case 'q4_0':
      for (let b = 0; b < n / 32; b++) {
        const s = srcOff + 32 * b;
        const o = dstOff + 18 * b;
        // ggml: d = max / -8 where max is the value of largest magnitude (keeps its sign)
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
          const v = src[s + j]!;
          if (Math.abs(v) > amax) {
            amax = Math.abs(v);
            max = v;
          }
        }
        const d = Math.fround(max / -8);
        const id = d ? Math.fround(1 / d) : 0;
        dv.setUint16(o, f32ToF16(d), true);
        for (let j = 0; j < 16; j++) {
          const x0 = Math.min(15, Math.trunc(Math.fround(Math.fround(src[s + j]! * id) + 8.5)));
          const x1 = Math.min(15, Math.trunc(Math.fround(Math.fround(src[s + j + 16]! * id) + 8.5)));
          dst[o + 2 + j] = x0 | (x1 << 4);
        }
      }
      return;
  }
}

/** Decode `n` values of `dtype` bytes into f32. */
export function dequantizeRow(dtype: DType, src: Uint8Array, srcOff: number, n: number, dst: Float32Array, dstOff: number): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < n; i++) dst[dstOff + i] = dv.getFloat32(srcOff + 4 * i, true);
      return;
    case 'f16':
      for (let i = 0; i < n; i++) dst[dstOff + i] = F16_TABLE[dv.getUint16(srcOff + 2 * i, true)]!;
      return;
    case 'bf16':
      for (let i = 0; i < n; i++) dst[dstOff + i] = bf16ToF32(dv.getUint16(srcOff + 2 * i, true));
      return;
    case 'q8_0':
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + 34 * b;
        const d = F16_TABLE[dv.getUint16(o, true)]!;
        const y = dstOff + 32 * b;
        for (let j = 0; j < 32; j++) dst[y + j] = dv.getInt8(o + 2 + j) * d;
      }
      return;
    case 'q4_0':
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + 18 * b;
        const d = F16_TABLE[dv.getUint16(o, true)]!;
        const y = dstOff + 32 * b;
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j]!;
          dst[y + j] = ((q & 0x0f) - 8) * d;
          dst[y + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return;
  }
}

/** Store an f32 tensor as `dtype` (rows along the last dim must be whole blocks). */
export function quantize(x: Tensor, dtype: DType): Tensor {
  const last = x.shape[x.ndim - 1] ?? 1;
  if (last % BLOCKS[dtype].elems !== 0)
    throw new ShapeError(`${dtype} needs rows that are a multiple of ${BLOCKS[dtype].elems}; [${x.shape.join(', ')}]`);
  const src = x.toArray();
  const out = Tensor.empty(x.shape, dtype);
  quantizeRow(dtype, src, 0, src.length, out.storage.bytes, 0);
  return out;
}

/** f32 copy of a tensor of any dtype. */
export function dequantize(w: Tensor): Tensor {
  if (w.dtype === 'f32') return w;
  const out = Tensor.empty(w.shape);
  dequantizeRow(w.dtype, w.storage.bytes, w.offset, w.size, out.data, 0);
  return out;
}
