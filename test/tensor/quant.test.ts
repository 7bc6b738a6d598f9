// Weight storage types: bit-exact f16/bf16 conversions and derived quantize→dequantize error bounds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Tensor, f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, quantize, dequantize } from '../../src/tensor/index.ts';

const bits = new DataView(new ArrayBuffer(4));
const fromBits = (u: number): number => (bits.setUint32(0, u >>> 0), bits.getFloat32(0));
const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

describe('f16 conversion is bit-exact', () => {
  const cases: [string, number, number][] = [
    ['1', 1, 0x3c00], ['-2', -2, 0xc000], ['0.1', 0.1, 0x2e66], ['1/3', 1 / 3, 0x3555],
    ['+0', 0, 0x0000], ['-0', -0, 0x8000], ['max', 65504, 0x7bff],
    ['65520 ties to even → inf', 65520, 0x7c00], ['+inf', Infinity, 0x7c00], ['-inf', -Infinity, 0xfc00],
    ['NaN stays a quiet NaN', NaN, 0x7e00],
    ['min normal 2^-14', 2 ** -14, 0x0400], ['min subnormal 2^-24', 2 ** -24, 0x0001],
    ['2^-25 ties to even → 0', 2 ** -25, 0x0000], ['0.75·2^-24 → 2^-24', 0.75 * 2 ** -24, 0x0001],
    ['1.5·2^-24 ties to even → 2·2^-24', 1.5 * 2 ** -24, 0x0002], ['2.5·2^-24 ties to even → 2', 2.5 * 2 ** -24, 0x0002],
    ['1023.5·2^-24 rounds up into the normals', 1023.5 * 2 ** -24, 0x0400],
    ['1 + 2^-11 ties to even → 1', 1 + 2 ** -11, 0x3c00], ['1 + 3·2^-11 ties to even → up', 1 + 3 * 2 ** -11, 0x3c02],
    ['2049 → 2048', 2049, 0x6800], ['2051 → 2052', 2051, 0x6802], ['just above a tie rounds up', fromBits(0x3f801001), 0x3c01],
  ];
  for (const [what, v, h] of cases)
    test(what, () => assert.equal(hex(f32ToF16(v)), hex(h)));
  test('f16 → f32 decodes subnormals, infinities and NaN; every non-NaN half round-trips', () => {
    assert.equal(f16ToF32(0x0001), 2 ** -24);
    assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16ToF32(0xfc00), -Infinity);
    assert.ok(Number.isNaN(f16ToF32(0x7c01)));
    assert.ok(Object.is(f16ToF32(0x8000), -0));
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff)) continue;
      if (f32ToF16(f16ToF32(h)) !== h) assert.fail(`${hex(h)} does not round-trip`);
    }
  });
});

describe('bf16 conversion is bit-exact', () => {
  const cases: [string, number, number][] = [
    ['1', 1, 0x3f80], ['-2', -2, 0xc000], ['tie 1 + 2^-8 → even (down)', fromBits(0x3f808000), 0x3f80],
    ['tie 0x3f818000 → even (up)', fromBits(0x3f818000), 0x3f82], ['above tie rounds up', fromBits(0x3f808001), 0x3f81],
    ['+inf', Infinity, 0x7f80], ['-inf', -Infinity, 0xff80], ['quiet NaN', NaN, 0x7fc0],
    ['signalling NaN is quieted, not rounded to inf', fromBits(0x7f800001), 0x7fc0],
    ['f32 max rounds to inf', fromBits(0x7f7fffff), 0x7f80],
    ['subnormal tie → even (0)', fromBits(0x00008000), 0x0000], ['subnormal tie → even (2)', fromBits(0x00018000), 0x0002],
    ['-0', -0, 0x8000],
  ];
  for (const [what, v, h] of cases)
    test(what, () => assert.equal(hex(f32ToBf16(v)), hex(h)));
  test('every non-NaN bf16 round-trips through f32', () => {
    for (let b = 0; b < 65536; b++) {
      if ((b & 0x7f80) === 0x7f80 && (b & 0x7f)) continue;
      if (f32ToBf16(bf16ToF32(b)) !== b) assert.fail(`${hex(b)} does not round-trip`);
    }
  });
});

/** n values whose magnitudes span 2^lo .. 2^hi, both signs. */
function spread(n: number, seed: number, lo: number, hi: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1) * (1 + rng.uniform()) * 2 ** Math.floor(lo + (hi - lo) * rng.uniform()));
}

const roundTrip = (x: Float32Array, dtype: 'f16' | 'bf16' | 'q8_0' | 'q4_0'): Float32Array =>
  dequantize(quantize(Tensor.from(x, [x.length / 32, 32]), dtype)).toArray();

describe('quantize → dequantize error bounds', () => {
  test('f16: relative error ≤ 2^-11 (unit roundoff of an 11-bit significand) over the normal range', () => {
    const x = spread(4096, 1, -14, 15);
    const y = roundTrip(x, 'f16');
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i]! - x[i]!) / Math.abs(x[i]!));
    assert.ok(worst <= 2 ** -11, `worst ${worst}`);
    assert.ok(worst > 0.9 * 2 ** -11, `bound is tight (worst ${worst})`);
    // subnormal halves: absolute error ≤ half the spacing 2^-24
    const s = spread(512, 2, -30, -15);
    const ys = roundTrip(s, 'f16');
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(ys[i]! - s[i]!) <= 2 ** -25);
  });
  test('bf16: relative error ≤ 2^-8 (8-bit significand)', () => {
    const x = spread(4096, 3, -100, 100);
    const y = roundTrip(x, 'bf16');
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(y[i]! - x[i]!) / Math.abs(x[i]!));
    assert.ok(worst <= 2 ** -8 && worst > 0.9 * 2 ** -8, `worst ${worst}`);
  });

  /** Blocks of 32 with a per-block scale spread over 2^-4 .. 2^6 (f16 scales stay normal). */
  function blocks(seed: number, nBlocks: number): Float32Array {
    const rng = new Rng(seed);
    const x = new Float32Array(nBlocks * 32);
    for (let b = 0; b < nBlocks; b++) {
      const sc = 2 ** (-4 + 10 * rng.uniform());
      for (let j = 0; j < 32; j++) x[b * 32 + j] = sc * rng.normal();
    }
    return x;
  }
  const amaxOf = (x: Float32Array, b: number): number => {
    let a = 0;
    for (let j = 0; j < 32; j++) a = Math.max(a, Math.abs(x[b * 32 + j]!));
    return a;
  };

  test('q8_0: |err| ≤ d·(1/2 + 2^-16) + 127·2^-11·d + 2^-23·amax, d = amax/127', () => {
    // q = round(x·(1/d)) in f32: |q − x/d| ≤ 1/2 + (two f32 roundings on |x/d| ≤ 127 ≈ 2^-16);
    // the scale is stored as f16: |d − f16(d)| ≤ 2^-11·d, times |q| ≤ 127; the final q·d' is one more
    // f32 rounding (≤ 2^-24 of ≈ amax, doubled for margin).
    const x = blocks(4, 256);
    const y = roundTrip(x, 'q8_0');
    let worstRatio = 0;
    for (let b = 0; b < 256; b++) {
      const amax = amaxOf(x, b);
      const d = amax / 127;
      const bound = d * (0.5 + 2 ** -16 + 127 * 2 ** -11) + 2 ** -23 * amax;
      for (let j = 0; j < 32; j++) {
        const err = Math.abs(y[b * 32 + j]! - x[b * 32 + j]!);
        assert.ok(err <= bound, `block ${b} elem ${j}: err ${err} > bound ${bound}`);
        worstRatio = Math.max(worstRatio, err / (d / 2));
      }
    }
    assert.ok(worstRatio > 0.9, `rounding error reaches ~d/2 (worst ${worstRatio} · d/2)`);
  });
  test('q4_0: |err| ≤ |d|·(max(1/2, x/d − 7) + 2^-19 + 8·2^-11) + 2^-23·amax, d = max/−8', () => {
    // ggml's q4_0 maps the signed extreme `max` to q = 0 (value −8·d = max) and codes q ∈ [0, 15], so
    // x/d ∈ [−8, 7.5) rounds to nearest (|err| ≤ |d|/2) while x/d ∈ [7.5, 8] — values of the opposite
    // sign within 1/16 of amax — clamp to 7, an error of up to |d| = amax/8. The rest: f32 roundings of
    // x·(1/d) + 8.5 (< 2^-19 in units of d), the f16 scale (|q − 8| ≤ 8 times 2^-11·|d|), the final product.
    const x = blocks(5, 256);
    // force the clamp in block 0: put the negated signed extreme next to it
    let k = 0;
    for (let j = 1; j < 32; j++) if (Math.abs(x[j]!) > Math.abs(x[k]!)) k = j;
    const clampAt = k === 7 ? 8 : 7;
    x[clampAt] = -x[k]!;
    const y = roundTrip(x, 'q4_0');
    for (let b = 0; b < 256; b++) {
      let max = 0;
      for (let j = 0; j < 32; j++) if (Math.abs(x[b * 32 + j]!) > Math.abs(max)) max = x[b * 32 + j]!;
      const d = max / -8;
      const amax = Math.abs(max);
      for (let j = 0; j < 32; j++) {
        const xi = x[b * 32 + j]!;
        const bound = Math.abs(d) * (Math.max(0.5, xi / d - 7) + 2 ** -19 + 8 * 2 ** -11) + 2 ** -23 * amax;
        const err = Math.abs(y[b * 32 + j]! - xi);
        assert.ok(err <= bound, `block ${b} elem ${j}: x ${xi}, err ${err} > bound ${bound}`);
      }
    }
    // the opposite-sign extreme of block 0 lands a whole step away: −amax is decoded as 7·d
    const a0 = amaxOf(x, 0);
    // (ggml keeps the first of two equal magnitudes as `max`, so the later one of the pair is clamped)
    const e0 = Math.abs(y[Math.max(k, clampAt)]! - x[Math.max(k, clampAt)]!);
    assert.ok(Math.abs(e0 - a0 / 8) <= 8 * 2 ** -11 * a0, `clamp error ${e0} vs amax/8 ${a0 / 8}`);
  });
});
