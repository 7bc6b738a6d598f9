// Unary ops and their derivatives, mirroring the reference formulas in f64 and rounding once to f32.
// Exactness matters more than speed here: activations feed q8_0 quantization in quantized inference,
// where a 1-ulp difference can flip a rounding and visibly move logits away from llama.cpp's. Derivatives
// of the smooth activations also have an f32x4 version (unary_bwd_f32): only training uses them. The
// forward ops built on e^x run two lanes at a time in f64x2, with an e^x as accurate as Math.exp.
import { part } from './common';
import { expv } from './mathv';

// op ids: 0 neg 1 exp 2 log 3 sqrt 4 rsqrt 5 tanh 6 abs 7 relu 8 sigmoid 9 gelu_erf 10 gelu_tanh
//         11 quick_gelu 12 silu 13 square 14 recip
const SQRT_2_OVER_PI: f64 = 0.7978845608028654;
const GELU_COEF_A: f64 = 0.044715;

@inline function sigmoid(x: f64): f64 {
  return 1 / (1 + Math.exp(-x));
}

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc), the reference's formula */
function erf(x: f64): f64 {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

function fwd(op: i32, x: f64): f64 {
  switch (op) {
    case 0: return -x;
    case 1: return Math.exp(x);
    case 2: return Math.log(x);
    case 3: return Math.sqrt(x);
    case 4: return 1 / Math.sqrt(x);
    case 5: return Math.tanh(x);
    case 6: return Math.abs(x);
    case 7: return x > 0 ? x : 0;
    case 8: return sigmoid(x);
    case 9: return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 10: return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x)));
    case 11: return x * sigmoid(1.702 * x);
    case 12: return x * sigmoid(x);
    case 13: return x * x;
    default: return 1 / x;
  }
}

function deriv(op: i32, x: f64): f64 {
  switch (op) {
    case 0: return -1;
    case 1: return Math.exp(x);
    case 2: return 1 / x;
    case 3: return 0.5 / Math.sqrt(x);
    case 4: return -0.5 / (x * Math.sqrt(x));
    case 5: { const t = Math.tanh(x); return 1 - t * t; }
    case 6: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 7: return x > 0 ? 1 : 0;
    case 8: { const s = sigmoid(x); return s * (1 - s); }
    case 9: return 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case 10: {
      const u = SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_COEF_A * x * x);
    }
    case 11: { const s = sigmoid(1.702 * x); return s + 1.702 * x * s * (1 - s); }
    case 12: { const s = sigmoid(x); return s * (1 + x * (1 - s)); }
    case 13: return 2 * x;
    default: return -1 / (x * x);
  }
}

/**
 * e^x for two f64 lanes (Cody–Waite reduction by ln 2, Taylor series to r¹³ on |r| ≤ ln2/2: < 1 ulp
 * from the exact value, as close as Math.exp; rounded to f32 afterwards the two agree)
 */
@inline function expd(x: v128): v128 {
  const big = f64x2.gt(x, f64x2.splat(709.782712893384));
  const small = f64x2.lt(x, f64x2.splat(-745.1332191019412));
  const xc = f64x2.max(f64x2.min(x, f64x2.splat(709.79)), f64x2.splat(-745.2));
  const n = f64x2.nearest(f64x2.mul(xc, f64x2.splat(1.4426950408889634)));
  let r = f64x2.sub(xc, f64x2.mul(n, f64x2.splat(6.93147180369123816490e-01)));
  r = f64x2.sub(r, f64x2.mul(n, f64x2.splat(1.90821492927058770002e-10)));
  let p = f64x2.splat(1.0 / 6227020800.0);
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 479001600.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 39916800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 3628800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 362880.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 40320.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 5040.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 720.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 120.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 24.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 6.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(0.5));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  // 2^n in two factors so that results down to the subnormals round once
  const ni = i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(n));
  const n1 = i64x2.shr_s(ni, 1);
  const n2 = i64x2.sub(ni, n1);
  const s1 = i64x2.shl(i64x2.add(n1, i64x2.splat(1023)), 52);
  const s2 = i64x2.shl(i64x2.add(n2, i64x2.splat(1023)), 52);
  let y = f64x2.mul(f64x2.mul(p, s1), s2);
  y = v128.bitselect(f64x2.splat(Infinity), y, big);
  return v128.andnot(y, small);
}

@inline function sigmoidd(x: v128): v128 {
  const one = f64x2.splat(1);
  return f64x2.div(one, f64x2.add(one, expd(f64x2.neg(x))));
}

/** `fwd` for two lanes, for the ops built on exp (1 exp, 8 sigmoid, 9 gelu_erf, 10 gelu_tanh, 11 quick_gelu, 12 silu) */
@inline function fwdd(op: i32, x: v128): v128 {
  if (op == 1) return expd(x);
  if (op == 10) {
    // the reference's 0.5·x·(1 + tanh(u)), tanh(u) = 1 − 2/(e^{2u} + 1): the same cancellation for x ≪ 0
    // (exactly 0 where tanh(u) rounds to −1), and within an f64 ulp or two of Math.tanh elsewhere
    const one = f64x2.splat(1);
    const u = f64x2.mul(f64x2.mul(f64x2.splat(SQRT_2_OVER_PI), x), f64x2.add(one, f64x2.mul(f64x2.splat(GELU_COEF_A), f64x2.mul(x, x))));
    const t = f64x2.sub(one, f64x2.div(f64x2.splat(2), f64x2.add(expd(f64x2.add(u, u)), one)));
    return f64x2.mul(f64x2.mul(f64x2.splat(0.5), x), f64x2.add(one, t));
  }
  if (op == 8) return sigmoidd(x);
  if (op == 12) return f64x2.mul(x, sigmoidd(x));
  if (op == 11) return f64x2.mul(x, sigmoidd(f64x2.mul(f64x2.splat(1.702), x)));
  // 9: 0.5·x·(1 + erf(x/√2)), erf as `erf` above
  const xs = f64x2.div(x, f64x2.splat(Math.SQRT2));
  const z = f64x2.abs(xs);
  const t = f64x2.div(f64x2.splat(1), f64x2.add(f64x2.splat(1), f64x2.mul(f64x2.splat(0.5), z)));
  let q = f64x2.add(f64x2.splat(-0.82215223), f64x2.mul(t, f64x2.splat(0.17087277)));
  q = f64x2.add(f64x2.splat(1.48851587), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(-1.13520398), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(0.27886807), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(-0.18628806), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(0.09678418), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(0.37409196), f64x2.mul(t, q));
  q = f64x2.add(f64x2.splat(1.00002368), f64x2.mul(t, q));
  const arg = f64x2.add(f64x2.sub(f64x2.neg(f64x2.mul(z, z)), f64x2.splat(1.26551223)), f64x2.mul(t, q));
  const r = f64x2.mul(t, expd(arg));
  const one = f64x2.splat(1);
  const e = v128.bitselect(f64x2.sub(one, r), f64x2.sub(r, one), f64x2.ge(xs, f64x2.splat(0)));
  return f64x2.mul(f64x2.mul(f64x2.splat(0.5), x), f64x2.add(one, e));
}

/** out[i] = op(x[i]) */
export function unary_f64(op: i32, n: i32, x: usize, out: usize, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 16);
  const i1 = part(n, ith + 1, nth, 16);
  let i = i0;
  if (op == 1 || (op >= 8 && op <= 12)) {
    for (; i + 2 <= i1; i += 2) {
      const o = <usize>i << 2;
      const y = fwdd(op, f64x2.promote_low_f32x4(v128.load64_zero(x + o)));
      v128.store64_lane(out + o, f32x4.demote_f64x2_zero(y), 0);
    }
    for (; i < i1; i++) {
      const o = <usize>i << 2;
      store<f32>(out + o, f32x4.extract_lane(f32x4.demote_f64x2_zero(fwdd(op, f64x2.splat(<f64>load<f32>(x + o)))), 0));
    }
    return;
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, <f32>fwd(op, <f64>load<f32>(x + o)));
  }
}

/** dx[i] = dy[i]·op'(x[i]) */
export function unary_bwd_f64(op: i32, n: i32, x: usize, dy: usize, dx: usize, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 16);
  const i1 = part(n, ith + 1, nth, 16);
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, <f32>(<f64>load<f32>(dy + o) * deriv(op, <f64>load<f32>(x + o))));
  }
}

// ---- f32x4 derivatives for training (the backward pass never feeds quantized inference) ----

/** erf lane-wise, the same Numerical Recipes erfc formula as `erf` above, in f32 */
@inline function erfv(x: v128): v128 {
  const z = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.splat(0.5), z)));
  let p = f32x4.splat(0.17087277);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.82215223));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.48851587));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.13520398));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.27886807));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.18628806));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.09678418));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.37409196));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.00002368));
  const e = f32x4.add(f32x4.sub(f32x4.mul(p, t), f32x4.mul(z, z)), f32x4.splat(-1.26551223));
  const r = f32x4.mul(t, expv(e));
  // x ≥ 0: 1 − r; else r − 1 (sign of x copied onto 1 − r)
  const y = f32x4.sub(f32x4.splat(1), r);
  return v128.or(y, v128.and(x, f32x4.splat(-0.0)));
}

@inline function sigmoidv(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
}

/** op'(x) lane-wise for ops 8 sigmoid, 9 gelu_erf, 10 gelu_tanh, 11 quick_gelu, 12 silu (see `deriv`) */
@inline function derivv(op: i32, x: v128): v128 {
  const one = f32x4.splat(1);
  if (op == 10) {
    // with s = sigmoid(2u) = (1 + tanh u)/2: s + 2·x·s·(1 − s)·√(2/π)·(1 + 3a·x²)
    const x2 = f32x4.mul(x, x);
    const u = f32x4.mul(f32x4.mul(f32x4.splat(<f32>SQRT_2_OVER_PI), x), f32x4.add(one, f32x4.mul(f32x4.splat(<f32>GELU_COEF_A), x2)));
    // one e = e^{−2u}: s = 1/(1 + e) and 1 − s = 1/(1 + 1/e), not 1 − s in f32, which cancels where s is near 1
    // (e = +inf gives s = 0 and 1 − s = 1; e = 0 gives s = 1 and 1 − s = 0)
    const e = expv(f32x4.neg(f32x4.add(u, u)));
    const s = f32x4.div(one, f32x4.add(one, e));
    const r = f32x4.div(one, f32x4.add(one, f32x4.div(one, e)));
    const du = f32x4.mul(f32x4.splat(<f32>SQRT_2_OVER_PI), f32x4.add(one, f32x4.mul(f32x4.splat(<f32>(3 * GELU_COEF_A)), x2)));
    return f32x4.add(s, f32x4.mul(f32x4.mul(f32x4.add(x, x), f32x4.mul(s, r)), du));
  }
  if (op == 9) {
    const cdf = f32x4.mul(f32x4.splat(0.5), f32x4.add(one, erfv(f32x4.mul(x, f32x4.splat(0.7071067811865476)))));
    const pdf = f32x4.mul(expv(f32x4.mul(f32x4.mul(x, x), f32x4.splat(-0.5))), f32x4.splat(0.3989422804014327));
    return f32x4.add(cdf, f32x4.mul(x, pdf));
  }
  if (op == 8) {
    const s = sigmoidv(x);
    return f32x4.mul(s, f32x4.sub(one, s));
  }
  if (op == 11) {
    const u = f32x4.mul(x, f32x4.splat(1.702));
    const s = sigmoidv(u);
    return f32x4.add(s, f32x4.mul(f32x4.mul(u, s), f32x4.sub(one, s)));
  }
  const s = sigmoidv(x); // 12 silu
  return f32x4.mul(s, f32x4.add(one, f32x4.mul(x, f32x4.sub(one, s))));
}

/** dx[i] = dy[i]·op'(x[i]) in f32x4 for ops 8–12 (others: unary_bwd_f64) */
export function unary_bwd_f32(op: i32, n: i32, x: usize, dy: usize, dx: usize, ith: i32, nth: i32): void {
  const i0 = part(n, ith, nth, 4);
  const i1 = part(n, ith + 1, nth, 4);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), derivv(op, v128.load(x + o))));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(dy + o) * f32x4.extract_lane(derivv(op, f32x4.splat(load<f32>(x + o))), 0));
  }
}
