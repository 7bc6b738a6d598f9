/** A random tiny VLM with a small trained BPE vocabulary, written as LM + mmproj GGUF files (for CLI/server tests). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { writeGGUF } from '../../src/formats/gguf.ts';
import { Llava, type VlmConfig } from '../../src/models/llava.ts';
import { llamaToGGUF, mmprojToGGUF } from '../../src/runtime/gguf-vlm.ts';
import { trainBPE, DEFAULT_SPECIAL_TOKENS } from '../../src/tokenizer/index.ts';
import { initBackend } from '../../src/backend/index.ts';
import { tempDir } from './tmp.ts';

export interface TinyVlmFiles {
  dir: string;
  model: string;
  mmproj: string;
  png: string;
}

const TEXTS = [
  'How many objects are there? There are 3 objects.', 'What color is the circle? red', 'Is there a green star? no',
  'Where is the small blue square? [120, 340, 260, 480]', 'Describe the image. A large red circle and the digit 7.',
];

export async function writeTinyVlm(): Promise<TinyVlmFiles> {
  initBackend();
  const tokenizer = trainBPE(TEXTS, { vocabSize: 400, pre: 'smollm', specialTokens: [...DEFAULT_SPECIAL_TOKENS, '<fake_token_around_image>', '<global-img>'] });
  const V = (tokenizer['tokenizer.ggml.tokens'] as string[]).length;
  const config: VlmConfig = {
    vision: {
      image_size: 32, patch_size: 8, embedding_length: 32, feed_forward_length: 64, block_count: 1,
      'attention.head_count': 2, 'attention.layer_norm_epsilon': 1e-6, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
      activation: 'gelu_tanh', class_token: false, patch_bias: true, pre_ln: false, post_ln: true,
    },
    projector: { projector_type: 'idefics3', input_dim: 32, output_dim: 48, scale_factor: 2 },
    lm: {
      vocab_size: V, context_length: 512, embedding_length: 48, block_count: 1, feed_forward_length: 96,
      'attention.head_count': 4, 'attention.head_count_kv': 2, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000,
    },
  };
  const vlm = new Llava(config, 11);
  const dir = tempDir('vista-tiny-');
  const files = { dir, model: path.join(dir, 'lm.gguf'), mmproj: path.join(dir, 'mmproj.gguf'), png: path.join(dir, 'red.png') };
  writeFileSync(files.model, writeGGUF(llamaToGGUF(vlm.lm, tokenizer)));
  writeFileSync(files.mmproj, writeGGUF(mmprojToGGUF(vlm)));
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 220, g: 40, b: 40 } } }).png().toFile(files.png);
  return files;
}
