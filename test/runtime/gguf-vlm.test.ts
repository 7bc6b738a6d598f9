// vista writes a VLM as llama.cpp's LM + mmproj GGUF files: llama.cpp (through node-llama-cpp) computes the
// same text logits from the LM file, and vista reloads both files bit-exactly.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readGGUF, writeGGUF, type GGUFValue } from '../../src/formats/gguf.ts';
import { Llava, type VlmConfig } from '../../src/models/llava.ts';
import { llamaToGGUF, loadVlmGGUF, mmprojToGGUF } from '../../src/runtime/gguf-vlm.ts';
import { loadLlamaGGUF } from '../../src/runtime/gguf-llama.ts';
import { initBackend } from '../../src/backend/index.ts';
import { Rng, noGrad, randn } from '../../src/tensor/index.ts';
import { InputError, ModelFormatError } from '../../src/errors.ts';
import { VisionLanguageModel } from '../../src/runtime/vlm.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/llama-tiny/tiny-f32.gguf');

/** The fixture's SentencePiece vocabulary (2048 tokens), reused so llama.cpp can load our LM file. */
function fixtureTokenizer(): Record<string, GGUFValue> {
  const f = readGGUF(readFileSync(FIX));
  return Object.fromEntries(Object.entries(f.metadata).filter(([k]) => k.startsWith('tokenizer.')));
}

function tinyVlm(projector: 'idefics3' | 'mlp'): Llava {
  const config: VlmConfig = {
    vision: {
      image_size: 32, patch_size: 8, embedding_length: 64, feed_forward_length: 128, block_count: 2,
      'attention.head_count': 4, 'attention.layer_norm_epsilon': 1e-6, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
      activation: 'gelu_tanh', class_token: projector === 'mlp', patch_bias: true, pre_ln: projector === 'mlp', post_ln: projector !== 'mlp',
    },
    projector: projector === 'idefics3'
      ? { projector_type: 'idefics3', input_dim: 64, output_dim: 96, scale_factor: 2 }
      : { projector_type: 'mlp', input_dim: 64, output_dim: 96, hidden_dim: 96, activation: 'gelu_erf' },
    lm: {
      vocab_size: 2048, context_length: 256, embedding_length: 96, block_count: 2, feed_forward_length: 160,
      'attention.head_count': 6, 'attention.head_count_kv': 2, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000,
    },
  };
  return new Llava(config, 7);
}

const TOKENS = [1, 300, 301, 45, 1999, 7, 512, 88, 1024, 3];

describe('VLM ↔ GGUF', () => {
  before(() => initBackend());
  for (const projector of ['idefics3', 'mlp'] as const)
    test(`${projector}: reloading both files gives bit-identical outputs`, () => {
      const vlm = tinyVlm(projector);
      const lm = readGGUF(writeGGUF(llamaToGGUF(vlm.lm, fixtureTokenizer())));
      const mm = readGGUF(writeGGUF(mmprojToGGUF(vlm)));
      const back = loadVlmGGUF(lm, mm);
      const px = randn([2, 3, 32, 32], new Rng(3));
      const a = noGrad(() => vlm.encodeImages(px)).toArray();
      const b = noGrad(() => back.encodeImages(px)).toArray();
      assert.deepEqual(b, a);
      const la = noGrad(() => vlm.lm.forward(TOKENS)).toArray();
      const lb = noGrad(() => back.lm.forward(TOKENS)).toArray();
      assert.deepEqual(lb, la);
      assert.equal(back.imageTokens, projector === 'idefics3' ? 4 : 16);
    });

  test('an LM file passed as mmproj (and the reverse) is a clear error', () => {
    const vlm = tinyVlm('idefics3');
    const lm = readGGUF(writeGGUF(llamaToGGUF(vlm.lm, fixtureTokenizer())));
    const mm = readGGUF(writeGGUF(mmprojToGGUF(vlm)));
    assert.throws(() => loadVlmGGUF(lm, lm), (e) => e instanceof ModelFormatError && /mmproj file.*LM file/.test(e.message));
    assert.throws(() => loadVlmGGUF(mm, mm), (e) => e instanceof ModelFormatError && /LM file.*mmproj/.test(e.message));
  });

  test('llama.cpp computes the same logits from the LM file vista wrote', async () => {
    const nlc = await import('node-llama-cpp');
    const vlm = tinyVlm('idefics3');
    const dir = tempDir('vista-gguf-');
    const file = path.join(dir, 'lm.gguf');
    writeFileSync(file, writeGGUF(llamaToGGUF(vlm.lm, fixtureTokenizer())));
    const ours = noGrad(() => loadLlamaGGUF(readGGUF(readFileSync(file))).forward(TOKENS)).toArray();
    const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: file });
    const ctx = await model.createContext({
      contextSize: 64, batchSize: 64, threads: 1, flashAttention: false,
      experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    });
    try {
      const seq = ctx.getSequence();
      type Item = Parameters<typeof seq.controlledEvaluate>[0][number];
      const out = await seq.controlledEvaluate(TOKENS.map((tok) => [tok, { generateNext: { logits: true } }] as unknown as Item));
      const V = 2048;
      let worst = 0;
      out.forEach((item, p) => {
        const logits = item?.next?.logits;
        assert.ok(logits, `no logits for position ${p}`);
        for (const [tok, val] of logits) worst = Math.max(worst, Math.abs(val - ours[p * V + tok]!));
        assert.equal(logits.size, V);
      });
      assert.ok(worst < 1e-4, `max |Δlogit| vs llama.cpp = ${worst}`);
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });

  test('VisionLanguageModel.load says what it expects when called with the wrong arguments', async () => {
    const bad: unknown[] = [FIX, null, {}, { model: 7 }, { model: FIX, mmproj: {} }];
    for (const a of bad)
      await assert.rejects(VisionLanguageModel.load(a as Parameters<typeof VisionLanguageModel.load>[0]), (e: Error) =>
        e instanceof InputError && /expects \{ model, mmproj\? \}/.test(e.message));
  });
});
