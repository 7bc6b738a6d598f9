// Products with quantized weights B (N×K rows in GGUF block layout), with ggml's CPU semantics:
// q8_0/q4_0: activation rows are quantized to q8_0 (d = amax/127, q = roundf(x·(1/d)), d kept as f16) and
// every block adds (Σ qa·qw)·(f16(dw)·f16(da)); f16/bf16: activations rounded to f16/bf16, f32 products.
// Four weight rows are done at once against one activation row so their block sums share one reduction.
import { F16_TABLE, f16tof32, f16tof32x4, f32tobf16, f32tof16, fma, hadd4f, hadd4i, nextJob, part } from './common';

/** round half away from zero (C roundf), lane-wise */
@inline function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  const one = v128.and(f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5)), f32x4.splat(1.0));
  return f32x4.add(t, v128.or(one, v128.and(v, i32x4.splat(0x80000000))));
}

/** row m of A as a contiguous f32 pointer (gathered into ws when A is transposed) */
@inline function rowOf(a: usize, lda: usize, transA: bool, m: i32, K: i32, ws: usize): usize {
  if (!transA) return a + ((<usize>m * lda) << 2);
  for (let k = 0; k < K; k++) store<f32>(ws + (<usize>k << 2), load<f32>(a + ((<usize>k * lda + <usize>m) << 2)));
  return ws;
}

/** Quantize rows of A (M×K) to q8_0: int8 values at dq + m·K, f16-rounded scales (as f32) at dd + m·(K/32)·4 */
export function quant_rows_q8(a: usize, lda: usize, transA: i32, M: i32, K: i32, dq: usize, dd: usize,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const m0 = part(M, ith, nth, 1);
  const m1 = part(M, ith + 1, nth, 1);
  const ws = scratch + <usize>ith * scratchStride;
  const nb = K >> 5;
  for (let m = m0; m < m1; m++) {
    let x = rowOf(a, lda, transA != 0, m, K, ws);
    let q = dq + <usize>m * <usize>K;
    let d = dd + ((<usize>m * <usize>nb) << 2);
    for (let b = 0; b < nb; b++) {
      const v0 = v128.load(x), v1 = v128.load(x, 16), v2 = v128.load(x, 32), v3 = v128.load(x, 48);
      const v4 = v128.load(x, 64), v5 = v128.load(x, 80), v6 = v128.load(x, 96), v7 = v128.load(x, 112);
      const mx = f32x4.max(
        f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
        f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
      const s = f32x4.max(mx, v128.shuffle<f32>(mx, mx, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
      const dv: f32 = amax / 127;
      const id: f32 = dv != 0 ? <f32>1 / dv : 0;
      store<f32>(d, f16tof32(f32tof16(dv)));
      const idv = f32x4.splat(id);
      const q0 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v0, idv)));
      const q1 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v1, idv)));
      const q2 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v2, idv)));
      const q3 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v3, idv)));
      const q4 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v4, idv)));
      const q5 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v5, idv)));
      const q6 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v6, idv)));
      const q7 = i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v7, idv)));
      v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
      v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7)), 16);
      x += 128;
      q += 32;
      d += 4;
    }
  }
}

/**
 * Rows of A rounded to f16 (mode 0) or bf16 (mode 1) and widened back to f32, contiguous at dst + m·K·4, in the
 * layout hmm reads: every 8 elements as [x0 x2 x4 x6 x1 x3 x5 x7] (even/odd halves of a weight vector), the
 * K % 8 tail in order; f16 values (the 8-groups, not the tail) scaled by 2^112 (exact: |x| ≤ 65504 stays finite),
 * so hmm widens a weight half to f32 bits with shifts only (its value then lacks that 2^112).
 */
export function round_rows(a: usize, lda: usize, transA: i32, M: i32, K: i32, dst: usize, mode: i32,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const m0 = part(M, ith, nth, 1);
  const m1 = part(M, ith + 1, nth, 1);
  const ws = scratch + <usize>ith * scratchStride;
  const K8 = K & ~7;
  const sc: f32 = mode == 0 ? reinterpret<f32>(0x77800000) : 1; // 2^112
  for (let m = m0; m < m1; m++) {
    const x = rowOf(a, lda, transA != 0, m, K, ws);
    const o = dst + ((<usize>m * <usize>K) << 2);
    for (let k = 0; k < K; k++) {
      const v = load<f32>(x + (<usize>k << 2));
      const r: f32 = mode == 0 ? f16tof32(f32tof16(v)) : reinterpret<f32>(f32tobf16(v) << 16);
      if (k < K8) store<f32>(o + ((<usize>((k & ~7) + ((k & 1) << 2) + ((k & 7) >> 1))) << 2), r * sc);
      else store<f32>(o + (<usize>k << 2), r);
    }
  }
}

// T selects the weight type at compile time: i8 = q8_0, u8 = q4_0; u16 = f16, i16 = bf16
//
// Per 32-block integer dots. An activation block is "prepared" once (p0..p4) and shared by every weight
// row dotted with it:
//  - q8_0, relaxed build: p = (a⁺ lo, a⁺ hi, a⁻ lo, a⁻ hi) with a⁺ = max(a, 0), a⁻ = max(−a, 0) (both 0..127,
//    valid 7-bit operands, exact for every weight byte incl. −128): Σ w·a = Σ w·a⁺ − Σ w·a⁻ (i8·i7 dots)
//    (the M = 1 decode pass instead moves a's sign onto the weights: see rowDotX)
//  - q8_0, plain: p = the block as four i16x8 (i16 dots)
//  - q4_0: the −8 offset folds into the chain's start value −8·Σa (p4); relaxed: i8 activations · u4 nibbles
//    (7-bit operands); plain: i16 dots of widened nibbles

const Q8R: bool = ASC_FEATURE_RELAXED_SIMD && true;
const Q4R: bool = ASC_FEATURE_RELAXED_SIMD && true;
@inline function rdot<T>(): bool {
  return isSigned<T>() ? Q8R : Q4R;
}

@inline function prepA<T>(qa: usize, i: i32): v128 {
  if (rdot<T>()) {
    const a = v128.load(qa + (<usize>(i & 1) << 4));
    if (!isSigned<T>()) return a;
    // a⁻ = a⁺ − a: one subtraction instead of a negation and a max
    const ap = i8x16.max_s(a, i8x16.splat(0));
    return i < 2 ? ap : i8x16.sub(ap, a);
  }
  return v128.load8x8_s(qa + (<usize>i << 3));
}

/** q4_0's start value: −8·Σa of the block (lanes sum to it) */
@inline function negSum(qa: usize, p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  if (Q4R) {
    // i16 lanes: |−8·(a + a')| ≤ 4064, so the row's i16 sums below stay ≤ 7620 + 4064
    return i16x8.neg(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(p0, i8x16.splat(8)), i16x8.relaxed_dot_i8x16_i7x16_s(p1, i8x16.splat(8))));
  }
  const m8 = i16x8.splat(-8);
  return i32x4.add(i32x4.add(i32x4.dot_i16x8_s(p0, m8), i32x4.dot_i16x8_s(p1, m8)),
    i32x4.add(i32x4.dot_i16x8_s(p2, m8), i32x4.dot_i16x8_s(p3, m8)));
}

@inline function rowDot<T>(w: usize, p0: v128, p1: v128, p2: v128, p3: v128, p4: v128): v128 {
  if (isSigned<T>()) {
    if (Q8R) {
      // i8·i7 pair sums in i16: each ≤ 2·128·127 and so is their difference (a lane is a⁺ or a⁻, never both)
      const w0 = v128.load(w, 2), w1 = v128.load(w, 18);
      const d0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w0, p0), i16x8.relaxed_dot_i8x16_i7x16_s(w0, p2));
      const d1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w1, p1), i16x8.relaxed_dot_i8x16_i7x16_s(w1, p3));
      return i32x4.add(i32x4.extadd_pairwise_i16x8_s(d0), i32x4.extadd_pairwise_i16x8_s(d1));
    }
    return i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 2), p0), i32x4.dot_i16x8_s(v128.load8x8_s(w, 10), p1)),
      i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 18), p2), i32x4.dot_i16x8_s(v128.load8x8_s(w, 26), p3)));
  } else {
    const v = v128.load(w, 2);
    const lo = v128.and(v, i8x16.splat(0x0f));
    const hi = i8x16.shr_u(v, 4);
    if (Q4R) {
      // i8·u4 pair sums in i16 (|·| ≤ 3810 each), widened once
      const d = i16x8.add(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(p0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(p1, hi)), p4);
      return i32x4.extadd_pairwise_i16x8_s(d);
    }
    return i32x4.add(
      i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), p0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), p1)),
      i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), p2), i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), p3), p4)));
  }
}

/** the four rows' block scales (f16 via the lookup table: two loads each, as ggml does) */
@inline function scales4(w0: usize, w1: usize, w2: usize, w3: usize): v128 {
  let d = v128.load32_zero(F16_TABLE + (<usize>load<u16>(w0) << 2));
  d = f32x4.replace_lane(d, 1, load<f32>(F16_TABLE + (<usize>load<u16>(w1) << 2)));
  d = f32x4.replace_lane(d, 2, load<f32>(F16_TABLE + (<usize>load<u16>(w2) << 2)));
  return f32x4.replace_lane(d, 3, load<f32>(F16_TABLE + (<usize>load<u16>(w3) << 2)));
}

@inline function storeRow4(c: usize, v: v128, nr: i32, add: bool): void {
  if (nr == 4) {
    v128.store(c, add ? f32x4.add(v128.load(c), v) : v);
  } else {
    store<f32>(c, (add ? load<f32>(c) : 0) + f32x4.extract_lane(v, 0));
    if (nr > 1) store<f32>(c, (add ? load<f32>(c, 4) : 0) + f32x4.extract_lane(v, 1), 4);
    if (nr > 2) store<f32>(c, (add ? load<f32>(c, 8) : 0) + f32x4.extract_lane(v, 2), 8);
  }
}

/**
 * q8_0 relaxed row dot by sign transfer: w·a = (w ⊕ s)·|a| + [a < 0]·|a| with s = (a < 0 ? −1 : 0), |a| ≤ 127
 * a valid 7-bit operand and w ⊕ s = −w − 1 exact for every weight byte; the [a < 0]·|a| part (Σa⁻) is per block
 */
@inline function rowDotX(w: usize, u0: v128, u1: v128, s0: v128, s1: v128, one: v128): v128 {
  const d0 = i16x8.relaxed_dot_i8x16_i7x16_s(v128.xor(v128.load(w, 2), s0), u0);
  const d1 = i16x8.relaxed_dot_i8x16_i7x16_s(v128.xor(v128.load(w, 18), s1), u1);
  return i32x4.add(i32x4.dot_i16x8_s(d0, one), i32x4.dot_i16x8_s(d1, one));
}

/** one activation block against four weight rows: the rows' [Σ] as f32x4 scaled into acc */
@inline function block4<T>(qa: usize, da: usize, w0: usize, w1: usize, w2: usize, w3: usize, ds: v128, acc: v128): v128 {
  const p0 = prepA<T>(qa, 0), p1 = prepA<T>(qa, 1), p2 = prepA<T>(qa, 2), p3 = prepA<T>(qa, 3);
  const p4 = !isSigned<T>() ? negSum(qa, p0, p1, p2, p3) : i32x4.splat(0);
  const s = hadd4i(rowDot<T>(w0, p0, p1, p2, p3, p4), rowDot<T>(w1, p0, p1, p2, p3, p4),
    rowDot<T>(w2, p0, p1, p2, p3, p4), rowDot<T>(w3, p0, p1, p2, p3, p4));
  return fma(f32x4.convert_i32x4_s(s), f32x4.mul(ds, v128.load32_splat(da)), acc);
}

@inline function qmmImpl<T>(w: usize, N: i32, K: i32, dq: usize, dd: usize, M: i32, c: usize, ldc: usize,
  accumulate: i32, ith: i32, nth: i32): void {
  const nb = K >> 5;
  const bb: usize = !isSigned<T>() ? 18 : 34;
  const rowBytes = <usize>nb * bb;
  const add = accumulate != 0;
  const aRow = <usize>K;
  const dRow = <usize>nb << 2;
  // jobs of 32 weight rows
  for (let j = nextJob(); j * 32 < N; j = nextJob()) {
  const n1 = min(N, j * 32 + 32);
  for (let n8 = j * 32; n8 < n1; n8 += 8) {
    const nr8 = min(8, n1 - n8);
    // rows past the end repeat the last one (computed, never stored)
    const rl = w + <usize>(n8 + nr8 - 1) * rowBytes;
    const r0 = w + <usize>n8 * rowBytes;
    const r1 = nr8 > 1 ? r0 + rowBytes : rl;
    const r2 = nr8 > 2 ? r0 + 2 * rowBytes : rl;
    const r3 = nr8 > 3 ? r0 + 3 * rowBytes : rl;
    const r4 = nr8 > 4 ? r0 + 4 * rowBytes : rl;
    const r5 = nr8 > 5 ? r0 + 5 * rowBytes : rl;
    const r6 = nr8 > 6 ? r0 + 6 * rowBytes : rl;
    const r7 = nr8 > 7 ? r0 + 7 * rowBytes : rl;
    // four activation rows share every weight block and its scales
    for (let h = 0; h < 2; h++) {
      const n = n8 + h * 4;
      const nr = min(4, nr8 - h * 4);
      if (nr <= 0) break;
      const q0 = h ? r4 : r0, q1 = h ? r5 : r1, q2 = h ? r6 : r2, q3 = h ? r7 : r3;
      for (let m = 0; m + 4 <= M; m += 4) {
        let qa = dq + <usize>m * aRow;
        let da = dd + <usize>m * dRow;
        let w0 = q0, w1 = q1, w2 = q2, w3 = q3;
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        for (let b = 0; b < nb; b++) {
          const ds = scales4(w0, w1, w2, w3);
          c0 = block4<T>(qa, da, w0, w1, w2, w3, ds, c0);
          c1 = block4<T>(qa + aRow, da + dRow, w0, w1, w2, w3, ds, c1);
          c2 = block4<T>(qa + 2 * aRow, da + 2 * dRow, w0, w1, w2, w3, ds, c2);
          c3 = block4<T>(qa + 3 * aRow, da + 3 * dRow, w0, w1, w2, w3, ds, c3);
          qa += 32;
          da += 4;
          w0 += bb; w1 += bb; w2 += bb; w3 += bb;
        }
        const cp = c + ((<usize>m * ldc + <usize>n) << 2);
        storeRow4(cp, c0, nr, add);
        storeRow4(cp + (ldc << 2), c1, nr, add);
        storeRow4(cp + (ldc << 3), c2, nr, add);
        storeRow4(cp + 3 * (ldc << 2), c3, nr, add);
      }
    }
    // the remaining activation rows (M mod 4; decode, M < 4, goes to qmvRuns / qmv_q8 in the relaxed build):
    // eight weight rows share each activation block
    for (let m = M & ~3; m < M; m++) {
      let qa = dq + <usize>m * aRow;
      let da = dd + <usize>m * dRow;
      let w0 = r0, w1 = r1, w2 = r2, w3 = r3, w4 = r4, w5 = r5, w6 = r6, w7 = r7;
      let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const p0 = prepA<T>(qa, 0), p1 = prepA<T>(qa, 1), p2 = prepA<T>(qa, 2), p3 = prepA<T>(qa, 3);
        const p4 = !isSigned<T>() ? negSum(qa, p0, p1, p2, p3) : i32x4.splat(0);
        const dav = v128.load32_splat(da);
        const s = hadd4i(rowDot<T>(w0, p0, p1, p2, p3, p4), rowDot<T>(w1, p0, p1, p2, p3, p4),
          rowDot<T>(w2, p0, p1, p2, p3, p4), rowDot<T>(w3, p0, p1, p2, p3, p4));
        acc = fma(f32x4.convert_i32x4_s(s), f32x4.mul(scales4(w0, w1, w2, w3), dav), acc);
        const s2 = hadd4i(rowDot<T>(w4, p0, p1, p2, p3, p4), rowDot<T>(w5, p0, p1, p2, p3, p4),
          rowDot<T>(w6, p0, p1, p2, p3, p4), rowDot<T>(w7, p0, p1, p2, p3, p4));
        acc2 = fma(f32x4.convert_i32x4_s(s2), f32x4.mul(scales4(w4, w5, w6, w7), dav), acc2);
        qa += 32;
        da += 4;
        w0 += bb; w1 += bb; w2 += bb; w3 += bb; w4 += bb; w5 += bb; w6 += bb; w7 += bb;
      }
      const cp = c + ((<usize>m * ldc + <usize>n8) << 2);
      storeRow4(cp, acc, min(4, nr8), add);
      if (nr8 > 4) storeRow4(cp + 16, acc2, nr8 - 4, add);
    }
  }
  }
}

/** weight rows per decode job run (qmvRuns): a job is 8 runs, 8·RUN rows */
const RUN = 16;

/** output row n of activation row m: store or accumulate */
@inline function put(c: usize, n: i32, v: f32, add: bool): void {
  const p = c + (<usize>n << 2);
  store<f32>(p, add ? load<f32>(p) + v : v);
}

/** bytes per activation block prepared for the decode pass */
const PREP: usize = 80;

/** bytes of prepDecode output for M rows of K */
export function qmv_prep_bytes(M: i32, K: i32): i32 {
  return M * (K >> 5) * <i32>PREP;
}

/**
 * Activation blocks prepared once per call for the decode pass (rowDotX's operands), PREP bytes each:
 * |a| (32 bytes), a < 0 mask (32), −Σa⁻ (i32), da (f32)
 */
@inline function prepDecode(dq: usize, dd: usize, M: i32, K: i32, prep: usize): void {
  const nb = M * (K >> 5);
  for (let b = 0; b < nb; b++) {
    const qa = dq + (<usize>b << 5);
    const a0 = v128.load(qa), a1 = v128.load(qa, 16);
    const s0 = i8x16.lt_s(a0, i8x16.splat(0)), s1 = i8x16.lt_s(a1, i8x16.splat(0));
    const n0 = v128.and(a0, s0), n1 = v128.and(a1, s1); // the negative lanes
    const n16 = i16x8.add(i16x8.add(i16x8.extend_low_i8x16_s(n0), i16x8.extend_high_i8x16_s(n0)),
      i16x8.add(i16x8.extend_low_i8x16_s(n1), i16x8.extend_high_i8x16_s(n1)));
    const n32 = i32x4.extadd_pairwise_i16x8_s(n16);
    const p = prep + <usize>b * PREP;
    v128.store(p, i8x16.abs(a0));
    v128.store(p, i8x16.abs(a1), 16);
    v128.store(p, s0, 32);
    v128.store(p, s1, 48);
    // Σa over a < 0 is −Σa⁻
    store<i32>(p, i32x4.extract_lane(n32, 0) + i32x4.extract_lane(n32, 1) + i32x4.extract_lane(n32, 2) + i32x4.extract_lane(n32, 3), 64);
    store<f32>(p, load<f32>(dd + (<usize>b << 2)), 68);
  }
}

/**
 * q8_0 decode job j (M < 4, relaxed build) of one weight matrix against prepared activations, by sign-transfer
 * dots (rowDotX: two dots per row, Σa⁻ once per block). The job is 8 runs of L ≤ RUN consecutive weight rows
 * and the 8 rows done together are one from each run: the weights are read as 8 long sequential streams
 * whatever K is. Eight adjacent rows of a short-K matrix instead (K = 1024: 8.5 KiB) are 8 short streams
 * within two or three pages, which the hardware prefetchers follow badly: measured ~1.7× faster on
 * 32000×1024 from L3, ~1.1–1.2× on the model's other shapes.
 */
function qmvJob(w: usize, N: i32, K: i32, M: i32, c: usize, ldc: usize, add: bool, prep: usize, j: i32): void {
  const nb = K >> 5;
  const bb: usize = 34;
  const rowBytes = <usize>nb * bb;
  const one = i16x8.splat(<i16>(nb > 0 ? 1 : 0));
  const JR = 8 * RUN;
  const last = N - 1;
  const j0 = j * JR;
  // the last job may be short: 8 runs of ceil(rows / 8); rows past N repeat the last row (computed, not stored)
  const L = min(RUN, (N - j0 + 7) >> 3);
  for (let t = 0; t < L; t++) {
    const n0 = j0 + t;
    const r0 = w + <usize>n0 * rowBytes;
    const r1 = w + <usize>min(n0 + L, last) * rowBytes, r2 = w + <usize>min(n0 + 2 * L, last) * rowBytes;
    const r3 = w + <usize>min(n0 + 3 * L, last) * rowBytes, r4 = w + <usize>min(n0 + 4 * L, last) * rowBytes;
    const r5 = w + <usize>min(n0 + 5 * L, last) * rowBytes, r6 = w + <usize>min(n0 + 6 * L, last) * rowBytes;
    const r7 = w + <usize>min(n0 + 7 * L, last) * rowBytes;
    for (let m = 0; m < M; m++) {
      let pa = prep + <usize>m * <usize>nb * PREP;
      let w0 = r0, w1 = r1, w2 = r2, w3 = r3, w4 = r4, w5 = r5, w6 = r6, w7 = r7;
      let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const u0 = v128.load(pa), u1 = v128.load(pa, 16), s0 = v128.load(pa, 32), s1 = v128.load(pa, 48);
        const nc = v128.load32_splat(pa, 64);
        const dav = v128.load32_splat(pa, 68);
        const s = i32x4.sub(hadd4i(rowDotX(w0, u0, u1, s0, s1, one), rowDotX(w1, u0, u1, s0, s1, one),
          rowDotX(w2, u0, u1, s0, s1, one), rowDotX(w3, u0, u1, s0, s1, one)), nc);
        acc = fma(f32x4.convert_i32x4_s(s), f32x4.mul(scales4(w0, w1, w2, w3), dav), acc);
        // never taken (ldc < 2^31): a block boundary, so that the second four rows' loads are not hoisted above the
        // first four rows' arithmetic (fewer live vectors, no spills)
        if (<i32>ldc < 0) acc = f32x4.neg(acc);
        const s2 = i32x4.sub(hadd4i(rowDotX(w4, u0, u1, s0, s1, one), rowDotX(w5, u0, u1, s0, s1, one),
          rowDotX(w6, u0, u1, s0, s1, one), rowDotX(w7, u0, u1, s0, s1, one)), nc);
        acc2 = fma(f32x4.convert_i32x4_s(s2), f32x4.mul(scales4(w4, w5, w6, w7), dav), acc2);
        pa += PREP;
        w0 += bb; w1 += bb; w2 += bb; w3 += bb; w4 += bb; w5 += bb; w6 += bb; w7 += bb;
      }
      const cm = c + ((<usize>m * ldc) << 2);
      put(cm, n0, f32x4.extract_lane(acc, 0), add);
      if (n0 + L < N) put(cm, n0 + L, f32x4.extract_lane(acc, 1), add);
      if (n0 + 2 * L < N) put(cm, n0 + 2 * L, f32x4.extract_lane(acc, 2), add);
      if (n0 + 3 * L < N) put(cm, n0 + 3 * L, f32x4.extract_lane(acc, 3), add);
      if (n0 + 4 * L < N) put(cm, n0 + 4 * L, f32x4.extract_lane(acc2, 0), add);
      if (n0 + 5 * L < N) put(cm, n0 + 5 * L, f32x4.extract_lane(acc2, 1), add);
      if (n0 + 6 * L < N) put(cm, n0 + 6 * L, f32x4.extract_lane(acc2, 2), add);
      if (n0 + 7 * L < N) put(cm, n0 + 7 * L, f32x4.extract_lane(acc2, 3), add);
    }
  }
}

@inline function qmvRuns(w: usize, N: i32, K: i32, dq: usize, dd: usize, M: i32, c: usize, ldc: usize, add: bool,
  prep: usize): void {
  prepDecode(dq, dd, M, K, prep);
  for (let j = nextJob(); j * 8 * RUN < N; j = nextJob()) qmvJob(w, N, K, M, c, ldc, add, prep, j);
}

/** whether qmv_q8 is built (the relaxed build: it runs qmvJob) */
export function qmv_q8_built(): i32 {
  return Q8R ? 1 : 0;
}

/** scratch bytes per thread of qmv_q8: quantized rows, their scales and the prepared blocks (64-byte aligned) */
export function qmv_q8_scratch_bytes(M: i32, K: i32): i32 {
  return ((M * K + 63) & ~63) + ((M * (K >> 5) * 4 + 63) & ~63) + qmv_prep_bytes(M, K);
}

/**
 * Decode products sharing one f32 input: C_i (M×N_i, ldc_i) (+)= q8(A) · W_iᵀ for up to three q8_0 weight
 * matrices (nmat) in one dispatch, A (M < 4 rows, lda). Every thread quantizes and prepares A itself (K/32
 * blocks: cheaper than a second dispatch), then takes jobs numbered across the matrices in order. Results
 * are those of quant_rows_q8 + qmm for each matrix alone (same rounding, same job contents).
 */
export function qmv_q8(nmat: i32, K: i32, a: usize, M: i32, lda: usize, accumulate: i32, scratch: usize, scratchStride: usize,
  w0: usize, N0: i32, c0: usize, ldc0: usize, w1: usize, N1: i32, c1: usize, ldc1: usize,
  w2: usize, N2: i32, c2: usize, ldc2: usize, ith: i32, nth: i32): void {
  if (!Q8R) return;
  const ws = scratch + <usize>ith * scratchStride;
  const dq = ws;
  const dd = dq + <usize>((M * K + 63) & ~63);
  const prep = dd + <usize>((M * (K >> 5) * 4 + 63) & ~63);
  quant_rows_q8(a, lda, 0, M, K, dq, dd, 0, 0, 0, 1);
  prepDecode(dq, dd, M, K, prep);
  const JR = 8 * RUN;
  const add = accumulate != 0;
  const j0 = (N0 + JR - 1) / JR;
  const j1 = nmat > 1 ? j0 + (N1 + JR - 1) / JR : j0;
  const j2 = nmat > 2 ? j1 + (N2 + JR - 1) / JR : j1;
  for (let j = nextJob(); j < j2; j = nextJob()) {
    if (j < j0) qmvJob(w0, N0, K, M, c0, ldc0, add, prep, j);
    else if (j < j1) qmvJob(w1, N1, K, M, c1, ldc1, add, prep, j - j0);
    else qmvJob(w2, N2, K, M, c2, ldc2, add, prep, j - j1);
  }
}

/** C (M×N, ldc) (+)= q8(A) · W^T for q8_0 (kind 0) or q4_0 (kind 1) weights; thread share = rows of W */
export function qmm(kind: i32, w: usize, N: i32, K: i32, dq: usize, dd: usize, M: i32, c: usize, ldc: usize,
  accumulate: i32, scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  if (Q8R) {
    if (kind == 0 && M < 4) {
      qmvRuns(w, N, K, dq, dd, M, c, ldc, accumulate != 0, scratch + <usize>ith * scratchStride);
      return;
    }
  }
  if (kind == 0) qmmImpl<i8>(w, N, K, dq, dd, M, c, ldc, accumulate, ith, nth);
  else qmmImpl<u8>(w, N, K, dq, dd, M, c, ldc, accumulate, ith, nth);
}

/** even halves of h (lanes 0,2,4,6) as f32 bits: f16 → exponent/mantissa at bits 27..13 (value·2^-112), bf16 exact */
@inline function evenH<T>(h: v128): v128 {
  if (isSigned<T>()) return i32x4.shl(h, 16);
  return v128.and(i32x4.shr_s(i32x4.shl(h, 16), 3), i32x4.splat(0x8fffe000));
}

@inline function oddH<T>(h: v128): v128 {
  if (isSigned<T>()) return v128.and(h, i32x4.splat(0xffff0000));
  return v128.and(i32x4.shr_s(h, 3), i32x4.splat(0x8fffe000));
}

@inline function hw<T>(h: u32): f32 {
  return isSigned<T>() ? reinterpret<f32>(h << 16) : f16tof32(h);
}

/** exact, slow: one output with the plain conversion (rows holding f16 inf/NaN, where the shift trick is wrong) */
@inline function hdotExact<T>(w: usize, x: usize, K: i32): f32 {
  const K8 = K & ~7;
  let s: f32 = 0;
  const sc: f32 = isSigned<T>() ? 1 : reinterpret<f32>(0x07800000); // 2^-112
  for (let k = 0; k < K8; k++) {
    const j = (k & ~7) + ((k & 1) << 2) + ((k & 7) >> 1);
    s += hw<T>(<u32>load<u16>(w + (<usize>k << 1))) * (load<f32>(x + (<usize>j << 2)) * sc);
  }
  for (let k = K8; k < K; k++) s += hw<T>(<u32>load<u16>(w + (<usize>k << 1))) * load<f32>(x + (<usize>k << 2));
  return s;
}

/** the K % 8 tail of four rows (plain conversion, natural order) */
@inline function htail4<T>(r0: usize, r1: usize, r2: usize, r3: usize, xr: usize, K8: i32, K: i32): v128 {
  let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
  for (let k = K8; k < K; k++) {
    const xk = load<f32>(xr + (<usize>k << 2));
    const o = <usize>k << 1;
    t0 += xk * hw<T>(<u32>load<u16>(r0 + o));
    t1 += xk * hw<T>(<u32>load<u16>(r1 + o));
    t2 += xk * hw<T>(<u32>load<u16>(r2 + o));
    t3 += xk * hw<T>(<u32>load<u16>(r3 + o));
  }
  return f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3);
}

@inline function hmmImpl<T>(w: usize, N: i32, K: i32, x: usize, M: i32, c: usize, ldc: usize,
  accumulate: i32, ith: i32, nth: i32): void {
  const rowBytes = <usize>K << 1;
  const add = accumulate != 0;
  const K8 = K & ~7;
  const xRow = <usize>K << 2;
  // jobs of 32 weight rows
  for (let j = nextJob(); j * 32 < N; j = nextJob()) {
  const n1 = min(N, j * 32 + 32);
  for (let n = j * 32; n < n1; n += 4) {
    const nr = min(4, n1 - n);
    const r0 = w + <usize>n * rowBytes;
    const r1 = nr > 1 ? r0 + rowBytes : r0;
    const r2 = nr > 2 ? r0 + 2 * rowBytes : r0;
    const r3 = nr > 3 ? r0 + 3 * rowBytes : r0;
    // f16 inf/NaN (exponent all ones) seen in these rows: (h << 1) ≥ 0xf800 unsigned
    let flag = i16x8.splat(0);
    let m = 0;
    // prefill: two weight rows × four activation rows (8 accumulators; each widened weight vector used 4×)
    for (; m + 4 <= M; m += 4) {
      const xa = x + <usize>m * xRow;
      for (let p = 0; p < 2; p++) {
        if (2 * p >= nr) break;
        const ra = p ? r2 : r0, rb = p ? r3 : r1;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        for (let k = 0; k < K8; k += 8) {
          const xo = xa + (<usize>k << 2);
          const o = <usize>k << 1;
          const h0 = v128.load(ra + o), h1 = v128.load(rb + o);
          if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.max_u(i16x8.shl(h0, 1), i16x8.shl(h1, 1)));
          const e0 = evenH<T>(h0), o0 = oddH<T>(h0), e1 = evenH<T>(h1), o1 = oddH<T>(h1);
          let xe = v128.load(xo), xd = v128.load(xo, 16);
          a0 = fma(o0, xd, fma(e0, xe, a0)); b0 = fma(o1, xd, fma(e1, xe, b0));
          xe = v128.load(xo + xRow); xd = v128.load(xo + xRow, 16);
          a1 = fma(o0, xd, fma(e0, xe, a1)); b1 = fma(o1, xd, fma(e1, xe, b1));
          xe = v128.load(xo + 2 * xRow); xd = v128.load(xo + 2 * xRow, 16);
          a2 = fma(o0, xd, fma(e0, xe, a2)); b2 = fma(o1, xd, fma(e1, xe, b2));
          xe = v128.load(xo + 3 * xRow); xd = v128.load(xo + 3 * xRow, 16);
          a3 = fma(o0, xd, fma(e0, xe, a3)); b3 = fma(o1, xd, fma(e1, xe, b3));
        }
        // [ra·x0, rb·x0, ra·x1, rb·x1], [ra·x2, rb·x2, ra·x3, rb·x3]
        const lo = hadd4f(a0, b0, a1, b1), hi = hadd4f(a2, b2, a3, b3);
        const two = nr - 2 * p > 1;
        for (let i = 0; i < 4; i++) {
          const v = i < 2 ? lo : hi;
          let sa = (i & 1) ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 0);
          let sb = (i & 1) ? f32x4.extract_lane(v, 3) : f32x4.extract_lane(v, 1);
          const xr = xa + <usize>i * xRow;
          for (let k = K8; k < K; k++) {
            const xk = load<f32>(xr + (<usize>k << 2));
            sa += xk * hw<T>(<u32>load<u16>(ra + (<usize>k << 1)));
            sb += xk * hw<T>(<u32>load<u16>(rb + (<usize>k << 1)));
          }
          const cp = c + (((<usize>m + i) * ldc + <usize>(n + 2 * p)) << 2);
          store<f32>(cp, add ? load<f32>(cp) + sa : sa);
          if (two) store<f32>(cp, add ? load<f32>(cp, 4) + sb : sb, 4);
        }
      }
    }
    for (; m + 2 <= M; m += 2) {
      const xa = x + <usize>m * xRow;
      const xb = xa + xRow;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let k = 0; k < K8; k += 8) {
        const xo = <usize>k << 2;
        const o = <usize>k << 1;
        let h = v128.load(r0 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        let e = evenH<T>(h), d = oddH<T>(h);
        a0 = fma(d, v128.load(xa + xo, 16), fma(e, v128.load(xa + xo), a0));
        b0 = fma(d, v128.load(xb + xo, 16), fma(e, v128.load(xb + xo), b0));
        h = v128.load(r1 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        e = evenH<T>(h); d = oddH<T>(h);
        a1 = fma(d, v128.load(xa + xo, 16), fma(e, v128.load(xa + xo), a1));
        b1 = fma(d, v128.load(xb + xo, 16), fma(e, v128.load(xb + xo), b1));
        h = v128.load(r2 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        e = evenH<T>(h); d = oddH<T>(h);
        a2 = fma(d, v128.load(xa + xo, 16), fma(e, v128.load(xa + xo), a2));
        b2 = fma(d, v128.load(xb + xo, 16), fma(e, v128.load(xb + xo), b2));
        h = v128.load(r3 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        e = evenH<T>(h); d = oddH<T>(h);
        a3 = fma(d, v128.load(xa + xo, 16), fma(e, v128.load(xa + xo), a3));
        b3 = fma(d, v128.load(xb + xo, 16), fma(e, v128.load(xb + xo), b3));
      }
      let ra = hadd4f(a0, a1, a2, a3);
      let rb = hadd4f(b0, b1, b2, b3);
      if (K8 < K) {
        ra = f32x4.add(ra, htail4<T>(r0, r1, r2, r3, xa, K8, K));
        rb = f32x4.add(rb, htail4<T>(r0, r1, r2, r3, xb, K8, K));
      }
      storeRow4(c + ((<usize>m * ldc + <usize>n) << 2), ra, nr, add);
      storeRow4(c + (((<usize>m + 1) * ldc + <usize>n) << 2), rb, nr, add);
    }
    for (; m < M; m++) {
      const xr = x + <usize>m * xRow;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let k = 0; k < K8; k += 8) {
        const x0 = v128.load(xr + (<usize>k << 2));
        const x1 = v128.load(xr + (<usize>k << 2), 16);
        const o = <usize>k << 1;
        let h = v128.load(r0 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        s0 = fma(oddH<T>(h), x1, fma(evenH<T>(h), x0, s0));
        h = v128.load(r1 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        s1 = fma(oddH<T>(h), x1, fma(evenH<T>(h), x0, s1));
        h = v128.load(r2 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        s2 = fma(oddH<T>(h), x1, fma(evenH<T>(h), x0, s2));
        h = v128.load(r3 + o);
        if (!isSigned<T>()) flag = i16x8.max_u(flag, i16x8.shl(h, 1));
        s3 = fma(oddH<T>(h), x1, fma(evenH<T>(h), x0, s3));
      }
      let r = hadd4f(s0, s1, s2, s3);
      if (K8 < K) r = f32x4.add(r, htail4<T>(r0, r1, r2, r3, xr, K8, K));
      storeRow4(c + ((<usize>m * ldc + <usize>n) << 2), r, nr, add);
    }
    // rare: inf/NaN weights — redo these rows' outputs exactly
    if (!isSigned<T>() && v128.any_true(i16x8.ge_u(flag, i16x8.splat(<i16>0xf800)))) {
      for (let mm = 0; mm < M; mm++) {
        const xr = x + <usize>mm * xRow;
        for (let i = 0; i < nr; i++) {
          const cp = c + ((<usize>mm * ldc + <usize>(n + i)) << 2);
          const v = hdotExact<T>(r0 + <usize>i * rowBytes, xr, K);
          store<f32>(cp, add ? load<f32>(cp) + v : v);
        }
      }
    }
  }
  }
}

/** C (M×N, ldc) (+)= X · W^T for f16 (kind 0) or bf16 (kind 1) weights, X = rows rounded by round_rows */
export function hmm(kind: i32, w: usize, N: i32, K: i32, x: usize, M: i32, c: usize, ldc: usize,
  accumulate: i32, ith: i32, nth: i32): void {
  if (kind == 0) hmmImpl<u16>(w, N, K, x, M, c, ldc, accumulate, ith, nth);
  else hmmImpl<i16>(w, N, K, x, M, c, ldc, accumulate, ith, nth);
}

// keep the single-row helper referenced for small builds
export function hdot_f16(w: usize, x: usize, K: i32): f32 {
  return hdotExact<u16>(w, x, K);
}
