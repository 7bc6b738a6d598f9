/**
 * matmul dispatch: f32 products go to the packed GEMM, or to matrix–vector kernels when M = 1 or N = 1
 * (bandwidth-bound: no packing); quantized weights quantize/round the activations once, then run the
 * block-dot kernels split over weight rows. Decode products with q8_0 weights (M < 4, relaxed build) run as
 * one `qmv_q8` dispatch that quantizes the activations in each thread, and several products sharing their
 * input (`matmulShared`: Q/K/V, gate/up) as one dispatch for up to three of them.
 */
import type { MatmulParams } from '../../tensor/kernels.ts';
import { BLOCKS } from '../../tensor/dtype.ts';
import { K as KI, runJobs, threadsFor, type Kernels } from './kernels.ts';

type Fn = (...a: number[]) => number;

/** elements of a strided (batch, rows, cols) operand from its offset to its last element */
function span(batch: number, stride: number, rows: number, cols: number, ld: number, trans: boolean): number {
  if (batch === 0 || rows === 0 || cols === 0) return 0;
  const inner = trans ? (cols - 1) * ld + rows : (rows - 1) * ld + cols;
  return (batch - 1) * stride + inner;
}

export function matmul(k: Kernels, p: MatmulParams): void {
  const { batch, M, N, K } = p;
  if (batch === 0 || M === 0 || N === 0) return;
  const st = k.stager;
  try {
    const cLen = span(batch, p.strideC, M, N, p.ldc, false);
    if (K === 0) {
      if (!p.accumulate)
        for (let b = 0; b < batch; b++)
          for (let m = 0; m < M; m++) p.c.fill(0, p.cOff + b * p.strideC + m * p.ldc, p.cOff + b * p.strideC + m * p.ldc + N);
      return;
    }
    const a = st.in(p.a, p.aOff, span(batch, p.strideA, M, K, p.lda, p.transA));
    const c = st.out(p.c, p.cOff, cLen, p.accumulate);
    if (qmvFits(k, p)) qmv(k, [p], a, [c]);
    else if (p.bType === 'f32') matmulF32(k, p, a, c);
    else matmulQuant(k, p, a, c);
    st.done();
  } catch (e) {
    st.done();
    throw e;
  }
}

function matmulF32(k: Kernels, p: MatmulParams, a: number, c: number): void {
  const { batch, M, N, K } = p;
  const st = k.stager;
  const b = st.in(p.b as Float32Array, p.bOff, span(batch, p.strideB, K, N, p.ldb, p.transB));
  const acc = p.accumulate ? 1 : 0;
  if (M === 1 || N === 1) {
    // y = W·x with W as rows (dot products) or columns (row axpys)
    const nth = threadsFor(k, 2 * M * N * K, 1 << 17);
    const s = st.scratch(K * 4 + 512 * 4 + 64, nth);
    for (let bi = 0; bi < batch; bi++) {
      const ab = a + 4 * bi * p.strideA;
      const bb = b + 4 * bi * p.strideB;
      const cb = c + 4 * bi * p.strideC;
      if (M === 1) {
        const xs = p.transA ? p.lda : 1;
        runJobs(k, p.transB ? KI.gemv_rows : KI.gemv_cols, [ab, xs, bb, p.ldb, cb, 1, N, K, acc, s.base, s.stride], nth);
      } else {
        // C (M×1) = A · b: A is the matrix, the column of B the vector; C strided by ldc
        const xs = p.transB ? 1 : p.ldb;
        runJobs(k, p.transA ? KI.gemv_cols : KI.gemv_rows, [bb, xs, ab, p.lda, cb, p.ldc, M, K, acc, s.base, s.stride], nth);
      }
    }
    return;
  }
  const nth = threadsFor(k, 2 * batch * M * N * K, 1 << 20);
  const s = st.scratch((k.exports.gemm_scratch_bytes as Fn)(), nth);
  runJobs(k, KI.gemm_f32, [a, p.transA ? 1 : 0, p.lda, p.strideA, b, p.transB ? 1 : 0, p.ldb, p.strideB,
    c, p.ldc, p.strideC, batch, M, N, K, acc, s.base, s.stride], nth);
}

function matmulQuant(k: Kernels, p: MatmulParams, a: number, c: number): void {
  const { batch, M, N, K } = p;
  const type = p.bType;
  const info = BLOCKS[type];
  if (!p.transB) throw new Error(`internal: quantized (${type}) B must be transposed (N×K rows)`);
  if (K % info.elems !== 0) throw new Error(`internal: ${type} needs K a multiple of ${info.elems}, got ${K}`);
  const st = k.stager;
  const rowBytes = (K / info.elems) * info.bytes;
  const wLen = (batch - 1) * p.strideB + N * rowBytes;
  const w = st.in(p.b as Uint8Array, p.bOff, p.strideB === 0 ? N * rowBytes : wLen);
  const acc = p.accumulate ? 1 : 0;
  const work = 2 * M * N * K;
  const nthPrep = threadsFor(k, M * K, 1 << 16);
  const nth = threadsFor(k, work, 1 << 17);
  // per thread: a row of A (quant_rows_q8 with transA) or the decode pass's prepared activations (qmm, M < 4)
  const s = st.scratch(Math.max(K * 4, M < 4 ? (k.exports.qmv_prep_bytes as Fn)(M, K) : 0) + 64, Math.max(nthPrep, nth));
  const q = type === 'q8_0' || type === 'q4_0';
  const act = st.shared(q ? M * K + (M * K) / 8 + 64 : M * K * 4);
  const scales = act + Math.ceil((M * K) / 64) * 64;
  for (let bi = 0; bi < batch; bi++) {
    const ab = a + 4 * bi * p.strideA;
    const wb = w + bi * p.strideB;
    const cb = c + 4 * bi * p.strideC;
    if (bi === 0 || p.strideA !== 0) {
      if (q) k.pool.run(KI.quant_rows_q8, [ab, p.lda, p.transA ? 1 : 0, M, K, act, scales, s.base, s.stride], nthPrep);
      else k.pool.run(KI.round_rows, [ab, p.lda, p.transA ? 1 : 0, M, K, act, type === 'f16' ? 0 : 1, s.base, s.stride], nthPrep);
    }
    if (q) runJobs(k, KI.qmm, [type === 'q8_0' ? 0 : 1, wb, N, K, act, scales, M, cb, p.ldc, acc, s.base, s.stride], nth);
    else runJobs(k, KI.hmm, [type === 'f16' ? 0 : 1, wb, N, K, act, M, cb, p.ldc, acc], nth);
  }
}

/** whether `p` runs on the fused decode kernel (q8_0 weights, a few untransposed activation rows) */
function qmvFits(k: Kernels, p: MatmulParams): boolean {
  return p.bType === 'q8_0' && p.M < 4 && p.batch === 1 && !p.transA && p.transB && p.K % 32 === 0 && p.K > 0 &&
    (k.qmv ??= (k.exports.qmv_q8_built as Fn)() === 1);
}

/** products in `ps` (all qmvFits, same A) in one dispatch per three: a is A's pointer, cs the outputs' */
function qmv(k: Kernels, ps: readonly MatmulParams[], a: number, cs: readonly number[]): void {
  const { M, K } = ps[0]!;
  const st = k.stager;
  const rowBytes = (K / 32) * 34;
  for (let i0 = 0; i0 < ps.length; i0 += 3) {
    const n = Math.min(3, ps.length - i0);
    let work = 0;
    const mats: number[] = [];
    for (let i = 0; i < 3; i++) {
      const p = ps[i0 + Math.min(i, n - 1)]!;
      if (i < n) work += 2 * M * p.N * K;
      mats.push(st.in(p.b as Uint8Array, p.bOff, p.N * rowBytes), p.N, cs[i0 + Math.min(i, n - 1)]!, p.ldc);
    }
    const nth = threadsFor(k, work, 1 << 17);
    const s = st.scratch((k.exports.qmv_q8_scratch_bytes as Fn)(M, K), nth);
    runJobs(k, KI.qmv_q8, [n, K, a, M, ps[0]!.lda, ps[0]!.accumulate ? 1 : 0, s.base, s.stride, ...mats], nth);
  }
}

/**
 * Products sharing their A operand (same a, aOff, lda, transA, M, K; batch 1): one dispatch for those the
 * fused decode kernel takes, the usual path for the others.
 */
export function matmulShared(k: Kernels, ps: readonly MatmulParams[]): void {
  const first = ps[0];
  if (!first) return;
  const fused = ps.filter((p) => p.N > 0 && p.M > 0 && qmvFits(k, p) && p.accumulate === first.accumulate);
  if (fused.length < 2) {
    for (const p of ps) matmul(k, p);
    return;
  }
  const st = k.stager;
  try {
    const a = st.in(first.a, first.aOff, span(1, 0, first.M, first.K, first.lda, false));
    const cs = fused.map((p) => st.out(p.c, p.cOff, span(1, 0, p.M, p.N, p.ldc, false), p.accumulate));
    qmv(k, fused, a, cs);
    st.done();
  } catch (e) {
    st.done();
    throw e;
  }
  for (const p of ps) if (!fused.includes(p)) matmul(k, p);
}
