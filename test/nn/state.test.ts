// Named tensor sets to safetensors bytes and back (strict), optimiser state through a file, atomic file I/O.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tensor, Rng, randn, quantize, transpose, f32ToBf16 } from '../../src/tensor/index.ts';
import { loadState, readState, saveState } from '../../src/nn/state.ts';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.ts';
import { readFileChecked, writeFileAtomic } from '../../src/platform/fs.ts';
import { InputError, ModelFormatError } from '../../src/errors.ts';
import { useBackend } from '../helpers/backends.ts';
import { makeAdamW, makeData, makeMlp, mlpParams, trainStep } from '../tensor/tiny-mlp.ts';

before(() => useBackend('ref'));

const set = (): Record<string, Tensor> => ({
  'blk.0.w': randn([3, 4], new Rng(1)).param(),
  'blk.0.b': randn([4], new Rng(2)).param(),
  'emb': quantize(randn([2, 8], new Rng(3)), 'bf16'),
});

describe('saveState / loadState', () => {
  test('round trip restores values in place, keeps dtypes and metadata; strided tensors are saved in logical order', () => {
    const src = set();
    src['wT'] = transpose(randn([2, 3], new Rng(4)));
    const bytes = saveState(src, { step: '42' });
    const dst: Record<string, Tensor> = { ...set(), wT: Tensor.zeros([3, 2]) };
    for (const t of Object.values(dst)) if (t.dtype === 'f32') t.data.fill(0);
    const w = dst['blk.0.w']!;
    const storage = w.storage;
    const meta = loadState(dst, bytes);
    assert.equal(meta.step, '42');
    assert.equal(dst['blk.0.w'], w);
    assert.equal(w.storage, storage);
    for (const name of ['blk.0.w', 'blk.0.b', 'wT']) assert.deepEqual(dst[name]!.toArray(), src[name]!.toArray(), name);
    assert.deepEqual(dst['emb']!.bytes, src['emb']!.bytes);
    assert.deepEqual(readSafetensors(bytes).tensors.map((t) => `${t.name}:${t.dtype}`).sort(),
      ['blk.0.b:F32', 'blk.0.w:F32', 'emb:BF16', 'wT:F32']);
  });
  test('f32 targets accept BF16 data (exact decode)', () => {
    const v = Float32Array.from([1.5, -2.25, 3, 0.1]);
    const bf = new Uint8Array(8);
    v.forEach((x, i) => new DataView(bf.buffer).setUint16(2 * i, f32ToBf16(x), true));
    const bytes = writeSafetensors([{ name: 'w', dtype: 'BF16', shape: [4], data: bf }]);
    const w = Tensor.zeros([4]);
    loadState({ w }, bytes);
    assert.deepEqual(Array.from(w.toArray()), [1.5, -2.25, 3, Math.fround(0.10009765625)]);
  });
  test('strict: one ModelFormatError listing every missing, unexpected, wrong-shaped and wrong-dtype tensor; nothing written', () => {
    const bytes = writeSafetensors([
      { name: 'blk.0.w', dtype: 'F32', shape: [4, 3], data: new Uint8Array(48) },
      { name: 'emb', dtype: 'F32', shape: [2, 8], data: new Uint8Array(64) },
      { name: 'extra', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
      { name: 'position_ids', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
    ]);
    const dst = set();
    const before = dst['blk.0.w']!.toArray();
    assert.throws(() => loadState(dst, bytes, 'model.safetensors'), (e: Error) => {
      assert.ok(e instanceof ModelFormatError);
      assert.match(e.message, /^model\.safetensors: 5 problems/);
      assert.match(e.message, /blk\.0\.w: expected f32 \[3, 4\], got f32 \[4, 3\]/);
      assert.match(e.message, /missing blk\.0\.b \(f32 \[4\]\)/);
      assert.match(e.message, /emb: expected dtype bf16, got f32/);
      assert.match(e.message, /unexpected extra \(f32 \[1\]\)/);
      assert.match(e.message, /unexpected position_ids \(I64 \[2\]\)/);
      return true;
    });
    assert.deepEqual(dst['blk.0.w']!.toArray(), before);
    assert.throws(() => saveState({ q: quantize(randn([1, 32], new Rng(5)), 'q8_0') }), /block-quantized tensors: q \(q8_0\)/);
    assert.throws(() => loadState(dst, new Uint8Array(4)), ModelFormatError);
  });
  test('Map input (Module.namedParameters) works like a record', () => {
    const src = set();
    const bytes = saveState(new Map(Object.entries(src)));
    assert.deepEqual(Object.keys(readState(bytes).tensors).sort(), Object.keys(src).sort());
  });
});

describe('checkpoint through files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vista-state-'));
  });
  test('params + AdamW state → file → fresh model continues bit-identically', async () => {
    const { x, y } = makeData(6);
    const a = makeMlp(7);
    const optA = makeAdamW(a);
    for (let i = 0; i < 4; i++) trainStep(a, optA, x, y);
    const names = ['w1', 'b1', 'w2', 'b2'];
    const named = (m: ReturnType<typeof makeMlp>): Record<string, Tensor> =>
      Object.fromEntries(mlpParams(m).map((p, i) => [names[i]!, p]));
    const file = path.join(dir, 'ckpt.safetensors');
    await writeFileAtomic(file, saveState({ ...named(a), ...prefixed('opt.', optA.buffers()) }, { step: String(optA.stepCount) }));
    const cont = [0, 1, 2].map(() => trainStep(a, optA, x, y));

    const b = makeMlp(8);
    const optB = makeAdamW(b);
    const meta = loadState({ ...named(b), ...prefixed('opt.', optB.buffers()) }, await readFileChecked(file));
    optB.stepCount = Number(meta.step);
    assert.deepEqual([0, 1, 2].map(() => trainStep(b, optB, x, y)), cont);
    mlpParams(b).forEach((p, i) => assert.deepEqual(p.toArray(), mlpParams(a)[i]!.toArray()));
    assert.deepEqual((await readdir(dir)).sort(), ['ckpt.safetensors'], 'no temp files left behind');
  });
  test('writeFileAtomic replaces an existing file; readFileChecked reports bad paths as InputError', async () => {
    const file = path.join(dir, 'x.bin');
    await writeFile(file, 'old contents');
    await writeFileAtomic(file, Uint8Array.from([1, 2, 3]));
    assert.deepEqual(Array.from(await readFileChecked(file)), [1, 2, 3]);
    const missing = path.join(dir, 'nope.safetensors');
    await assert.rejects(readFileChecked(missing), (e: Error) => e instanceof InputError && e.message.includes(missing));
    await assert.rejects(readFileChecked(dir), InputError);
    await assert.rejects(writeFileAtomic(path.join(dir, 'no-such-dir', 'f'), new Uint8Array(1)));
    await rm(dir, { recursive: true });
  });
});

function prefixed(prefix: string, r: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [prefix + k, v]));
}
