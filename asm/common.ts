// Shared helpers: fused multiply-add (relaxed build) or mul+add, half-float conversions, thread splits.

/** a*b + c: one rounding with relaxed SIMD (the build with --enable relaxed-simd), two without */
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  else return f32x4.add(f32x4.mul(a, b), c);
}

@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/** [Σs0, Σs1, Σs2, Σs3] of four i32x4 */
@inline export function hadd4i(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const t0 = i32x4.add(v128.shuffle<i32>(s0, s1, 0, 4, 1, 5), v128.shuffle<i32>(s0, s1, 2, 6, 3, 7));
  const t1 = i32x4.add(v128.shuffle<i32>(s2, s3, 0, 4, 1, 5), v128.shuffle<i32>(s2, s3, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), v128.shuffle<i32>(t0, t1, 2, 3, 6, 7));
}

/** [Σs0, Σs1, Σs2, Σs3] of four f32x4 */
@inline export function hadd4f(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const t0 = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7));
  const t1 = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

/** IEEE half bits → f32, exact incl. subnormals, inf and NaN (F. Giesen's half_to_float_fast3) */
@inline export function f16tof32(h: u32): f32 {
  const f = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000); // × 2^112
  let o = reinterpret<u32>(f);
  if (f >= 65536.0) o |= 0x7f800000;
  return reinterpret<f32>(o | ((h & 0x8000) << 16));
}

/** f16 → f32 lookup table (256 KiB) at a fixed address below the arena, filled by f16_table_init */
export const F16_TABLE: usize = 65536;

export function f16_table_init(): void {
  for (let h: u32 = 0; h < 65536; h++) store<f32>(F16_TABLE + (<usize>h << 2), f16tof32(h));
}

/** four halves (u32 lanes) → f32x4 */
@inline export function f16tof32x4(h: v128): v128 {
  let f = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(reinterpret<f32>(0x77800000)));
  f = v128.or(f, v128.and(f32x4.ge(f, f32x4.splat(65536.0)), i32x4.splat(0x7f800000)));
  return v128.or(f, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** f32 → IEEE half bits, round to nearest even (as ggml / F16C) */
export function f32tof16(v: f32): u32 {
  const x = reinterpret<u32>(v);
  const sign = (x >> 16) & 0x8000;
  const exp = <i32>((x >> 23) & 0xff);
  let mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = <u32>(14 - e);
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = <u32>1 << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (<u32>e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** f32 → bf16 bits, round to nearest even, NaN kept quiet (ggml's GGML_FP32_TO_BF16) */
@inline export function f32tobf16(v: f32): u32 {
  const x = reinterpret<u32>(v);
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >> 16) | 64) & 0xffff;
  return ((x + (0x7fff + ((x >> 16) & 1))) >> 16) & 0xffff;
}

/** start of part `ith` of `n` items split in `nth` parts, in units of `unit` (clamped to n) */
@inline export function part(n: i32, ith: i32, nth: i32, unit: i32): i32 {
  const units = (n + unit - 1) / unit;
  const u = <i32>((<i64>units * ith) / nth);
  return min(n, u * unit);
}

/** zero n bytes at p (memory.fill: a native memset; TypedArray.fill on shared memory is slow) */
export function zero_bytes(p: usize, n: usize): void {
  memory.fill(p, 0, n);
}

/**
 * Shared job counter (an i32 in reserved low memory, zeroed by the JS side before each dispatch of a
 * kernel that uses it): threads take fixed-size jobs until none are left, so a thread the OS does not
 * schedule (a busy shared machine) delays nobody. Job boundaries never depend on which thread takes a
 * job, so results are identical for any thread count.
 */
export const JOBS: usize = 256;

@inline export function nextJob(): i32 {
  return atomic.add<i32>(JOBS, 1);
}

/** end of the static data the compiler placed from --memoryBase (must stay below F16_TABLE) */
export function data_end(): usize {
  return __data_end;
}
