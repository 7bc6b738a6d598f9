// openGGUF: header parsed from a growing prefix; tensors read straight into their storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openGGUF } from '../../src/platform/gguf-file.ts';
import { readGGUF, writeGGUF, GGMLType } from '../../src/formats/gguf.ts';
import { ggufTensorToTensor } from '../../src/formats/dequant.ts';
import { InputError, ModelFormatError } from '../../src/errors.ts';
import { tempDir } from '../helpers/tmp.ts';

const dir = tempDir('vista-gguf-file-');

test('a header bigger than the first read, and tensors equal to a whole-file read', () => {
  const data = new Uint8Array(64 * 4).map((_, i) => i & 255);
  const file = path.join(dir, 'big-header.gguf');
  writeFileSync(file, writeGGUF({
    metadata: { 'general.architecture': 'test', 'test.blob': 'x'.repeat(3 << 20), 'test.ids': Array.from({ length: 1000 }, (_, i) => i) },
    tensors: [{ name: 'w', shape: [4, 16], type: GGMLType.F32, data }, { name: 'q', shape: [2, 32], type: GGMLType.Q8_0, data: new Uint8Array(68).fill(3) }],
  }));
  const h = openGGUF(file);
  try {
    assert.equal((h.file.metadata['test.blob'] as string).length, 3 << 20);
    const whole = readGGUF(readFileSync(file));
    for (const info of h.file.tensors) {
      const a = ggufTensorToTensor(h.file, info, { read: h.read.bind(h) });
      const b = ggufTensorToTensor(whole, whole.tensors.find((t) => t.name === info.name)!);
      assert.equal(a.dtype, b.dtype);
      assert.deepEqual(a.storage.bytes.subarray(0, info.byteSize), b.storage.bytes.subarray(0, info.byteSize));
    }
  } finally {
    h.close();
  }
});

test('missing files and truncated data are clear errors', () => {
  assert.throws(() => openGGUF(path.join(dir, 'nope.gguf')), (e) => e instanceof InputError && /file not found/.test(e.message));
  const bytes = writeGGUF({ metadata: { 'general.architecture': 'test' }, tensors: [{ name: 'w', shape: [64], type: GGMLType.F32, data: new Uint8Array(256) }] });
  const cut = path.join(dir, 'cut.gguf');
  writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
  assert.throws(() => openGGUF(cut), (e) => e instanceof ModelFormatError && /w/.test(e.message));
  writeFileSync(cut, bytes.subarray(0, 20));
  assert.throws(() => openGGUF(cut), ModelFormatError);
});
