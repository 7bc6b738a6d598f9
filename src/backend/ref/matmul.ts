/**
 * Reference matmul: the specification every fast kernel is checked against. Plain loops, f64-free
 * (Float32 accumulation order is not specified; tests compare with a tolerance).
 *
 * Quantized weights follow ggml's CPU semantics so that logits match llama.cpp: for q8_0 / q4_0
 * weights each activation row is quantized to q8_0 blocks (d = amax/127, q = roundf(x/d), d kept as
 * f16) and each block contributes (Σ qa·qw)·f16(da)·f16(dw); for f16 / bf16 weights the activations are
 * rounded to f16 / bf16 and the products summed in f32.
 */
import type { MatmulParams } from '../../tensor/kernels.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, quantizeRow } from '../../tensor/quant.ts';
import { BLOCKS } from '../../tensor/dtype.ts';

export function matmulRef(p: MatmulParams): void {
  if (p.bType === 'f32') return matmulF32(p);
  return matmulQuant(p);
}

function matmulF32(p: MatmulParams): void {
  const { M, N, K, a, b, c, lda, ldb, ldc } = p;
  const bf = b as Float32Array;
  const row = new Float32Array(N);
  for (let bi = 0; bi < p.batch; bi++) {
    const ao = p.aOff + bi * p.strideA;
    const bo = p.bOff + bi * p.strideB;
    const co = p.cOff + bi * p.strideC;
    for (let m = 0; m < M; m++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const av = p.transA ? a[ao + k * lda + m]! : a[ao + m * lda + k]!;
        if (av === 0) continue;
        if (p.transB) for (let n = 0; n < N; n++) row[n]! += av * bf[bo + n * ldb + k]!;
        else {
          const base = bo + k * ldb;
          for (let n = 0; n < N; n++) row[n]! += av * bf[base + n]!;
        }
      }
      const cr = co + m * ldc;
      if (p.accumulate) for (let n = 0; n < N; n++) c[cr + n]! += row[n]!;
      else for (let n = 0; n < N; n++) c[cr + n] = row[n]!;
    }
  }
}

/** Quantize one activation row into q8_0 blocks: returns int8 values and f16-rounded scales. */
export function quantizeActivationQ8(x: Float32Array, off: number, K: number): { q: Int8Array; d: Float32Array } {
  const bytes = new Uint8Array((K / 32) * 34);
  quantizeRow('q8_0', x, off, K, bytes, 0);
  const nb = K / 32;
  const q = new Int8Array(K);
  const d = new Float32Array(nb);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < nb; i++) {
    d[i] = f16ToF32(dv.getUint16(34 * i, true));
    for (let j = 0; j < 32; j++) q[32 * i + j] = dv.getInt8(34 * i + 2 + j);
  }
  return { q, d };
}

function matmulQuant(p: MatmulParams): void {
  const { M, N, K, a, c, ldc } = p;
  const w = p.b as Uint8Array;
  const type = p.bType;
  if (!p.transB) throw new Error(`internal: quantized (${type}) B must be transposed (N×K rows)`);
  const rowBytes = (K / BLOCKS[type].elems) * BLOCKS[type].bytes;
  const dv = new DataView(w.buffer, w.byteOffset, w.byteLength);
  const arow = new Float32Array(K);
  for (let bi = 0; bi < p.batch; bi++) {
    const ao = p.aOff + bi * p.strideA;
    const co = p.cOff + bi * p.strideC;
    const wo = p.bOff + bi * p.strideB;
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) arow[k] = p.transA ? a[ao + k * p.lda + m]! : a[ao + m * p.lda + k]!;
      const cr = co + m * ldc;
      if (type === 'f16' || type === 'bf16') {
        const xr = new Float32Array(K);
        for (let k = 0; k < K; k++) xr[k] = type === 'f16' ? f16ToF32(f32ToF16(arow[k]!)) : bf16ToF32(f32ToBf16(arow[k]!));
        for (let n = 0; n < N; n++) {
          const base = wo + n * rowBytes;
          let s = 0;
          for (let k = 0; k < K; k++) {
            const h = dv.getUint16(base + 2 * k, true);
            s = Math.fround(s + Math.fround(xr[k]! * (type === 'f16' ? f16ToF32(h) : bf16ToF32(h))));
          }
          c[cr + n] = p.accumulate ? c[cr + n]! + s : s;
        }
        continue;
      }
      const { q, d } = quantizeActivationQ8(arow, 0, K);
      const nb = K / 32;
      for (let n = 0; n < N; n++) {
        const base = wo + n * rowBytes;
        let s = 0;
        for (let blk = 0; blk < nb; blk++) {
          let isum = 0;
          let dw: number;
          if (type === 'q8_0') {
            const o = base + 34 * blk;
            dw = f16ToF32(dv.getUint16(o, true));
            for (let j = 0; j < 32; j++) isum += q[32 * blk + j]! * dv.getInt8(o + 2 + j);
          } else {
            const o = base + 18 * blk;
            dw = f16ToF32(dv.getUint16(o, true));
            for (let j = 0; j < 16; j++) {
              const byte = w[o + 2 + j]!;
              isum += q[32 * blk + j]! * ((byte & 15) - 8) + q[32 * blk + j + 16]! * ((byte >> 4) - 8);
            }
          }
          s = Math.fround(s + Math.fround(Math.fround(dw * d[blk]!) * isum));
        }
        c[cr + n] = p.accumulate ? c[cr + n]! + s : s;
      }
    }
  }
}
