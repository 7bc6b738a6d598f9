// GGUF reader/writer: the shared llama-tiny fixtures against a snapshot from the independent Python reader
// (test/fixtures/formats/make_tiny_snapshot.py), a Python-written file with every value type
// (make_quant_fixture.py), writer → reader round trips, our files read by make_gguf.py, and malformed input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ModelFormatError } from '../../src/errors.ts';
import { ggufTensorToTensor } from '../../src/formats/dequant.ts';
import {
  GGMLType, GGML_TYPES, type GGUFScalar, type GGUFValue, GGUFValueType, type GGUFTypeInfo, findTensor, getArray, getBool,
  getInt, getNumber, getNumberArray, getString, getStringArray, getU32, readGGUF, tensorData, writeGGUF,
} from '../../src/formats/gguf.ts';

const FIX = new URL('../fixtures/formats/', import.meta.url);
const SHARED = '/work/shared/fixtures';
const TINY = path.join(SHARED, 'llama-tiny');
const haveTiny = existsSync(path.join(TINY, 'tiny-q8_0.gguf'));
const havePython = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0 && existsSync(path.join(SHARED, 'make_gguf.py'));

const load = (p: string): Uint8Array => new Uint8Array(readFileSync(p));
const plain = <T extends object>(o: T): T => ({ ...o });

/** mulberry32: small seeded PRNG for reproducible fuzzing */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randomBytes = (n: number, r: () => number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));

describe('GGUF: shared llama-tiny fixtures', { skip: !haveTiny && 'fixtures missing' }, () => {
  for (const name of ['tiny-f32', 'tiny-q8_0']) {
    it(`${name}: metadata, tensor table and values match the independent Python reader`, () => {
      const snap = JSON.parse(readFileSync(new URL(`${name}.snapshot.json`, FIX), 'utf8'));
      const f = readGGUF(load(path.join(TINY, `${name}.gguf`)));
      assert.equal(f.version, snap.version);
      assert.equal(f.dataOffset, snap.data_start);
      assert.equal(f.alignment, 32);
      assert.deepEqual(plain(f.metadata), snap.kv);
      assert.deepEqual(f.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type, offset: t.offset })), snap.tensors);
      for (const t of f.tensors) assert.deepEqual(t.shape, [...t.ne].reverse());
      for (const [tn, values] of Object.entries(snap.samples as Record<string, number[]>)) {
        const got = ggufTensorToTensor(f, findTensor(f, tn)!, { keep: 'f32' }).toArray().subarray(0, values.length);
        assert.deepEqual(Array.from(got), values, tn);
      }
      assert.deepEqual(f.metadataTypes['tokenizer.ggml.tokens'], { type: GGUFValueType.ARRAY, arrayType: GGUFValueType.STRING });
      assert.deepEqual(f.metadataTypes['llama.rope.freq_base'], { type: GGUFValueType.FLOAT32 });
      assert.equal(getU32(f, 'llama.block_count'), 4);
      assert.equal(getStringArray(f, 'tokenizer.ggml.tokens').length, 2048);
    });
  }

  it('q8_0 weights dequantize to the f32 weights within q8_0 error; norms are identical', () => {
    const a = readGGUF(load(path.join(TINY, 'tiny-f32.gguf')));
    const b = readGGUF(load(path.join(TINY, 'tiny-q8_0.gguf')));
    for (const name of ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.3.ffn_down.weight', 'output.weight', 'blk.2.ffn_norm.weight']) {
      const ia = findTensor(a, name)!, ib = findTensor(b, name)!;
      assert.deepEqual(ia.shape, ib.shape);
      const x = ggufTensorToTensor(a, ia).toArray();
      const qt = ggufTensorToTensor(b, ib);
      assert.equal(qt.dtype, ib.type === GGMLType.Q8_0 ? 'q8_0' : 'f32', name);
      const y = ggufTensorToTensor(b, ib, { keep: 'f32' }).toArray();
      if (ib.type === GGMLType.F32) {
        assert.deepEqual(y, x);
        continue;
      }
      for (let blk = 0; blk < x.length / 32; blk++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * blk + j]!));
        const tol = (amax / 127) * 0.6 + 1e-12; // half a step plus f16 rounding of the scale
        for (let j = 0; j < 32; j++) {
          const i = 32 * blk + j;
          if (Math.abs(x[i]! - y[i]!) > tol) assert.fail(`${name}[${i}]: f32 ${x[i]} vs q8_0 ${y[i]} (tol ${tol})`);
        }
      }
    }
  });

  it('re-serialising a parsed file reproduces it byte for byte', () => {
    const bytes = load(path.join(TINY, 'tiny-q8_0.gguf'));
    const f = readGGUF(bytes);
    const out = writeGGUF({ metadata: f.metadata, metadataTypes: f.metadataTypes, tensors: f.tensors.map((t) => ({ ...t, data: tensorData(f, t) })) });
    assert.ok(Buffer.from(out).equals(Buffer.from(bytes)));
  });
});

type MetaJSON = Record<string, { type: number; arrayType?: number; value: unknown }>;
const fromJSON = (v: unknown): GGUFValue => {
  const one = (x: unknown): GGUFScalar => (typeof x === 'object' && x !== null ? BigInt((x as { bigint: string }).bigint) : (x as GGUFScalar));
  return Array.isArray(v) ? v.map(one) : one(v);
};

describe('GGUF: Python-written file with every value type (quant.gguf)', () => {
  const bytes = load(new URL('quant.gguf', FIX).pathname);
  const f = readGGUF(bytes);
  const meta = JSON.parse(readFileSync(new URL('quant.meta.json', FIX), 'utf8')) as { metadata: MetaJSON; tensors: { name: string; shape: number[]; type: number }[] };

  it('reads every scalar and array type with its value and type', () => {
    assert.deepEqual(Object.keys(f.metadata), Object.keys(meta.metadata));
    for (const [k, m] of Object.entries(meta.metadata)) {
      assert.deepEqual(f.metadata[k], fromJSON(m.value), k);
      const want: GGUFTypeInfo = m.arrayType === undefined ? { type: m.type } : { type: m.type, arrayType: m.arrayType };
      assert.deepEqual(f.metadataTypes[k], want, k);
    }
    assert.equal(typeof f.metadata['t.u64'], 'bigint');
    assert.equal(typeof f.metadata['t.u64_small'], 'number');
    assert.deepEqual(f.metadata['a.u64'], [0, 2 ** 53 - 1, 2n ** 53n, 2n ** 64n - 1n]);
  });

  it('honours general.alignment = 64 and the tensor table', () => {
    assert.equal(f.alignment, 64);
    assert.equal(f.dataOffset % 64, 0);
    assert.deepEqual(f.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type })), meta.tensors);
    for (const t of f.tensors) assert.equal(t.offset % 64, 0);
  });

  it('typed getters accept any integer width and name the key on errors', () => {
    assert.equal(getU32(f, 't.u8'), 200);
    assert.equal(getU32(f, 't.u16'), 60000);
    assert.equal(getU32(f, 't.u64_small'), 12345);
    assert.equal(getInt(f, 't.i8'), -100);
    assert.equal(getInt(f, 't.i64_small'), -42);
    assert.equal(getNumber(f, 't.f32'), Math.fround(0.1));
    assert.equal(getNumber(f, 't.i16'), -30000);
    assert.equal(getBool(f, 't.bool'), true);
    assert.equal(getString(f, 't.string'), 'héllo ▁wörld 🙂');
    assert.deepEqual(getArray(f, 'a.bool'), [true, false, true]);
    assert.deepEqual(getStringArray(f, 'a.string'), ['', 'a', '<0x0A>', '日本']);
    assert.deepEqual(getNumberArray(f, 'a.i16'), [-32768, 32767]);
    assert.deepEqual(getNumberArray(f, 'a.f32'), [1.5, Math.fround(-0.1), Math.fround(3e38)]);
    assert.equal(getString(f, 'missing', 'dflt'), 'dflt');
    assert.equal(getU32(f, 'missing', 7), 7);
    assert.throws(() => getString(f, 'missing'), (e) => e instanceof ModelFormatError && /missing metadata key "missing"/.test(e.message));
    assert.throws(() => getU32(f, 't.i8'), /"t.i8" should be an integer in \[0, 4294967295\], got INT8 -100/);
    assert.throws(() => getU32(f, 't.u64'), /"t.u64"/);
    assert.throws(() => getU32(f, 't.f32'), /FLOAT32/);
    assert.throws(() => getString(f, 't.u8'), /"t.u8" should be a string/);
    assert.throws(() => getBool(f, 't.u8'), ModelFormatError);
    assert.throws(() => getNumber(f, 't.bool'), ModelFormatError);
    assert.throws(() => getNumber(f, 'a.u8'), /an array of 3 UINT8/);
    assert.throws(() => getStringArray(f, 'a.u8'), ModelFormatError);
    assert.throws(() => getNumberArray(f, 'a.u64'), /element 2 .* does not fit a JS number/);
    assert.throws(() => getArray(f, 't.u8'), ModelFormatError);
  });

  it('re-serialising it reproduces the Python writer byte for byte', () => {
    const out = writeGGUF({ metadata: f.metadata, metadataTypes: f.metadataTypes, tensors: f.tensors.map((t) => ({ ...t, data: tensorData(f, t) })) });
    assert.ok(Buffer.from(out).equals(Buffer.from(bytes)));
  });
});

/** metadata covering every value type, with explicit types */
const ALL_TYPES: { metadata: Record<string, GGUFValue>; metadataTypes: Record<string, GGUFTypeInfo> } = {
  metadata: {
    'general.architecture': 'llama', u8: 255, i8: -128, u16: 65535, i16: -32768, u32: 4294967295, i32: -2147483648,
    f32: Math.fround(3.14), bool: false, string: 'naïve ✓', u64: 2n ** 64n - 1n, u64s: 7, i64: -(2n ** 63n), i64s: -7, f64: Math.PI,
    au8: [1, 2], ai8: [-1], au16: [65535], ai16: [-2], au32: [4294967295], ai32: [-3], af32: [0.5, -0.25], abool: [false, true],
    astring: ['x', '', 'ÿ'], au64: [1, 2n ** 63n], ai64: [-(2n ** 62n), 5], af64: [1e-300], aempty: [],
  },
  metadataTypes: {
    u8: { type: GGUFValueType.UINT8 }, i8: { type: GGUFValueType.INT8 }, u16: { type: GGUFValueType.UINT16 },
    i16: { type: GGUFValueType.INT16 }, u32: { type: GGUFValueType.UINT32 }, i32: { type: GGUFValueType.INT32 },
    f32: { type: GGUFValueType.FLOAT32 }, bool: { type: GGUFValueType.BOOL }, string: { type: GGUFValueType.STRING },
    u64: { type: GGUFValueType.UINT64 }, u64s: { type: GGUFValueType.UINT64 }, i64: { type: GGUFValueType.INT64 },
    i64s: { type: GGUFValueType.INT64 }, f64: { type: GGUFValueType.FLOAT64 },
    ...Object.fromEntries(([['au8', 'UINT8'], ['ai8', 'INT8'], ['au16', 'UINT16'], ['ai16', 'INT16'], ['au32', 'UINT32'],
      ['ai32', 'INT32'], ['af32', 'FLOAT32'], ['abool', 'BOOL'], ['astring', 'STRING'], ['au64', 'UINT64'], ['ai64', 'INT64'],
      ['af64', 'FLOAT64'], ['aempty', 'UINT16']] as const).map(([k, t]) => [k, { type: GGUFValueType.ARRAY, arrayType: GGUFValueType[t] }])),
  },
};

/** one tensor of every ggml type, random bytes, shapes of 1–4 dims */
function everyTypeTensors(seed: number) {
  const r = rng(seed);
  return Object.entries(GGML_TYPES).map(([id, t], i) => {
    const shape = [[2 * t.blockElems], [3, t.blockElems], [2, 1, t.blockElems], [1, 2, 2, 2 * t.blockElems]][i % 4]!;
    const n = shape.reduce((a, b) => a * b, 1);
    return { name: `t${i}.${GGMLType[Number(id)]}`, shape, type: Number(id) as GGMLType, data: randomBytes((n / t.blockElems) * t.blockBytes, r) };
  });
}

describe('GGUF: writer → reader round trip', () => {
  it('every metadata value type and every array element type (explicit types)', () => {
    const f = readGGUF(writeGGUF({ ...ALL_TYPES, tensors: [] }));
    assert.equal(f.version, 3);
    assert.deepEqual(plain(f.metadata), ALL_TYPES.metadata);
    for (const [k, t] of Object.entries(ALL_TYPES.metadataTypes)) assert.deepEqual(f.metadataTypes[k], t, k);
    assert.deepEqual(f.metadataTypes['general.architecture'], { type: GGUFValueType.STRING });
    assert.deepEqual(f.tensors, []);
  });

  it('default value types', () => {
    const f = readGGUF(writeGGUF({
      metadata: { a: 1, b: -1, c: 2 ** 32, d: -(2 ** 40), e: 0.5, g: true, h: 's', i: 5n, j: -5n, k: [1, 2], l: [1, 0.5], m: ['a'], n: [true], o: [2 ** 40], p: [] },
      tensors: [],
    }));
    const T = GGUFValueType;
    const want: Record<string, GGUFTypeInfo> = {
      a: { type: T.UINT32 }, b: { type: T.INT32 }, c: { type: T.UINT64 }, d: { type: T.INT64 }, e: { type: T.FLOAT32 },
      g: { type: T.BOOL }, h: { type: T.STRING }, i: { type: T.UINT64 }, j: { type: T.INT64 },
      k: { type: T.ARRAY, arrayType: T.INT32 }, l: { type: T.ARRAY, arrayType: T.FLOAT32 }, m: { type: T.ARRAY, arrayType: T.STRING },
      n: { type: T.ARRAY, arrayType: T.BOOL }, o: { type: T.ARRAY, arrayType: T.INT64 }, p: { type: T.ARRAY, arrayType: T.INT32 },
    };
    assert.deepEqual(plain(f.metadataTypes), want);
    assert.equal(f.metadata.i, 5);
    assert.equal(f.metadata.e, 0.5);
  });

  for (const alignment of [32, 1, 64, 256]) {
    it(`tensors of every ggml type are bit-exact (alignment ${alignment})`, () => {
      const tensors = everyTypeTensors(alignment);
      const f = readGGUF(writeGGUF({ metadata: { 'general.architecture': 'test' }, tensors, alignment }));
      assert.equal(f.alignment, alignment);
      if (alignment !== 32) assert.equal(getU32(f, 'general.alignment'), alignment);
      assert.equal(f.tensors.length, tensors.length);
      let expectOffset = 0;
      tensors.forEach((t, i) => {
        const info = f.tensors[i]!;
        assert.equal(info.name, t.name);
        assert.deepEqual(info.shape, t.shape);
        assert.deepEqual(info.ne, [...t.shape].reverse());
        assert.equal(info.type, t.type);
        assert.equal(info.typeName, GGMLType[t.type]);
        assert.equal(info.offset, expectOffset); // contiguous, padded: what current gguf.cpp requires
        expectOffset += Math.ceil(t.data.length / alignment) * alignment;
        assert.ok(Buffer.from(tensorData(f, info)).equals(Buffer.from(t.data)), t.name);
      });
      assert.equal(f.bytes.length, f.dataOffset + expectOffset);
    });
  }

  it('reads v2 files (same layout)', () => {
    const bytes = writeGGUF({ metadata: { x: 1 }, tensors: everyTypeTensors(2).slice(0, 3) });
    new DataView(bytes.buffer).setUint32(4, 2, true);
    const f = readGGUF(bytes);
    assert.equal(f.version, 2);
    assert.equal(f.tensors.length, 3);
  });

  it('rejects input it cannot represent', () => {
    const w = (extra: Partial<Parameters<typeof writeGGUF>[0]>) => () => writeGGUF({ metadata: {}, tensors: [], ...extra });
    const t = (o: object) => ({ name: 'w', shape: [32], type: GGMLType.F32, data: new Uint8Array(128), ...o });
    assert.throws(w({ metadata: { a: 300 }, metadataTypes: { a: { type: GGUFValueType.UINT8 } } }), /"a" = 300 .* UINT8/);
    assert.throws(w({ metadata: { a: 1.5 }, metadataTypes: { a: { type: GGUFValueType.INT32 } } }), ModelFormatError);
    assert.throws(w({ metadata: { a: 'x' }, metadataTypes: { a: { type: GGUFValueType.FLOAT32 } } }), ModelFormatError);
    assert.throws(w({ metadata: { a: -1n } , metadataTypes: { a: { type: GGUFValueType.UINT64 } } }), ModelFormatError);
    assert.throws(w({ metadata: { a: [1, 'x'] } }), /mixes element kinds/);
    assert.throws(w({ metadata: { a: [[1]] as unknown as GGUFValue } }), ModelFormatError);
    assert.throws(w({ metadata: { '': 1 } }), /non-empty/);
    assert.throws(w({ alignment: 48 }), /power of two/);
    assert.throws(w({ alignment: 64, metadata: { 'general.alignment': 32 } }), /disagrees/);
    assert.throws(w({ tensors: [t({}), t({})] }), /duplicate tensor name "w"/);
    assert.throws(w({ tensors: [t({ name: 'x'.repeat(64) })] }), /1\.\.63 bytes/);
    assert.throws(w({ tensors: [t({ shape: [1, 1, 1, 1, 32] })] }), /5 dims/);
    assert.throws(w({ tensors: [t({ data: new Uint8Array(127) })] }), /needs 128 bytes, got 127/);
    assert.throws(w({ tensors: [t({ type: GGMLType.Q8_0, shape: [40], data: new Uint8Array(34) })] }), /multiple of 32/);
    assert.throws(w({ tensors: [t({ type: 4 })] }), /unknown ggml type 4/);
  });
});

describe('GGUF: our files read by the independent Python reader', { skip: !havePython && 'python3 with numpy not available' }, () => {
  it('make_gguf.py info agrees on metadata and the tensor table', () => {
    const tensors = [
      { name: 'a', shape: [3, 64], type: GGMLType.F32, data: new Uint8Array(3 * 64 * 4) },
      { name: 'b', shape: [2, 2, 32], type: GGMLType.Q8_0, data: new Uint8Array(4 * 34) },
      { name: 'c', shape: [256], type: GGMLType.Q6_K, data: new Uint8Array(210) },
    ];
    const bytes = writeGGUF({ ...ALL_TYPES, tensors, alignment: 64 });
    const dir = mkdtempSync(path.join(tmpdir(), 'vista-gguf-'));
    try {
      const file = path.join(dir, 'x.gguf');
      writeFileSync(file, bytes);
      const r = spawnSync('python3', [path.join(SHARED, 'make_gguf.py'), 'info', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const info = JSON.parse(r.stdout) as { version: number; kv: Record<string, unknown>; tensors: Record<string, { ne: number[]; type: number; offset: number }> };
      const ours = readGGUF(bytes);
      assert.equal(info.version, 3);
      assert.deepEqual(Object.keys(info.kv), Object.keys(ours.metadata));
      for (const [k, v] of Object.entries(ours.metadata)) {
        if (Array.isArray(v)) assert.match(String(info.kv[k]), new RegExp(`^\\[${v.length} items\\]`), k);
        else if (typeof v === 'bigint') assert.match(r.stdout, new RegExp(`"${k}": ${v}\\b`), k); // beyond JSON.parse precision
        else assert.equal(info.kv[k], v, k);
      }
      assert.deepEqual(info.tensors, Object.fromEntries(ours.tensors.map((t) => [t.name, { ne: t.ne, type: t.type, offset: t.offset }])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A small valid file and helpers to corrupt it at a named place. */
function sample(metadata: Record<string, GGUFValue> = { a: [1, 2, 3], b: 'str' }, n = 2): Uint8Array {
  const tensors = [
    { name: 'tx', shape: [2, 32], type: GGMLType.Q8_0, data: new Uint8Array(68).fill(1) },
    { name: 'ty', shape: [8], type: GGMLType.F32, data: new Uint8Array(32).fill(2) },
  ].slice(0, n);
  return writeGGUF({ metadata, tensors });
}
const find = (b: Uint8Array, s: string): number => {
  const i = Buffer.from(b).indexOf(s);
  assert.ok(i >= 0, s);
  return i;
};
const patch = (b: Uint8Array, fn: (v: DataView, b: Uint8Array) => void): Uint8Array => {
  const c = b.slice();
  fn(new DataView(c.buffer), c);
  return c;
};
const rejects = (b: Uint8Array, re: RegExp): void => {
  assert.throws(() => readGGUF(b), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.match(e.message, /at byte offset \d+/);
    return true;
  });
};

describe('GGUF: malformed files are rejected with ModelFormatError', () => {
  const ok = sample();
  it('header: magic, versions, endianness, counts', () => {
    rejects(patch(ok, (_, b) => (b[0] = 0x48)), /bad magic: expected 47 47 55 46 \("GGUF"\), got 48 47 55 46/);
    rejects(ok.subarray(0, 3), /truncated: expected 4 bytes for magic/);
    rejects(patch(ok, (v) => v.setUint32(4, 1, true)), /v1/);
    rejects(patch(ok, (v) => v.setUint32(4, 4, true)), /version 4 is newer/);
    rejects(patch(ok, (v) => v.setUint32(4, 0, true)), /version 0/);
    rejects(patch(ok, (v) => v.setUint32(4, 3, false)), /big-endian/);
    rejects(patch(ok, (v) => v.setBigUint64(8, 1n << 40n, true)), /tensor count 1099511627776 needs at least 27487790694400 bytes but only \d+ bytes follow/);
    rejects(patch(ok, (v) => v.setBigUint64(16, 2n ** 64n - 1n, true)), /metadata count 18446744073709551615 needs/);
    rejects(patch(ok, (v) => v.setBigUint64(16, 5n, true)), /truncated|value type|limit|claims/);
    rejects(ok.subarray(0, 20), /truncated: expected 8 bytes for metadata count/);
  });
  it('metadata: lengths, types, duplicates, alignment', () => {
    const keyLen = find(ok, 'a') - 8;
    rejects(patch(ok, (v) => v.setBigUint64(keyLen, 1n << 31n, true)), /length of key of metadata entry 0 is 2147483648, more than the limit of 1073741824/);
    rejects(patch(ok, (v) => v.setBigUint64(keyLen, 1n << 20n, true)), /truncated: expected 1048576 bytes for key of metadata entry 0/);
    rejects(patch(ok, (v) => v.setUint32(keyLen + 9, 13, true)), /value type of "a" is 13/);
    rejects(patch(ok, (v) => v.setUint32(keyLen + 13, 9, true)), /nested arrays/);
    rejects(patch(ok, (v) => v.setBigUint64(keyLen + 17, 1000n, true)), /array "a" claims 1000 INT32 elements/);
    rejects(patch(ok, (v) => v.setBigUint64(keyLen + 17, 1n << 40n, true)), /element count of "a" is 1099511627776, more than the limit/);
    rejects(patch(ok, (_, b) => (b[find(ok, 'b')] = 0x61)), /duplicate metadata key "a"/);
    const s = find(ok, 'str') - 8;
    rejects(patch(ok, (v) => v.setBigUint64(s, 1n << 29n, true)), /truncated: expected 536870912 bytes for value of "b"/);
    const al = sample({ 'general.alignment': 64 });
    rejects(patch(al, (v) => v.setUint32(find(al, 'general.alignment') + 21, 48, true)), /general.alignment must be a power-of-two integer, got 48/);
    rejects(patch(al, (v) => v.setUint32(find(al, 'general.alignment') + 17, GGUFValueType.FLOAT32, true)), /general.alignment must be a power-of-two integer, got .* \(FLOAT32\)/);
  });
  it('tensor infos: dims, types, block multiples, names, offsets, bounds', () => {
    const t = find(ok, 'tx') + 2; // n_dims of tensor "tx"
    rejects(patch(ok, (v) => v.setUint32(t, 5, true)), /tensor "tx" has 5 dims; at most 4/);
    rejects(patch(ok, (v) => v.setUint32(t + 4 + 16, 99, true)), /tensor "tx" has unknown ggml type 99/);
    rejects(patch(ok, (v) => v.setUint32(t + 4 + 16, 31, true)), /unknown ggml type 31/);
    rejects(patch(ok, (v) => v.setBigUint64(t + 4, 40n, true)), /tensor "tx" of type Q8_0 has row length ne\[0\] = 40, not a multiple of its block size 32/);
    rejects(patch(ok, (v) => v.setBigInt64(t + 4, -32n, true)), /ne\[0\] = -32/);
    rejects(patch(ok, (v) => v.setBigUint64(t + 12, 1n << 40n, true)), /tensor "tx" \(Q8_0 \[32, 1099511627776\]\) needs bytes/);
    rejects(patch(ok, (v) => v.setBigUint64(t + 24, 8n, true)), /data offset 8 is not a multiple of the alignment 32/);
    rejects(patch(ok, (v) => v.setBigUint64(t + 24, 1n << 60n, true)), /data offset 1152921504606846976/);
    rejects(patch(ok, (v) => v.setBigUint64(t + 24, 4096n, true)), /needs bytes 4096\.\.4164 of the data blob/);
    rejects(patch(ok, (_, b) => (b[find(ok, 'ty') + 1] = 0x78)), /duplicate tensor name "tx"/);
    rejects(patch(ok, (v) => v.setBigUint64(find(ok, 'ty') + 2 + 4 + 8 + 4, 64n, true)), /overlaps tensor/);
    rejects(ok.subarray(0, ok.length - 40), /tensor "ty" .* the blob has/);
    rejects(ok.subarray(0, find(ok, 'ty') + 5), /truncated: expected 4 bytes for n_dims of tensor "ty"/);
  });
});

describe('GGUF: fuzz (seeded) — only ModelFormatError, never a hang', () => {
  const check = (b: Uint8Array, what: string): void => {
    try {
      readGGUF(b);
    } catch (e) {
      if (!(e instanceof ModelFormatError)) assert.fail(`${what}: ${String(e)}`);
    }
  };

  it('truncation at every offset', () => {
    const base = sample({ s: 'hello', arr: ['x', 'yy', 'zzz'], f: [0.5, 1.5], n: -3, big: 2n ** 64n - 1n }, 2);
    let accepted = 0;
    for (let n = 0; n < base.length; n++) {
      try {
        readGGUF(base.subarray(0, n));
        accepted++;
      } catch (e) {
        if (!(e instanceof ModelFormatError)) assert.fail(`truncated at ${n}: ${String(e)}`);
      }
    }
    assert.ok(accepted <= 32, `${accepted} truncations accepted (only the final tensor padding may be dropped)`);
  });

  it('random byte corruption of a small file and of the Python fixture header', () => {
    const t0 = performance.now();
    const r = rng(42);
    const small = sample({ s: 'hello', arr: ['x', 'yy'], f: [0.5], 'general.alignment': 32 }, 2);
    const big = load(new URL('quant.gguf', FIX).pathname);
    const headerEnd = readGGUF(big).dataOffset;
    for (let iter = 0; iter < 3000; iter++) {
      const src = iter % 2 ? small : big;
      const limit = iter % 2 ? small.length : headerEnd;
      const b = src.slice();
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(r() * limit);
        b[at] = r() < 0.5 ? b[at]! ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
      }
      check(iter % 7 === 0 ? b.subarray(0, Math.floor(r() * b.length)) : b, `iteration ${iter}`);
    }
    assert.ok(performance.now() - t0 < 10_000);
  });
});
