// Layout and reduction kernels, plus RoPE and cross-entropy, computed as the reference does (f64
// accumulation in the same order, f64 transcendental functions), so results match it bit for bit
// but for rare last-ulp differences of the f64 math library — except cross-entropy's exponentials
// (f32x4: a training-only kernel, a few ulp from the reference).
import { part } from './common';
import { expf1, expv } from './mathv';

/**
 * out (contiguous, at out + outOff) = strided view of x. dims (≤ 8) and element strides are i32 pairs
 * at `desc`: shape[0..nd), strides[0..nd). Split over threads by rows of the last dimension.
 */
export function copy_strided(nd: i32, desc: usize, x: usize, out: usize, ith: i32, nth: i32): void {
  const inner = nd ? load<i32>(desc + (<usize>(nd - 1) << 2)) : 1;
  const s = nd ? load<i32>(desc + (<usize>(2 * nd - 1) << 2)) : 0;
  let rows = 1;
  for (let d = 0; d < nd - 1; d++) rows *= load<i32>(desc + (<usize>d << 2));
  const r0 = part(rows, ith, nth, 1);
  const r1 = part(rows, ith + 1, nth, 1);
  for (let r = r0; r < r1; r++) {
    // element offset of row r in x
    let rem = r;
    let xo: isize = 0;
    for (let d = nd - 2; d >= 0; d--) {
      const n = load<i32>(desc + (<usize>d << 2));
      xo += <isize>(rem % n) * <isize>load<i32>(desc + (<usize>(nd + d) << 2));
      rem /= n;
    }
    const src = x + (<usize>xo << 2);
    const dst = out + ((<usize>r * <usize>inner) << 2);
    if (s == 1) memory.copy(dst, src, <usize>inner << 2);
    else for (let i = 0; i < inner; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + ((<usize>(<isize>i * s)) << 2)));
  }
}

/** x (outer, dim, inner) → out (outer, inner): op 0 = sum (f64, in order of dim), 1 = max */
export function reduce_dim(op: i32, outer: i32, dim: i32, inner: i32, x: usize, out: usize, ith: i32, nth: i32): void {
  const total = outer * inner;
  const j0 = part(total, ith, nth, 4);
  const j1 = part(total, ith + 1, nth, 4);
  for (let j = j0; j < j1; j++) {
    const o = j / inner;
    const i = j % inner;
    let p = x + ((<usize>o * <usize>dim * <usize>inner + <usize>i) << 2);
    const step = <usize>inner << 2;
    if (op == 0) {
      let acc: f64 = 0;
      for (let d = 0; d < dim; d++) {
        acc += <f64>load<f32>(p);
        p += step;
      }
      store<f32>(out + (<usize>j << 2), <f32>acc);
    } else {
      let acc: f32 = -Infinity;
      for (let d = 0; d < dim; d++) {
        const v = load<f32>(p);
        acc = v > acc ? v : acc;
        p += step;
      }
      store<f32>(out + (<usize>j << 2), acc);
    }
  }
}


/**
 * RoPE on x (B, T, H, D) → out, position pos[b·T + t] (pos = 0: pos0 + t); mode 0 = norm (adjacent
 * pairs), 1 = neox (halves); inverse rotates by −θ. Split over (b, t); without explicit positions over
 * t, each angle's cos/sin then serving the B rows at that position.
 */
export function rope_f32(B: i32, T: i32, H: i32, D: i32, nRot: i32, x: usize, out: usize, pos: usize, pos0: i32, base: f64,
  mode: i32, inverse: i32, ith: i32, nth: i32): void {
  const half = nRot >> 1;
  const sign: f64 = inverse ? -1 : 1;
  const rowBytes = (<usize>H * D) << 2;
  const n = pos ? B * T : T;
  const r0 = part(n, ith, nth, 1);
  const r1 = part(n, ith + 1, nth, 1);
  for (let r = r0; r < r1; r++) {
    const p = pos ? load<i32>(pos + (<usize>r << 2)) : pos0 + r;
    const nb = pos ? 1 : B;
    // byte offset of the first row this angle applies to, and the step to the next (same t, next b)
    const first = <usize>r * rowBytes;
    const step = <usize>T * rowBytes;
    if (out != x) for (let b = 0; b < nb; b++) memory.copy(out + first + <usize>b * step, x + first + <usize>b * step, rowBytes);
    for (let i = 0; i < half; i++) {
      const theta = <f64>p * Math.pow(base, (-2 * <f64>i) / <f64>nRot);
      const c = Math.cos(theta);
      const s = sign * Math.sin(theta);
      const i0 = mode == 0 ? 2 * i : i;
      const i1 = mode == 0 ? 2 * i + 1 : i + half;
      for (let b = 0; b < nb; b++) {
        for (let h = 0; h < H; h++) {
          const o = first + <usize>b * step + ((<usize>h * D) << 2);
          const x0 = <f64>load<f32>(x + o + (<usize>i0 << 2));
          const x1 = <f64>load<f32>(x + o + (<usize>i1 << 2));
          store<f32>(out + o + (<usize>i0 << 2), <f32>(x0 * c - x1 * s));
          store<f32>(out + o + (<usize>i1 << 2), <f32>(x0 * s + x1 * c));
        }
      }
    }
  }
}

/**
 * cross-entropy per row with integer targets; dlogits = 0: not written. Max and log-sum-exp as the
 * reference (the sum of exponentials accumulated in f64), the exponentials themselves in f32x4.
 */
export function cross_entropy(rows: i32, cols: i32, x: usize, targets: usize, ignore: i32, loss: usize, dlogits: usize,
  ith: i32, nth: i32): void {
  const r0 = part(rows, ith, nth, 1);
  const r1 = part(rows, ith + 1, nth, 1);
  const c4 = cols & ~3;
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * cols) << 2);
    const dr = dlogits + ((<usize>r * cols) << 2);
    const t = load<i32>(targets + (<usize>r << 2));
    if (t == ignore) {
      store<f32>(loss + (<usize>r << 2), 0);
      if (dlogits) memory.fill(dr, 0, <usize>cols << 2);
      continue;
    }
    let mv = f32x4.splat(-Infinity);
    for (let c = 0; c < c4; c += 4) mv = f32x4.max(mv, v128.load(xr + (<usize>c << 2)));
    let mf = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (let c = c4; c < cols; c++) mf = max(mf, load<f32>(xr + (<usize>c << 2)));
    const m = <f64>mf;
    const mm = f32x4.splat(mf);
    let sum: f64 = 0;
    for (let c = 0; c < c4; c += 4) {
      const e = expv(f32x4.sub(v128.load(xr + (<usize>c << 2)), mm));
      sum += <f64>(f32x4.extract_lane(e, 0) + f32x4.extract_lane(e, 1)) + <f64>(f32x4.extract_lane(e, 2) + f32x4.extract_lane(e, 3));
    }
    for (let c = c4; c < cols; c++) sum += <f64>expf1(load<f32>(xr + (<usize>c << 2)) - mf);
    const lse = m + Math.log(sum);
    store<f32>(loss + (<usize>r << 2), <f32>(lse - <f64>load<f32>(xr + (<usize>t << 2))));
    if (dlogits) {
      // exp(x − lse) = exp(x − m) / sum: one f32 subtraction keeps the argument exact near the maximum
      const inv = f32x4.splat(<f32>(1 / sum));
      for (let c = 0; c < c4; c += 4) {
        const o = <usize>c << 2;
        v128.store(dr + o, f32x4.mul(expv(f32x4.sub(v128.load(xr + o), mm)), inv));
      }
      for (let c = c4; c < cols; c++) store<f32>(dr + (<usize>c << 2), expf1(load<f32>(xr + (<usize>c << 2)) - mf) * f32x4.extract_lane(inv, 0));
      store<f32>(dr + (<usize>t << 2), load<f32>(dr + (<usize>t << 2)) - 1);
    }
  }
}
