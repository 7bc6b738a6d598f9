// safetensors: a file written by plain Python (make_safetensors_fixture.py), round trips, strict validation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ModelFormatError } from '../../src/errors.ts';
import {
  type SafetensorsWriteTensor, readSafetensors, safetensorsData, safetensorsToArray, safetensorsToTensor, writeSafetensors,
} from '../../src/formats/safetensors.ts';

const FIX = new URL('../fixtures/formats/', import.meta.url);

describe('safetensors: Python-written fixture', () => {
  const bytes = new Uint8Array(readFileSync(new URL('sample.safetensors', FIX)));
  const want = JSON.parse(readFileSync(new URL('sample.safetensors.json', FIX), 'utf8')) as {
    metadata: Record<string, string>; data_order: string[]; tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
  };
  const f = readSafetensors(bytes);

  it('reads metadata, names verbatim, dtypes, shapes; tensors in data order', () => {
    assert.deepEqual({ ...f.metadata }, want.metadata);
    assert.deepEqual(f.tensors.map((t) => t.name).filter((n) => n !== 'empty'), want.data_order.filter((n) => n !== 'empty'));
    for (const t of f.tensors) {
      assert.equal(t.dtype, want.tensors[t.name]!.dtype, t.name);
      assert.deepEqual(t.shape, want.tensors[t.name]!.shape, t.name);
    }
    assert.equal(f.dataOffset % 8, 0);
  });

  it('values of every dtype', () => {
    for (const t of f.tensors) {
      const got = Array.from(safetensorsToArray(f, t) as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' || ['I32', 'U8'].includes(t.dtype) ? String(v) : v));
      assert.deepEqual(got, want.tensors[t.name]!.values, t.name);
    }
  });

  it('float tensors become vista tensors (native dtype or f32)', () => {
    const find = (n: string) => f.tensors.find((t) => t.name === n)!;
    const q = safetensorsToTensor(f, find('model.layers.0.self_attn.q_proj.weight'));
    assert.equal(q.dtype, 'f32');
    assert.deepEqual(q.shape, [4, 6]);
    assert.deepEqual(Array.from(q.toArray()), want.tensors['model.layers.0.self_attn.q_proj.weight']!.values);
    const e = safetensorsToTensor(f, find('model.embed_tokens.weight'));
    assert.equal(e.dtype, 'f16');
    assert.deepEqual(e.bytes, safetensorsData(f, find('model.embed_tokens.weight')));
    const l = safetensorsToTensor(f, find('lm_head.weight'), { keep: 'f32' });
    assert.equal(l.dtype, 'f32');
    assert.deepEqual(Array.from(l.toArray()), want.tensors['lm_head.weight']!.values);
    assert.equal(safetensorsToTensor(f, find('lm_head.weight')).dtype, 'bf16');
    assert.throws(() => safetensorsToTensor(f, find('position_ids')), /dtype I64; only F32, F16 and BF16/);
  });

  it('re-serialising gives a file the reader accepts with identical tensors', () => {
    const tensors: SafetensorsWriteTensor[] = f.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: safetensorsData(f, t) }));
    const g = readSafetensors(writeSafetensors(tensors, f.metadata));
    assert.deepEqual({ ...g.metadata }, { ...f.metadata });
    for (const t of g.tensors) assert.deepEqual(safetensorsData(g, t), safetensorsData(f, f.tensors.find((x) => x.name === t.name)!));
  });
});

describe('safetensors: writer', () => {
  it('round trips names verbatim (including odd ones) and pads the header to 8 bytes', () => {
    const tensors: SafetensorsWriteTensor[] = [
      { name: 'model.vision_tower.blocks.0.attn.qkv.weight', dtype: 'F32', shape: [2, 3], data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) },
      { name: '__proto__', dtype: 'BF16', shape: [1], data: new Uint8Array([0x80, 0x3f]) },
      { name: '0', dtype: 'I32', shape: [], data: new Uint8Array([7, 0, 0, 0]) },
      { name: 'ünï', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
    ];
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const f = readSafetensors(bytes);
    assert.deepEqual(f.tensors.map((t) => t.name).sort(), tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const info = f.tensors.find((x) => x.name === t.name)!;
      assert.deepEqual(info.shape, t.shape);
      assert.deepEqual(safetensorsData(f, info), t.data);
    }
    assert.deepEqual(Array.from(safetensorsToArray(f, f.tensors.find((t) => t.name === '__proto__')!) as ArrayLike<number>), [1]);
    assert.deepEqual(Array.from(safetensorsToArray(f, f.tensors.find((t) => t.name === '0')!) as ArrayLike<number>), [7]);
    assert.deepEqual(readSafetensors(writeSafetensors([])).tensors, []);
  });

  it('rejects bad input', () => {
    const t = { name: 'a', dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) };
    assert.throws(() => writeSafetensors([t, t]), /duplicated/);
    assert.throws(() => writeSafetensors([{ ...t, data: new Uint8Array(7) }]), /needs 8 bytes, got 7/);
    assert.throws(() => writeSafetensors([{ ...t, name: '__metadata__' }]), ModelFormatError);
    assert.throws(() => writeSafetensors([{ ...t, dtype: 'F17' as 'F32' }]), /unknown dtype/);
    assert.throws(() => writeSafetensors([t], { n: 1 as unknown as string }), /must be a string/);
  });
});

/** a file with a hand-written header */
function raw(header: string | object, data: number | Uint8Array = 0, lenOverride?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}
const rejects = (b: Uint8Array, re: RegExp): void => {
  assert.throws(() => readSafetensors(b), (e: unknown) => e instanceof ModelFormatError && re.test(e.message) ? true : assert.fail(String(e)));
};
const T = (dtype: string, shape: number[], offs: number[]) => ({ dtype, shape, data_offsets: offs });

describe('safetensors: strict validation', () => {
  it('header length and JSON', () => {
    rejects(new Uint8Array(5), /shorter than the 8-byte header length/);
    rejects(raw({}, 0, 200_000_000n), /exceeds the 100000000-byte limit/);
    rejects(raw({}, 0, 2n ** 64n - 1n), /exceeds/);
    rejects(raw({}, 0, 100n), /runs past the end/);
    rejects(raw('[1]'), /must start with "\{"/);
    rejects(raw('{"a": '), /not valid UTF-8 JSON/);
    const badUtf8 = raw('{"a":1}');
    badUtf8[10] = 0xff;
    rejects(badUtf8, /not valid UTF-8 JSON/);
    rejects(raw({ __metadata__: { a: 1 } }), /__metadata__\["a"\] must be a string/);
    rejects(raw({ __metadata__: [] }), /__metadata__ must be an object/);
  });

  it('tensor entries', () => {
    rejects(raw({ a: 5 }), /tensor "a": expected an object/);
    rejects(raw({ a: T('F24', [1], [0, 3]) }, 3), /unknown dtype "F24"/);
    rejects(raw({ a: T('F32', [-1], [0, 4]) }, 4), /shape must be/);
    rejects(raw({ a: T('F32', [1.5], [0, 4]) }, 4), /shape must be/);
    rejects(raw({ a: T('F32', [1], [4, 0]) }, 4), /data_offsets must be/);
    rejects(raw({ a: T('F32', [1], [0]) }, 4), /data_offsets must be/);
    rejects(raw({ a: T('F32', [2], [0, 4]) }, 4), /F32 \[2\] needs 8 bytes but data_offsets \[0,4\] span 4/);
  });

  it('offsets: within the file, contiguous, non-overlapping, covering the buffer', () => {
    rejects(raw({ a: T('F32', [1], [0, 4]) }, 2), /past the 2-byte data buffer/);
    rejects(raw({ a: T('F32', [1], [0, 4]), b: T('F32', [1], [8, 12]) }, 12), /"b" starts at data offset 8 but the previous tensor ends at 4/);
    rejects(raw({ a: T('F32', [2], [0, 8]), b: T('F32', [1], [4, 8]) }, 8), /"b" starts at data offset 4/);
    rejects(raw({ a: T('F32', [1], [4, 8]) }, 8), /"a" starts at data offset 4 but the previous tensor ends at 0/);
    rejects(raw({ a: T('F32', [1], [0, 4]) }, 6), /trailing bytes/);
    rejects(raw({ a: T('F32', [1], [0, 2 ** 60]) }, 4), /data_offsets must be/);
    rejects(raw({ a: T('F32', [1], [0, 2 ** 52]) }, 4), /needs 4 bytes but data_offsets \[0,4503599627370496\] span 4503599627370496/);
    rejects(raw({ a: T('F32', [2 ** 30, 2 ** 30], [0, 4]) }, 4), /needs 4611686018427388000 bytes/);
  });

  it('fuzz: corrupt bytes of the fixture only ever raise ModelFormatError', () => {
    const base = new Uint8Array(readFileSync(new URL('sample.safetensors', FIX)));
    let seed = 7;
    const r = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const b = base.slice(0, i % 5 ? base.length : Math.floor(r() * base.length));
      for (let k = 0; k < 3; k++) b[Math.floor(r() * Math.min(b.length, 700))] = Math.floor(r() * 256);
      try {
        readSafetensors(b);
      } catch (e) {
        if (!(e instanceof ModelFormatError)) assert.fail(`iteration ${i}: ${String(e)}`);
      }
    }
  });
});
