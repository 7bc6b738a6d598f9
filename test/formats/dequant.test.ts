// Dequantization of every GGUF type vista reads: hand-built blocks with expected values computed here,
// element by element, from the spec's formulas (gguf-multimodal.md §1.6), and random blocks dequantized by an
// independent float32 NumPy port (test/fixtures/formats/make_quant_fixture.py → quant.gguf).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ModelFormatError } from '../../src/errors.ts';
import { DEQUANT_TYPES, dequantizeGGML, ggufTensorToTensor } from '../../src/formats/dequant.ts';
import { GGMLType, GGML_TYPES, findTensor, readGGUF, tensorData, writeGGUF } from '../../src/formats/gguf.ts';

const FIX = new URL('../fixtures/formats/', import.meta.url);

/** f16 bit patterns of exactly representable scales */
const H = { one: 0x3c00, half: 0x3800, quarter: 0x3400, eighth: 0x3000, two: 0x4000, minusOne: 0xbc00, minusHalf: 0xb800 };
const le16 = (v: number): number[] => [v & 0xff, v >> 8];
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));
const int8 = (b: number): number => (b << 24) >> 24;

function decode(type: GGMLType, bytes: number[]): number[] {
  const n = (bytes.length / GGML_TYPES[type].blockBytes) * GGML_TYPES[type].blockElems;
  const out = new Float32Array(n);
  dequantizeGGML(type, Uint8Array.from(bytes), 0, n, out, 0);
  return Array.from(out);
}

/** 6-bit (scale, min) of sub-block k from the 12 packed bytes (spec: get_scale_min_k4). */
function scaleMinK4(s: number[], k: number): [number, number] {
  return k < 4
    ? [s[k]! & 63, s[k + 4]! & 63]
    : [(s[k + 4]! & 15) | ((s[k - 4]! >> 6) << 4), (s[k + 4]! >> 4) | ((s[k]! >> 6) << 4)];
}

describe('dequantize hand-built blocks', () => {
  it('F32, F16 (incl. subnormal, inf, -0) and BF16 pass through', () => {
    const f32 = new Uint8Array(new Float32Array([1.5, -2.25]).buffer);
    assert.deepEqual(decode(GGMLType.F32, [...f32]), [1.5, -2.25]);
    const f16 = decode(GGMLType.F16, [...le16(H.one), ...le16(0x0001), ...le16(0x7c00), ...le16(0x8000), ...le16(0xc100)]);
    assert.deepEqual(f16, [1, 2 ** -24, Infinity, -0, -2.5]);
    assert.deepEqual(decode(GGMLType.BF16, [...le16(0x3f80), ...le16(0xc040), ...le16(0x0001)]), [1, -3, Math.fround(2 ** -133)]);
  });

  it('Q8_0: q * d', () => {
    const qs = range(32, (j) => (j * 9 - 140) & 0xff);
    const y = decode(GGMLType.Q8_0, [...le16(H.quarter), ...qs]);
    assert.deepEqual(y, qs.map((b) => int8(b) * 0.25));
  });

  it('Q4_0: (nibble - 8) * d, low nibbles first', () => {
    const qs = range(16, (j) => j | ((15 - j) << 4));
    const y = decode(GGMLType.Q4_0, [...le16(H.minusHalf), ...qs]);
    assert.deepEqual(y, range(32, (e) => ((e < 16 ? qs[e]! & 15 : qs[e - 16]! >> 4) - 8) * -0.5));
  });

  it('Q4_1: nibble * d + m', () => {
    const qs = range(16, (j) => ((j * 5) & 15) | (((j * 3 + 1) & 15) << 4));
    const y = decode(GGMLType.Q4_1, [...le16(H.half), ...le16(H.minusOne), ...qs]);
    assert.deepEqual(y, range(32, (e) => (e < 16 ? qs[e]! & 15 : qs[e - 16]! >> 4) * 0.5 - 1));
  });

  const qh = [0x0f, 0xf0, 0xa5, 0x5a]; // as a LE u32: 0x5aa5f00f
  const qhBit = (e: number): number => (qh[e >> 3]! >> (e & 7)) & 1;

  it('Q5_0: ((nibble | bit e of qh << 4) - 16) * d', () => {
    const qs = range(16, (j) => (j * 37 + 11) & 0xff);
    const y = decode(GGMLType.Q5_0, [...le16(H.two), ...qh, ...qs]);
    assert.deepEqual(y, range(32, (e) => (((e < 16 ? qs[e]! & 15 : qs[e - 16]! >> 4) | (qhBit(e) << 4)) - 16) * 2));
  });

  it('Q5_1: (nibble | bit e of qh << 4) * d + m', () => {
    const qs = range(16, (j) => (j * 73 + 5) & 0xff);
    const y = decode(GGMLType.Q5_1, [...le16(H.eighth), ...le16(H.half), ...qh, ...qs]);
    assert.deepEqual(y, range(32, (e) => ((e < 16 ? qs[e]! & 15 : qs[e - 16]! >> 4) | (qhBit(e) << 4)) * 0.125 + 0.5));
  });

  // scales with the top bits set so the j >= 4 branch of the 6-bit unpacking matters
  const scales = [0xc1, 0x42, 0x83, 0x04, 0x45, 0x86, 0xc7, 0x08, 0x21, 0x43, 0x65, 0x87];
  const kq = range(128, (i) => (i * 29 + 3) & 0xff);
  /** element e of a Q4_K/Q5_K block: sub-block k = e / 32 uses the low (even k) or high nibbles of qs[32·⌊k/2⌋ ..] */
  const kNibble = (e: number): number => {
    const k = e >> 5;
    const b = kq[32 * (k >> 1) + (e & 31)]!;
    return k & 1 ? b >> 4 : b & 15;
  };

  it('Q4_K: d·sc·q − dmin·m with 6-bit packed scales', () => {
    const y = decode(GGMLType.Q4_K, [...le16(H.half), ...le16(H.quarter), ...scales, ...kq]);
    assert.deepEqual(y, range(256, (e) => {
      const [sc, m] = scaleMinK4(scales, e >> 5);
      return 0.5 * sc * kNibble(e) - 0.25 * m;
    }));
  });

  it('Q5_K: as Q4_K plus 16 · bit k of qh[e mod 32]', () => {
    const qhK = range(32, (l) => (l * 151 + 7) & 0xff);
    const y = decode(GGMLType.Q5_K, [...le16(H.quarter), ...le16(H.eighth), ...scales, ...qhK, ...kq]);
    assert.deepEqual(y, range(256, (e) => {
      const k = e >> 5;
      const [sc, m] = scaleMinK4(scales, k);
      return 0.25 * sc * (kNibble(e) + 16 * ((qhK[e & 31]! >> k) & 1)) - 0.125 * m;
    }));
  });

  it('Q6_K: d · int8 scale · ((4 low bits | 2 high bits << 4) − 32), d last', () => {
    const ql = range(128, (i) => (i * 53 + 17) & 0xff);
    const qh6 = range(64, (i) => (i * 97 + 1) & 0xff);
    const sc = range(16, (i) => (i * 23 - 100) & 0xff);
    const y = decode(GGMLType.Q6_K, [...ql, ...qh6, ...sc, ...le16(H.eighth)]);
    assert.deepEqual(y, range(256, (e) => {
      const h = e >> 7, k = (e & 127) >> 5, l = e & 31;
      const lo = ql[64 * h + l + 32 * (k & 1)]!;
      const q = ((k >= 2 ? lo >> 4 : lo & 15) | (((qh6[32 * h + l]! >> (2 * k)) & 3) << 4)) - 32;
      return 0.125 * int8(sc[8 * h + (l >> 4) + 2 * k]!) * q;
    }));
  });

  it('multiple blocks decode at the right offsets', () => {
    const b1 = [...le16(H.one), ...range(32, (j) => j)];
    const b2 = [...le16(H.two), ...range(32, (j) => 256 - j - 1)];
    const out = new Float32Array(70).fill(9);
    dequantizeGGML(GGMLType.Q8_0, Uint8Array.from([0xee, ...b1, ...b2]), 1, 64, out, 3);
    assert.deepEqual(Array.from(out.subarray(3, 67)), [...range(32, (j) => j), ...range(32, (j) => -(j + 1) * 2)]);
    assert.equal(out[2], 9);
    assert.equal(out[67], 9);
  });

  it('rejects unsupported types, partial blocks and short buffers with ModelFormatError', () => {
    const out = new Float32Array(256);
    assert.throws(() => dequantizeGGML(GGMLType.Q2_K, new Uint8Array(84), 0, 256, out, 0), /cannot dequantize ggml type Q2_K/);
    assert.throws(() => dequantizeGGML(GGMLType.Q4_1, new Uint8Array(40), 0, 48, out, 0), ModelFormatError);
    assert.throws(() => dequantizeGGML(GGMLType.Q6_K, new Uint8Array(209), 0, 256, out, 0), /need 210 bytes/);
    assert.throws(() => dequantizeGGML(GGMLType.Q8_0, new Uint8Array(34), 0, 32, out, 240), ModelFormatError);
  });
});

describe('dequantize vs independent NumPy (quant.gguf)', () => {
  const file = readGGUF(new Uint8Array(readFileSync(new URL('quant.gguf', FIX))));

  for (const type of DEQUANT_TYPES) {
    const name = GGMLType[type];
    it(`${name} matches the float32 NumPy dequantization bit for bit`, () => {
      const info = findTensor(file, name)!;
      assert.equal(info.type, type);
      assert.deepEqual(info.shape, [2, 512]);
      const got = ggufTensorToTensor(file, info, { keep: 'f32' });
      assert.equal(got.dtype, 'f32');
      assert.deepEqual(got.shape, [2, 512]);
      const want = new Float32Array(tensorData(file, findTensor(file, `${name}.expected`)!).slice().buffer);
      const g = got.toArray();
      let mismatches = 0;
      for (let i = 0; i < want.length; i++) if (!Object.is(g[i], want[i])) mismatches++;
      assert.equal(mismatches, 0, `${mismatches} of ${want.length} values differ`);
    });
  }
});

describe('ggufTensorToTensor', () => {
  const file = readGGUF(new Uint8Array(readFileSync(new URL('quant.gguf', FIX))));

  it('keeps native dtypes (f32, f16, bf16, q8_0, q4_0) with the raw bytes and PyTorch shape', () => {
    for (const [name, dtype] of [['F32', 'f32'], ['F16', 'f16'], ['BF16', 'bf16'], ['Q8_0', 'q8_0'], ['Q4_0', 'q4_0']] as const) {
      const info = findTensor(file, name)!;
      const t = ggufTensorToTensor(file, info);
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [2, 512]);
      assert.equal(t.name, name);
      assert.deepEqual(dtype === 'f32' ? new Uint8Array(t.toArray().buffer) : t.bytes, tensorData(file, info));
    }
  });

  it('dequantizes the other types to f32', () => {
    for (const name of ['Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']) {
      const t = ggufTensorToTensor(file, findTensor(file, name)!);
      assert.equal(t.dtype, 'f32', name);
      assert.deepEqual(t.shape, [2, 512]);
    }
  });

  it('maps a 4-D tensor to the reversed ne (row-major values unchanged)', () => {
    const t = ggufTensorToTensor(file, findTensor(file, 'f32.4d')!);
    assert.deepEqual(t.shape, [2, 3, 4, 8]);
    assert.deepEqual(Array.from(t.toArray()), range(192, (i) => i));
  });

  it('rejects types vista cannot decode', () => {
    const g = readGGUF(writeGGUF({ metadata: {}, tensors: [{ name: 'w', shape: [256], type: GGMLType.Q3_K, data: new Uint8Array(110) }] }));
    assert.throws(() => ggufTensorToTensor(g, g.tensors[0]!), /cannot dequantize ggml type Q3_K/);
  });
});
