// Row-wise kernels (softmax, norms), attention, RoPE, AdamW and elementwise fast paths. Rows are split
// over threads by (ith, nth); every row is computed the same way whatever the split.
import { fma, hmax, hsum, part } from './common';
import { expf1, expv } from './mathv';

@inline function rowRange(rows: i32, ith: i32, nth: i32): i64 {
  return (<i64>part(rows, ith, nth, 1) << 32) | <i64>part(rows, ith + 1, nth, 1);
}

function rowMax(x: usize, cols: i32): f32 {
  let m = f32x4.splat(-Infinity);
  const c4 = cols & ~3;
  for (let c = 0; c < c4; c += 4) m = f32x4.max(m, v128.load(x + (<usize>c << 2)));
  let r = hmax(m);
  for (let c = c4; c < cols; c++) r = max(r, load<f32>(x + (<usize>c << 2)));
  return r;
}

/** out = softmax(x) per row; log = 1: out = log_softmax(x) */
export function softmax_rows(rows: i32, cols: i32, x: usize, out: usize, log: i32, ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  const c4 = cols & ~3;
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const xr = x + ((<usize>r * cols) << 2);
    const o = out + ((<usize>r * cols) << 2);
    const m = rowMax(xr, cols);
    const mv = f32x4.splat(m);
    let s = f32x4.splat(0);
    let st: f32 = 0;
    if (m == -Infinity) {
      for (let c = 0; c < cols; c++) store<f32>(o + (<usize>c << 2), log ? -Infinity : 0);
      if (!log) continue;
    }
    for (let c = 0; c < c4; c += 4) {
      const e = expv(f32x4.sub(v128.load(xr + (<usize>c << 2)), mv));
      if (!log) v128.store(o + (<usize>c << 2), e);
      s = f32x4.add(s, e);
    }
    for (let c = c4; c < cols; c++) {
      const e = expf1(load<f32>(xr + (<usize>c << 2)) - m);
      if (!log) store<f32>(o + (<usize>c << 2), e);
      st += e;
    }
    const sum = hsum(s) + st;
    if (log) {
      const lse = f32x4.splat(m + <f32>Math.log(<f64>sum));
      for (let c = 0; c < c4; c += 4) v128.store(o + (<usize>c << 2), f32x4.sub(v128.load(xr + (<usize>c << 2)), lse));
      for (let c = c4; c < cols; c++) store<f32>(o + (<usize>c << 2), load<f32>(xr + (<usize>c << 2)) - f32x4.extract_lane(lse, 0));
    } else {
      const inv = f32x4.splat(sum > 0 ? <f32>1 / sum : 0);
      for (let c = 0; c < c4; c += 4) v128.store(o + (<usize>c << 2), f32x4.mul(v128.load(o + (<usize>c << 2)), inv));
      for (let c = c4; c < cols; c++) store<f32>(o + (<usize>c << 2), load<f32>(o + (<usize>c << 2)) * f32x4.extract_lane(inv, 0));
    }
  }
}

/** dx = y·(dy − Σ y·dy) per row */
export function softmax_bwd_rows(rows: i32, cols: i32, y: usize, dy: usize, dx: usize, ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  const c4 = cols & ~3;
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const b = (<usize>r * cols) << 2;
    let s = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) s = fma(v128.load(y + b + (<usize>c << 2)), v128.load(dy + b + (<usize>c << 2)), s);
    let dot = hsum(s);
    for (let c = c4; c < cols; c++) dot += load<f32>(y + b + (<usize>c << 2)) * load<f32>(dy + b + (<usize>c << 2));
    const dv = f32x4.splat(dot);
    for (let c = 0; c < c4; c += 4) {
      const o = b + (<usize>c << 2);
      v128.store(dx + o, f32x4.mul(v128.load(y + o), f32x4.sub(v128.load(dy + o), dv)));
    }
    for (let c = c4; c < cols; c++) {
      const o = b + (<usize>c << 2);
      store<f32>(dx + o, load<f32>(y + o) * (load<f32>(dy + o) - dot));
    }
  }
}

/** RMSNorm: out = x·rstd·w (w = 0: none), rstd per row */
export function rmsnorm_rows(rows: i32, cols: i32, x: usize, w: usize, eps: f32, out: usize, rstd: usize, ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  const c4 = cols & ~3;
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const xr = x + ((<usize>r * cols) << 2);
    const o = out + ((<usize>r * cols) << 2);
    let s = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const v = v128.load(xr + (<usize>c << 2));
      s = fma(v, v, s);
    }
    let ss = hsum(s);
    for (let c = c4; c < cols; c++) ss += load<f32>(xr + (<usize>c << 2)) * load<f32>(xr + (<usize>c << 2));
    const rs = <f32>(1 / Math.sqrt(<f64>(ss / <f32>cols + eps)));
    store<f32>(rstd + (<usize>r << 2), rs);
    const rv = f32x4.splat(rs);
    for (let c = 0; c < c4; c += 4) {
      let v = f32x4.mul(v128.load(xr + (<usize>c << 2)), rv);
      if (w) v = f32x4.mul(v, v128.load(w + (<usize>c << 2)));
      v128.store(o + (<usize>c << 2), v);
    }
    for (let c = c4; c < cols; c++) {
      let v = load<f32>(xr + (<usize>c << 2)) * rs;
      if (w) v *= load<f32>(w + (<usize>c << 2));
      store<f32>(o + (<usize>c << 2), v);
    }
  }
}

/** LayerNorm: out = (x − mean)·rstd·w + b (w, b = 0: none); mean and rstd per row */
export function layernorm_rows(rows: i32, cols: i32, x: usize, w: usize, b: usize, eps: f32, out: usize, mean: usize, rstd: usize,
  ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  const c4 = cols & ~3;
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const xr = x + ((<usize>r * cols) << 2);
    const o = out + ((<usize>r * cols) << 2);
    let s = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) s = f32x4.add(s, v128.load(xr + (<usize>c << 2)));
    let sum = hsum(s);
    for (let c = c4; c < cols; c++) sum += load<f32>(xr + (<usize>c << 2));
    const m = sum / <f32>cols;
    const mv = f32x4.splat(m);
    s = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const d = f32x4.sub(v128.load(xr + (<usize>c << 2)), mv);
      s = fma(d, d, s);
    }
    let vs = hsum(s);
    for (let c = c4; c < cols; c++) {
      const d = load<f32>(xr + (<usize>c << 2)) - m;
      vs += d * d;
    }
    const rs = <f32>(1 / Math.sqrt(<f64>(vs / <f32>cols + eps)));
    store<f32>(mean + (<usize>r << 2), m);
    store<f32>(rstd + (<usize>r << 2), rs);
    const rv = f32x4.splat(rs);
    for (let c = 0; c < c4; c += 4) {
      let v = f32x4.mul(f32x4.sub(v128.load(xr + (<usize>c << 2)), mv), rv);
      if (w) v = f32x4.mul(v, v128.load(w + (<usize>c << 2)));
      if (b) v = f32x4.add(v, v128.load(b + (<usize>c << 2)));
      v128.store(o + (<usize>c << 2), v);
    }
    for (let c = c4; c < cols; c++) {
      let v = (load<f32>(xr + (<usize>c << 2)) - m) * rs;
      if (w) v *= load<f32>(w + (<usize>c << 2));
      if (b) v += load<f32>(b + (<usize>c << 2));
      store<f32>(o + (<usize>c << 2), v);
    }
  }
}

/** dx of LayerNorm per row (dw/db are reduced over rows separately, see norm_param_grads) */
export function layernorm_bwd_rows(rows: i32, cols: i32, x: usize, w: usize, mean: usize, rstd: usize, dy: usize, dx: usize,
  ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const base = (<usize>r * cols) << 2;
    const m = load<f32>(mean + (<usize>r << 2));
    const rs = load<f32>(rstd + (<usize>r << 2));
    let sumD: f32 = 0, sumDX: f32 = 0;
    for (let c = 0; c < cols; c++) {
      const o = base + (<usize>c << 2);
      const xhat = (load<f32>(x + o) - m) * rs;
      const d = load<f32>(dy + o) * (w ? load<f32>(w + (<usize>c << 2)) : 1);
      sumD += d;
      sumDX += d * xhat;
    }
    sumD /= <f32>cols;
    sumDX /= <f32>cols;
    for (let c = 0; c < cols; c++) {
      const o = base + (<usize>c << 2);
      const xhat = (load<f32>(x + o) - m) * rs;
      const d = load<f32>(dy + o) * (w ? load<f32>(w + (<usize>c << 2)) : 1);
      store<f32>(dx + o, rs * (d - sumD - xhat * sumDX));
    }
  }
}

/** dx of RMSNorm per row */
export function rmsnorm_bwd_rows(rows: i32, cols: i32, x: usize, w: usize, rstd: usize, dy: usize, dx: usize, ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const base = (<usize>r * cols) << 2;
    const rs = load<f32>(rstd + (<usize>r << 2));
    let dot: f32 = 0;
    for (let c = 0; c < cols; c++) {
      const o = base + (<usize>c << 2);
      dot += load<f32>(dy + o) * (w ? load<f32>(w + (<usize>c << 2)) : 1) * load<f32>(x + o);
    }
    const k = (rs * rs * dot) / <f32>cols;
    for (let c = 0; c < cols; c++) {
      const o = base + (<usize>c << 2);
      const d = load<f32>(dy + o) * (w ? load<f32>(w + (<usize>c << 2)) : 1);
      store<f32>(dx + o, rs * (d - load<f32>(x + o) * k));
    }
  }
}

/**
 * Parameter gradients of the norms, split over columns: dw[c] += Σ_r dy·xhat, db[c] += Σ_r dy, with
 * xhat = (x − mean)·rstd (mean = 0: RMSNorm). Rows are summed in order, as the reference does.
 */
export function norm_param_grads(rows: i32, cols: i32, x: usize, mean: usize, rstd: usize, dy: usize, dw: usize, db: usize,
  ith: i32, nth: i32): void {
  const c0 = part(cols, ith, nth, 4);
  const c1 = part(cols, ith + 1, nth, 4);
  for (let r = 0; r < rows; r++) {
    const base = (<usize>r * cols) << 2;
    const m = mean ? load<f32>(mean + (<usize>r << 2)) : 0;
    const rs = load<f32>(rstd + (<usize>r << 2));
    for (let c = c0; c < c1; c++) {
      const o = base + (<usize>c << 2);
      const g = load<f32>(dy + o);
      if (dw) store<f32>(dw + (<usize>c << 2), load<f32>(dw + (<usize>c << 2)) + g * ((load<f32>(x + o) - m) * rs));
      if (db) store<f32>(db + (<usize>c << 2), load<f32>(db + (<usize>c << 2)) + g);
    }
  }
}

const CHUNK: i32 = 64;

/**
 * Fused attention forward, one query row at a time with an online softmax over chunks of 64 keys.
 * q/k/v strides in elements for (B, H|Hkv, T); D contiguous; out (B, Tq, H, D). mask: (B, Tk) bytes, 0 = attend.
 * Scratch per thread: CHUNK + D floats.
 */
export function attention_fwd(B: i32, H: i32, Hkv: i32, Tq: i32, Tk: i32, D: i32,
  q: usize, qs0: usize, qs1: usize, qs2: usize, k: usize, ks0: usize, ks1: usize, ks2: usize,
  v: usize, vs0: usize, vs1: usize, vs2: usize, out: usize, scale: f32, causal: i32, qPos0: i32, mask: usize,
  scratch: usize, scratchStride: usize, ith: i32, nth: i32): void {
  const ws = scratch + <usize>ith * scratchStride;
  const sc = ws;
  const acc = ws + (<usize>CHUNK << 2);
  const group = H / Hkv;
  const total = B * H * Tq;
  const r0 = part(total, ith, nth, 1);
  const r1 = part(total, ith + 1, nth, 1);
  const D4 = D & ~3;
  for (let row = r0; row < r1; row++) {
    const i = row % Tq;
    const h = (row / Tq) % H;
    const b = row / (Tq * H);
    const hk = h / group;
    const qp = q + ((<usize>b * qs0 + <usize>h * qs1 + <usize>i * qs2) << 2);
    const kb = k + ((<usize>b * ks0 + <usize>hk * ks1) << 2);
    const vb = v + ((<usize>b * vs0 + <usize>hk * vs1) << 2);
    const limit = causal ? min(Tk, qPos0 + i + 1) : Tk;
    for (let d = 0; d < D; d++) store<f32>(acc + (<usize>d << 2), 0);
    let m: f32 = -Infinity;
    let l: f32 = 0;
    for (let j0 = 0; j0 < limit; j0 += CHUNK) {
      const n = min(CHUNK, limit - j0);
      let cm: f32 = -Infinity;
      let jj = 0;
      // four keys at a time (no mask): four independent dot chains; each score is computed exactly as below
      if (!mask) for (; jj + 4 <= n; jj += 4) {
        const kp = kb + ((<usize>(j0 + jj) * ks2) << 2);
        const kp1 = kp + (ks2 << 2), kp2 = kp + (ks2 << 3), kp3 = kp1 + (ks2 << 3);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let d = 0; d < D4; d += 4) {
          const qv = v128.load(qp + (<usize>d << 2));
          const o = <usize>d << 2;
          a0 = fma(qv, v128.load(kp + o), a0);
          a1 = fma(qv, v128.load(kp1 + o), a1);
          a2 = fma(qv, v128.load(kp2 + o), a2);
          a3 = fma(qv, v128.load(kp3 + o), a3);
        }
        let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (let d = D4; d < D; d++) {
          const qd = load<f32>(qp + (<usize>d << 2));
          const o = <usize>d << 2;
          s0 += qd * load<f32>(kp + o);
          s1 += qd * load<f32>(kp1 + o);
          s2 += qd * load<f32>(kp2 + o);
          s3 += qd * load<f32>(kp3 + o);
        }
        s0 *= scale; s1 *= scale; s2 *= scale; s3 *= scale;
        const so = sc + (<usize>jj << 2);
        store<f32>(so, s0);
        store<f32>(so, s1, 4);
        store<f32>(so, s2, 8);
        store<f32>(so, s3, 12);
        cm = max(cm, max(max(s0, s1), max(s2, s3)));
      }
      for (; jj < n; jj++) {
        const j = j0 + jj;
        let s: f32;
        if (mask && load<u8>(mask + <usize>b * Tk + j) != 0) s = -Infinity;
        else {
          const kp = kb + ((<usize>j * ks2) << 2);
          let a = f32x4.splat(0);
          for (let d = 0; d < D4; d += 4) a = fma(v128.load(qp + (<usize>d << 2)), v128.load(kp + (<usize>d << 2)), a);
          s = hsum(a);
          for (let d = D4; d < D; d++) s += load<f32>(qp + (<usize>d << 2)) * load<f32>(kp + (<usize>d << 2));
          s *= scale;
        }
        store<f32>(sc + (<usize>jj << 2), s);
        cm = max(cm, s);
      }
      if (cm == -Infinity) continue;
      if (cm > m) {
        const f = m == -Infinity ? <f32>0 : expf1(m - cm);
        l *= f;
        const fv = f32x4.splat(f);
        for (let d = 0; d < D4; d += 4) v128.store(acc + (<usize>d << 2), f32x4.mul(v128.load(acc + (<usize>d << 2)), fv));
        for (let d = D4; d < D; d++) store<f32>(acc + (<usize>d << 2), load<f32>(acc + (<usize>d << 2)) * f);
        m = cm;
      }
      const mv = f32x4.splat(m);
      const n4 = n & ~3;
      let lv = f32x4.splat(0);
      for (let jj = 0; jj < n4; jj += 4) {
        const e = expv(f32x4.sub(v128.load(sc + (<usize>jj << 2)), mv));
        v128.store(sc + (<usize>jj << 2), e);
        lv = f32x4.add(lv, e);
      }
      l += hsum(lv);
      for (let jj = n4; jj < n; jj++) {
        const e = expf1(load<f32>(sc + (<usize>jj << 2)) - m);
        store<f32>(sc + (<usize>jj << 2), e);
        l += e;
      }
      jj = 0;
      // four keys per pass over acc, added in key order (as below) unless one weight is 0 (skipped below)
      for (; jj + 4 <= n; jj += 4) {
        const e0 = load<f32>(sc + (<usize>jj << 2)), e1 = load<f32>(sc + (<usize>jj << 2), 4);
        const e2 = load<f32>(sc + (<usize>jj << 2), 8), e3 = load<f32>(sc + (<usize>jj << 2), 12);
        if (e0 == 0 || e1 == 0 || e2 == 0 || e3 == 0) break;
        const ev0 = f32x4.splat(e0), ev1 = f32x4.splat(e1), ev2 = f32x4.splat(e2), ev3 = f32x4.splat(e3);
        const vp0 = vb + ((<usize>(j0 + jj) * vs2) << 2);
        const vp1 = vp0 + (vs2 << 2), vp2 = vp0 + (vs2 << 3), vp3 = vp1 + (vs2 << 3);
        for (let d = 0; d < D4; d += 4) {
          const o = <usize>d << 2;
          let t = fma(ev0, v128.load(vp0 + o), v128.load(acc + o));
          t = fma(ev1, v128.load(vp1 + o), t);
          t = fma(ev2, v128.load(vp2 + o), t);
          v128.store(acc + o, fma(ev3, v128.load(vp3 + o), t));
        }
        for (let d = D4; d < D; d++) {
          const o = <usize>d << 2;
          let t = load<f32>(acc + o) + e0 * load<f32>(vp0 + o);
          t += e1 * load<f32>(vp1 + o);
          t += e2 * load<f32>(vp2 + o);
          store<f32>(acc + o, t + e3 * load<f32>(vp3 + o));
        }
      }
      for (; jj < n; jj++) {
        const e = load<f32>(sc + (<usize>jj << 2));
        if (e == 0) continue;
        const ev = f32x4.splat(e);
        const vp = vb + ((<usize>(j0 + jj) * vs2) << 2);
        for (let d = 0; d < D4; d += 4) v128.store(acc + (<usize>d << 2), fma(ev, v128.load(vp + (<usize>d << 2)), v128.load(acc + (<usize>d << 2))));
        for (let d = D4; d < D; d++) store<f32>(acc + (<usize>d << 2), load<f32>(acc + (<usize>d << 2)) + e * load<f32>(vp + (<usize>d << 2)));
      }
    }
    const op = out + ((((<usize>b * Tq + i) * H + h) * D) << 2);
    const inv: f32 = l > 0 ? <f32>1 / l : 0;
    for (let d = 0; d < D; d++) store<f32>(op + (<usize>d << 2), load<f32>(acc + (<usize>d << 2)) * inv);
  }
}

/** AdamW for two values in f64x2: the scalar arithmetic below, lane by lane (IEEE f64 ops round the same) */
@inline function adamw2(g: v128, m: v128, v: v128, p: v128, b1: v128, c1: v128, b2: v128, c2: v128, decay: v128, lr: v128,
  bc1: v128, bc2: v128, eps: v128, po: usize, mo: usize, vo: usize): void {
  const mi = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b1, m), f64x2.mul(c1, g))));
  const vi = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(b2, v), f64x2.mul(f64x2.mul(c2, g), g))));
  const pi = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.mul(p, decay)));
  const np = f64x2.sub(pi, f64x2.div(f64x2.mul(lr, f64x2.div(mi, bc1)), f64x2.add(f64x2.sqrt(f64x2.div(vi, bc2)), eps)));
  v128.store64_lane(mo, f32x4.demote_f64x2_zero(mi), 0);
  v128.store64_lane(vo, f32x4.demote_f64x2_zero(vi), 0);
  v128.store64_lane(po, f32x4.demote_f64x2_zero(np), 0);
}

/** AdamW (decoupled weight decay), as the reference, in f64 arithmetic: p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + eps) */
export function adamw_step(n: i32, p: usize, g: usize, m: usize, v: usize, lr: f64, b1: f64, b2: f64, eps: f64, wd: f64,
  bc1: f64, bc2: f64, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 4);
  const i1 = part(n, ith + 1, nth, 4);
  let i = i0;
  if (i + 2 <= i1) {
    const B1 = f64x2.splat(b1), C1 = f64x2.splat(1 - b1), B2 = f64x2.splat(b2), C2 = f64x2.splat(1 - b2);
    const DEC = f64x2.splat(1 - lr * wd), LR = f64x2.splat(lr), BC1 = f64x2.splat(bc1), BC2 = f64x2.splat(bc2);
    const EPS = f64x2.splat(eps);
    for (; i + 2 <= i1; i += 2) {
      const o = <usize>i << 2;
      const gv = f64x2.promote_low_f32x4(v128.load64_zero(g + o));
      const mv = f64x2.promote_low_f32x4(v128.load64_zero(m + o));
      const vv = f64x2.promote_low_f32x4(v128.load64_zero(v + o));
      const pv = f64x2.promote_low_f32x4(v128.load64_zero(p + o));
      adamw2(gv, mv, vv, pv, B1, C1, B2, C2, DEC, LR, BC1, BC2, EPS, p + o, m + o, v + o);
    }
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const gi = <f64>load<f32>(g + o);
    const mi = <f64><f32>(b1 * <f64>load<f32>(m + o) + (1 - b1) * gi);
    const vi = <f64><f32>(b2 * <f64>load<f32>(v + o) + (1 - b2) * gi * gi);
    store<f32>(m + o, <f32>mi);
    store<f32>(v + o, <f32>vi);
    const pi = <f64><f32>(<f64>load<f32>(p + o) * (1 - lr * wd));
    store<f32>(p + o, <f32>(pi - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps)));
  }
}

// ---- elementwise ----

@inline function binop(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.max(a, b);
    default: return f32x4.min(a, b);
  }
}

@inline function binop1(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return max(a, b);
    default: return min(a, b);
  }
}

/**
 * out[r, c] = a[r·ars + c·acs] op b[r·brs + c·bcs] with acs, bcs ∈ {0, 1} (contiguous or broadcast
 * along the row); ops 0..5 = add sub mul div max min. Scalar lane semantics of f32x4.max/min match
 * Math.max/min for non-NaN inputs.
 */
export function binary_rows(op: i32, rows: i32, cols: i32, a: usize, ars: usize, acs: i32, b: usize, brs: usize, bcs: i32, out: usize,
  ith: i32, nth: i32): void {
  const rr = rowRange(rows, ith, nth);
  const c4 = cols & ~3;
  for (let r = <i32>(rr >> 32); r < <i32>rr; r++) {
    const ap = a + ((<usize>r * ars) << 2);
    const bp = b + ((<usize>r * brs) << 2);
    const o = out + ((<usize>r * cols) << 2);
    const as = f32x4.splat(load<f32>(ap));
    const bs = f32x4.splat(load<f32>(bp));
    for (let c = 0; c < c4; c += 4) {
      const off = <usize>c << 2;
      const av = acs ? v128.load(ap + off) : as;
      const bv = bcs ? v128.load(bp + off) : bs;
      v128.store(o + off, binop(op, av, bv));
    }
    for (let c = c4; c < cols; c++) {
      const off = <usize>c << 2;
      store<f32>(o + off, binop1(op, load<f32>(ap + (acs ? off : 0)), load<f32>(bp + (bcs ? off : 0))));
    }
  }
}

@inline function un(op: i32, x: v128): v128 {
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return expv(x);
    case 2: return f32x4.sqrt(x);
    case 3: return f32x4.abs(x);
    case 4: return f32x4.max(x, f32x4.splat(0));
    case 5: return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
    case 6: return f32x4.div(x, f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
    case 7: return f32x4.mul(x, x);
    case 8: return f32x4.div(f32x4.splat(1), x);
    case 9: return f32x4.div(f32x4.splat(1), f32x4.sqrt(x));
    case 10: return f32x4.div(x, f32x4.add(f32x4.splat(1), expv(f32x4.mul(x, f32x4.splat(-1.702)))));
    default: return f32x4.add(f32x4.mul(x, f32x4.splat(<f32>0)), x); // affine handled separately
  }
}

/** out[i] = op(x[i]); ops: neg exp sqrt abs relu sigmoid silu square recip rsqrt quick_gelu */
export function unary_f32(op: i32, n: i32, x: usize, out: usize, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 4);
  const i1 = part(n, ith + 1, nth, 4);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), un(op, v128.load(x + (<usize>i << 2))));
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(un(op, f32x4.splat(load<f32>(x + o))), 0));
  }
}

/** out[i] = x[i]·alpha + beta (rounded as the reference: one f32 product, then the sum) */
export function affine_f32(n: i32, x: usize, alpha: f32, beta: f32, out: usize, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 4);
  const i1 = part(n, ith + 1, nth, 4);
  const av = f32x4.splat(alpha), bv = f32x4.splat(beta);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), f32x4.add(f32x4.mul(v128.load(x + (<usize>i << 2)), av), bv));
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * alpha + beta);
}
