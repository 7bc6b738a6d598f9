// vista llama ↔ HF safetensors: HF's rotate-half RoPE on the exported (unpermuted) weights computes what
// vista computes with adjacent pairs; import/export round-trips bit-exactly; loading is strict.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { hfName, llamaToHFSafetensors, loadHFSafetensors } from '../../src/runtime/hf-llama.ts';
import { readSafetensors, safetensorsToTensor, writeSafetensors } from '../../src/formats/safetensors.ts';
import { initBackend } from '../../src/backend/index.ts';
import { noGrad, withoutInit, type Tensor } from '../../src/tensor/index.ts';
import { ModelFormatError } from '../../src/errors.ts';

const config: LlamaConfig = {
  vocab_size: 97, context_length: 64, embedding_length: 48, block_count: 2, feed_forward_length: 80,
  'attention.head_count': 6, 'attention.head_count_kv': 2, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000,
};
const ids = [1, 5, 9, 33, 60, 2, 96, 14];

before(() => initBackend({ name: 'ref' }));

test('HF rotate-half on the exported weights equals vista on its own', () => {
  const lm = new Llama(config, 3);
  const file = readSafetensors(llamaToHFSafetensors(lm));
  // an HF-style model: the same tensors, unpermuted, with RoPE on halves
  const hf = withoutInit(() => new Llama({ ...config, rope_type: 'neox' }));
  const raw = new Map<string, Tensor>();
  for (const name of hf.namedParameters().keys()) raw.set(name, safetensorsToTensor(file, file.tensors.find((t) => t.name === hfName(name))!, { keep: 'f32' }));
  hf.loadParameters(raw);
  const a = noGrad(() => lm.forward(ids)).toArray();
  const b = noGrad(() => hf.forward(ids)).toArray();
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst < 1e-5, `max |Δlogit| ${worst}`);
  assert.ok(file.tensors.some((t) => t.name === 'model.layers.1.self_attn.k_proj.weight'));
});

test('export → import round-trips bit-exactly', () => {
  const lm = new Llama(config, 4);
  const back = withoutInit(() => new Llama(config));
  loadHFSafetensors(back, llamaToHFSafetensors(lm));
  assert.deepEqual(noGrad(() => back.forward(ids)).toArray(), noGrad(() => lm.forward(ids)).toArray());
});

test('missing and unexpected tensors are one clear error', () => {
  const lm = new Llama(config, 5);
  const file = readSafetensors(llamaToHFSafetensors(lm));
  const keep = file.tensors.filter((t) => t.name !== 'model.norm.weight');
  const bytes = writeSafetensors([...keep.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: file.bytes.subarray(file.dataOffset + t.offset, file.dataOffset + t.offset + t.byteSize) })),
    { name: 'model.extra.weight', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]);
  assert.throws(() => loadHFSafetensors(withoutInit(() => new Llama(config)), bytes), (e) => e instanceof ModelFormatError && /missing model\.norm\.weight/.test(e.message) && /unexpected model\.extra\.weight/.test(e.message));
});
