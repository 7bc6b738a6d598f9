// f32 matrix products. C (M×N) (+)= A (M×K) · B (K×N) with packed panels: B is packed in blocks of
// KC×NC into panels of 8 columns (k-major), A in micro-panels of 6 rows; a 6×8 register tile of twelve
// f32x4 accumulators runs over one K-block. Packing absorbs transA/transB and zero-pads the edges.
import { fma, hadd4f, hsum, nextJob, part } from './common';

const KC: i32 = 256;
const NC: i32 = 512;
const PB_BYTES: i32 = KC * NC * 4;
const MR: i32 = 6;
const PA_BYTES: i32 = MR * KC * 4;

/** per-thread scratch bytes gemm_f32 needs */
export function gemm_scratch_bytes(): i32 {
  return PB_BYTES + PA_BYTES + MR * 32 + 64;
}

function packA(dst: usize, a: usize, lda: usize, transA: bool, m0: i32, mr: i32, k0: i32, kc: i32): void {
  const ds: usize = MR << 2;
  if (transA) {
    // element (m, k) at k*lda + m: MR contiguous values per k
    let src = a + ((<usize>k0 * lda + <usize>m0) << 2);
    const step = lda << 2;
    if (mr == MR) {
      for (let k = 0; k < kc; k++) {
        const d = dst + <usize>k * ds;
        v128.store(d, v128.load(src));
        store<i64>(d, load<i64>(src, 16), 16);
        src += step;
      }
    } else {
      for (let k = 0; k < kc; k++) {
        const d = dst + <usize>k * ds;
        for (let i = 0; i < MR; i++) store<f32>(d + (<usize>i << 2), i < mr ? load<f32>(src + (<usize>i << 2)) : 0);
        src += step;
      }
    }
  } else if (mr == MR) {
    // rows 0–3 transposed 4×4 at a time into the first 16 bytes of each k, rows 4–5 interleaved after
    const rs = lda << 2;
    const r0 = a + ((<usize>m0 * lda + <usize>k0) << 2);
    const r1 = r0 + rs, r2 = r1 + rs, r3 = r2 + rs, r4 = r3 + rs, r5 = r4 + rs;
    let d = dst;
    let o: usize = 0;
    const k4 = kc & ~3;
    for (let k = 0; k < k4; k += 4) {
      const x0 = v128.load(r0 + o), x1 = v128.load(r1 + o), x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
      const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
      const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
      const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
      const x4 = v128.load(r4 + o), x5 = v128.load(r5 + o);
      const u0 = v128.shuffle<f32>(x4, x5, 0, 4, 1, 5);
      const u1 = v128.shuffle<f32>(x4, x5, 2, 6, 3, 7);
      v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      store<i64>(d, i64x2.extract_lane(u0, 0), 16);
      v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 24);
      store<i64>(d, i64x2.extract_lane(u0, 1), 40);
      v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 48);
      store<i64>(d, i64x2.extract_lane(u1, 0), 64);
      v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 72);
      store<i64>(d, i64x2.extract_lane(u1, 1), 88);
      d += 96;
      o += 16;
    }
    for (let k = k4; k < kc; k++) {
      store<f32>(d, load<f32>(r0 + o)); store<f32>(d, load<f32>(r1 + o), 4); store<f32>(d, load<f32>(r2 + o), 8);
      store<f32>(d, load<f32>(r3 + o), 12); store<f32>(d, load<f32>(r4 + o), 16); store<f32>(d, load<f32>(r5 + o), 20);
      d += 24;
      o += 4;
    }
  } else {
    for (let i = 0; i < MR; i++) {
      let d = dst + (<usize>i << 2);
      if (i < mr) {
        let src = a + ((<usize>(m0 + i) * lda + <usize>k0) << 2);
        for (let k = 0; k < kc; k++) {
          store<f32>(d, load<f32>(src));
          src += 4;
          d += ds;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          store<f32>(d, 0);
          d += ds;
        }
      }
    }
  }
}

function packB(dst: usize, b: usize, ldb: usize, transB: bool, k0: i32, kc: i32, n0: i32, nc: i32): void {
  const rs = ldb << 2;
  if (!transB) {
    // 4 rows at a time across all full panels: the rows are read sequentially (a panel-by-panel walk
    // strides ldb*4 bytes per k, which defeats the prefetchers and thrashes L1 sets when ldb is a power of 2)
    const full = nc & ~7;
    const ps = <usize>kc << 5;
    let k = 0;
    for (; k + 4 <= kc; k += 4) {
      let src = b + ((<usize>(k0 + k) * ldb + <usize>n0) << 2);
      let d = dst + (<usize>k << 5);
      for (let p = 0; p < full; p += 8) {
        v128.store(d, v128.load(src)); v128.store(d, v128.load(src, 16), 16);
        v128.store(d, v128.load(src + rs), 32); v128.store(d, v128.load(src + rs, 16), 48);
        v128.store(d, v128.load(src + 2 * rs), 64); v128.store(d, v128.load(src + 2 * rs, 16), 80);
        v128.store(d, v128.load(src + 3 * rs), 96); v128.store(d, v128.load(src + 3 * rs, 16), 112);
        src += 32;
        d += ps;
      }
    }
    for (; k < kc; k++) {
      let src = b + ((<usize>(k0 + k) * ldb + <usize>n0) << 2);
      let d = dst + (<usize>k << 5);
      for (let p = 0; p < full; p += 8) {
        v128.store(d, v128.load(src)); v128.store(d, v128.load(src, 16), 16);
        src += 32;
        d += ps;
      }
    }
    if (full < nc) {
      const nr = nc - full;
      let src = b + ((<usize>k0 * ldb + <usize>(n0 + full)) << 2);
      let d = dst + <usize>full * <usize>kc * 4;
      for (let k = 0; k < kc; k++) {
        v128.store(d, f32x4.splat(0));
        v128.store(d, f32x4.splat(0), 16);
        for (let j = 0; j < nr; j++) store<f32>(d + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
        src += rs;
        d += 32;
      }
    }
    return;
  }
  for (let p = 0; p < nc; p += 8) {
    const nr = min(8, nc - p);
    let d = dst + <usize>p * <usize>kc * 4;
    {
      // element (k, n) at n*ldb + k: 8 rows of B^T, transposed 4×4 at a time
      let r0 = b + ((<usize>(n0 + p) * ldb + <usize>k0) << 2);
      if (nr == 8) {
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          for (let h = 0; h < 2; h++) {
            const s = r0 + <usize>(h * 4) * rs;
            const x0 = v128.load(s);
            const x1 = v128.load(s + rs);
            const x2 = v128.load(s + 2 * rs);
            const x3 = v128.load(s + 3 * rs);
            const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
            const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
            const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
            const o = d + (<usize>h << 4);
            v128.store(o, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
            v128.store(o, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
            v128.store(o, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
            v128.store(o, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
          }
          r0 += 16;
          d += 128;
        }
        for (; k < kc; k++) {
          for (let j = 0; j < 8; j++) store<f32>(d + (<usize>j << 2), load<f32>(r0 + <usize>j * rs));
          r0 += 4;
          d += 32;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          v128.store(d, f32x4.splat(0));
          v128.store(d, f32x4.splat(0), 16);
          for (let j = 0; j < nr; j++) store<f32>(d + (<usize>j << 2), load<f32>(r0 + <usize>j * rs));
          r0 += 4;
          d += 32;
        }
      }
    }
  }
}

@inline function put(c: usize, v: v128, add: bool): void {
  v128.store(c, add ? f32x4.add(v128.load(c), v) : v);
}

/** MR×8 tile (MR = 6): C[0..mr, 0..nr] (+)= packedA (kc×MR) · packedB (kc×8); twelve accumulators,
 * two B vectors and one broadcast fill 15 xmm registers (V8 keeps xmm15 as scratch) */
function micro(pa: usize, pb: usize, kc: i32, c: usize, ldc4: usize, mr: i32, nr: i32, add: bool, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0), c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  // one k step per iteration (unrolling lets binaryen nest the FMAs and V8 then hoists the loads: spills)
  const end = pa + <usize>kc * 24;
  for (; pa < end; pa += 24) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = fma(a, b0, c00); c01 = fma(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = fma(a, b0, c10); c11 = fma(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = fma(a, b0, c20); c21 = fma(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = fma(a, b0, c30); c31 = fma(a, b1, c31);
    a = v128.load32_splat(pa, 16);
    c40 = fma(a, b0, c40); c41 = fma(a, b1, c41);
    a = v128.load32_splat(pa, 20);
    c50 = fma(a, b0, c50); c51 = fma(a, b1, c51);
    pb += 32;
  }
  if (mr == MR && nr == 8) {
    put(c, c00, add); put(c + 16, c01, add); c += ldc4;
    put(c, c10, add); put(c + 16, c11, add); c += ldc4;
    put(c, c20, add); put(c + 16, c21, add); c += ldc4;
    put(c, c30, add); put(c + 16, c31, add); c += ldc4;
    put(c, c40, add); put(c + 16, c41, add); c += ldc4;
    put(c, c50, add); put(c + 16, c51, add);
  } else {
    v128.store(tile, c00); v128.store(tile, c01, 16); v128.store(tile, c10, 32); v128.store(tile, c11, 48);
    v128.store(tile, c20, 64); v128.store(tile, c21, 80); v128.store(tile, c30, 96); v128.store(tile, c31, 112);
    v128.store(tile, c40, 128); v128.store(tile, c41, 144); v128.store(tile, c50, 160); v128.store(tile, c51, 176);
    for (let i = 0; i < mr; i++) {
      const ci = c + <usize>i * ldc4;
      const ti = tile + (<usize>i << 5);
      for (let j = 0; j < nr; j++) {
        const v = load<f32>(ti + (<usize>j << 2));
        const p = ci + (<usize>j << 2);
        store<f32>(p, add ? load<f32>(p) + v : v);
      }
    }
  }
}

function gemmBlock(a: usize, transA: bool, lda: usize, b: usize, transB: bool, ldb: usize, c: usize, ldc: usize,
  m0: i32, m1: i32, n0: i32, n1: i32, K: i32, accumulate: bool, ws: usize): void {
  const pb = ws;
  const pa = ws + PB_BYTES;
  const tile = pa + PA_BYTES;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = min(KC, K - k0);
    const add = accumulate || k0 > 0;
    for (let nn = n0; nn < n1; nn += NC) {
      const nc = min(NC, n1 - nn);
      packB(pb, b, ldb, transB, k0, kc, nn, nc);
      for (let m = m0; m < m1; m += MR) {
        const mr = min(MR, m1 - m);
        packA(pa, a, lda, transA, m, mr, k0, kc);
        const crow = c + ((<usize>m * ldc + <usize>nn) << 2);
        for (let p = 0; p < nc; p += 8) {
          micro(pa, pb + <usize>p * <usize>kc * 4, kc, crow + (<usize>p << 2), ldc << 2, mr, min(8, nc - p), add, tile);
        }
      }
    }
  }
}

/**
 * Batched C[b] (+)= A[b]·B[b] (MatmulParams semantics; pointers in bytes, strides/leading dims in
 * elements). Work is split over batches, or within one product over columns (N ≥ M) or rows.
 */
export function gemm_f32(a: usize, transA: i32, lda: usize, strideA: usize, b: usize, transB: i32, ldb: usize, strideB: usize,
  c: usize, ldc: usize, strideC: usize, batch: i32, M: i32, N: i32, K: i32, accumulate: i32,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const ws = scratch + <usize>ith * scratchStride;
  // jobs: batch × chunks of rows (M > N) or columns, ≥ 4 per thread when the sizes allow (one thread: whole
  // products, so each operand is packed once; the split never changes any element's summation order)
  const byRows = M > N;
  let chunks = 1;
  if (nth > 1 && batch < 4 * nth) {
    const want = (4 * nth + batch - 1) / batch;
    chunks = byRows ? min(want, max(1, M / 64)) : min(want, max(1, N / 64));
    // equal shares: a chunk count that is not a multiple of the threads leaves one idle at the end
    if (chunks > nth) chunks -= chunks % nth;
  }
  const jobs = batch * chunks;
  for (let j = nextJob(); j < jobs; j = nextJob()) {
    const bi = j / chunks;
    const s = j % chunks;
    let m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (byRows) {
      m0 = part(M, s, chunks, MR);
      m1 = part(M, s + 1, chunks, MR);
    } else {
      n0 = part(N, s, chunks, 8);
      n1 = part(N, s + 1, chunks, 8);
    }
    if (m0 >= m1 || n0 >= n1) continue;
    gemmBlock(a + ((<usize>bi * strideA) << 2), transA != 0, lda, b + ((<usize>bi * strideB) << 2), transB != 0, ldb,
      c + ((<usize>bi * strideC) << 2), ldc, m0, m1, n0, n1, K, accumulate != 0, ws);
  }
}

// ---- matrix–vector (M = 1): bandwidth-bound, no packing ----

@inline function storeOut(p: usize, v: f32, add: bool): void {
  store<f32>(p, add ? load<f32>(p) + v : v);
}

/** contiguous copy of x (stride xs elements) into ws when needed */
function gatherVec(x: usize, xs: usize, K: i32, ws: usize): usize {
  if (xs == 1) return x;
  for (let k = 0; k < K; k++) store<f32>(ws + (<usize>k << 2), load<f32>(x + ((<usize>k * xs) << 2)));
  return ws;
}

/** y[n·ys] (+)= Σ_k x[k·xs] · w[n·ldw + k] for n < N (weights as rows: the linear-layer layout) */
export function gemv_rows(x: usize, xs: usize, w: usize, ldw: usize, y: usize, ys: usize, N: i32, K: i32, accumulate: i32,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const xv = gatherVec(x, xs, K, scratch + <usize>ith * scratchStride);
  for (let j = nextJob(); j * 64 < N; j = nextJob()) gemvRowsRange(xv, w, ldw, y, ys, j * 64, min(N, j * 64 + 64), K, accumulate);
}

function gemvRowsRange(xv: usize, w: usize, ldw: usize, y: usize, ys: usize, n0: i32, n1: i32, K: i32, accumulate: i32): void {
  const add = accumulate != 0;
  const rs = ldw << 2;
  const K8 = K & ~7;
  let n = n0;
  for (; n + 4 <= n1; n += 4) {
    const w0 = w + <usize>n * rs;
    const w1 = w0 + rs, w2 = w1 + rs, w3 = w2 + rs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let o: usize = 0;
    const end = <usize>K8 << 2;
    for (; o < end; o += 32) {
      const x0 = v128.load(xv + o);
      const x1 = v128.load(xv + o, 16);
      a0 = fma(v128.load(w0 + o), x0, a0); b0 = fma(v128.load(w0 + o, 16), x1, b0);
      a1 = fma(v128.load(w1 + o), x0, a1); b1 = fma(v128.load(w1 + o, 16), x1, b1);
      a2 = fma(v128.load(w2 + o), x0, a2); b2 = fma(v128.load(w2 + o, 16), x1, b2);
      a3 = fma(v128.load(w3 + o), x0, a3); b3 = fma(v128.load(w3 + o, 16), x1, b3);
    }
    const r = hadd4f(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
    let s0 = f32x4.extract_lane(r, 0), s1 = f32x4.extract_lane(r, 1), s2 = f32x4.extract_lane(r, 2), s3 = f32x4.extract_lane(r, 3);
    for (let k = K8; k < K; k++) {
      const xk = load<f32>(xv + (<usize>k << 2));
      const ko = <usize>k << 2;
      s0 += xk * load<f32>(w0 + ko); s1 += xk * load<f32>(w1 + ko);
      s2 += xk * load<f32>(w2 + ko); s3 += xk * load<f32>(w3 + ko);
    }
    const yp = y + ((<usize>n * ys) << 2);
    const ysb = ys << 2;
    storeOut(yp, s0, add); storeOut(yp + ysb, s1, add); storeOut(yp + 2 * ysb, s2, add); storeOut(yp + 3 * ysb, s3, add);
  }
  for (; n < n1; n++) {
    const w0 = w + <usize>n * rs;
    let a0 = f32x4.splat(0), b0 = f32x4.splat(0);
    let o: usize = 0;
    const end = <usize>K8 << 2;
    for (; o < end; o += 32) {
      a0 = fma(v128.load(w0 + o), v128.load(xv + o), a0);
      b0 = fma(v128.load(w0 + o, 16), v128.load(xv + o, 16), b0);
    }
    let s = hsum(f32x4.add(a0, b0));
    for (let k = K8; k < K; k++) s += load<f32>(xv + (<usize>k << 2)) * load<f32>(w0 + (<usize>k << 2));
    storeOut(y + ((<usize>n * ys) << 2), s, add);
  }
}

const COLS: i32 = 512;

/** y[n·ys] (+)= Σ_k x[k·xs] · w[k·ldw + n] for n < N (row-major K×N weights): row axpys into an L1 accumulator */
export function gemv_cols(x: usize, xs: usize, w: usize, ldw: usize, y: usize, ys: usize, N: i32, K: i32, accumulate: i32,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const n0 = part(N, ith, nth, 16);
  const n1 = part(N, ith + 1, nth, 16);
  if (n0 >= n1) return;
  const ws = scratch + <usize>ith * scratchStride;
  const acc = ws;
  const xv = gatherVec(x, xs, K, ws + COLS * 4);
  const add = accumulate != 0;
  const rs = ldw << 2;
  for (let c0 = n0; c0 < n1; c0 += COLS) {
    const nc = min(COLS, n1 - c0);
    const nc4 = nc & ~3;
    for (let j = 0; j < nc; j++) store<f32>(acc + (<usize>j << 2), 0);
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const r0 = w + <usize>k * rs + (<usize>c0 << 2);
      const r1 = r0 + rs, r2 = r1 + rs, r3 = r2 + rs;
      const xk0 = v128.load32_splat(xv + (<usize>k << 2));
      const xk1 = v128.load32_splat(xv + (<usize>k << 2), 4);
      const xk2 = v128.load32_splat(xv + (<usize>k << 2), 8);
      const xk3 = v128.load32_splat(xv + (<usize>k << 2), 12);
      const e = <usize>nc4 << 2;
      for (let o: usize = 0; o < e; o += 16) {
        let s = v128.load(acc + o);
        s = fma(v128.load(r0 + o), xk0, s);
        s = fma(v128.load(r1 + o), xk1, s);
        s = fma(v128.load(r2 + o), xk2, s);
        s = fma(v128.load(r3 + o), xk3, s);
        v128.store(acc + o, s);
      }
      for (let j = nc4; j < nc; j++) {
        const o = <usize>j << 2;
        let s = load<f32>(acc + o);
        s += load<f32>(r0 + o) * f32x4.extract_lane(xk0, 0);
        s += load<f32>(r1 + o) * f32x4.extract_lane(xk1, 0);
        s += load<f32>(r2 + o) * f32x4.extract_lane(xk2, 0);
        s += load<f32>(r3 + o) * f32x4.extract_lane(xk3, 0);
        store<f32>(acc + o, s);
      }
    }
    for (; k < K; k++) {
      const r0 = w + <usize>k * rs + (<usize>c0 << 2);
      const xk = load<f32>(xv + (<usize>k << 2));
      for (let j = 0; j < nc; j++) {
        const o = <usize>j << 2;
        store<f32>(acc + o, load<f32>(acc + o) + load<f32>(r0 + o) * xk);
      }
    }
    for (let j = 0; j < nc; j++) storeOut(y + ((<usize>(c0 + j) * ys) << 2), load<f32>(acc + (<usize>j << 2)), add);
  }
}
