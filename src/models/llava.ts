/**
 * The vision-language model: vision tower → projector → llama LM (LLaVA design). This file only
 * composes; each part lives in its own file. Parameter names: `v.*` and `mm.*` (the mmproj file),
 * `lm.*` (the LM file, saved without the `lm.` prefix).
 *
 * Legend: B batch, N image tokens per image, T text tokens, D LM width.
 */
import { Module } from '../nn/module.ts';
import { VisionTower, numPatches, type VisionConfig } from './vit.ts';
import { Projector, type ProjectorConfig } from './projector.ts';
import { Llama, type LlamaConfig } from './llama.ts';
import { Tensor } from '../tensor/tensor.ts';
import { concat } from '../tensor/ops/shape.ts';
import { ConfigError } from '../errors.ts';

export interface VlmConfig {
  readonly vision: VisionConfig;
  readonly projector: ProjectorConfig;
  readonly lm: LlamaConfig;
}

export class Llava extends Module {
  v: VisionTower;
  mm: Projector;
  lm: Llama;

  constructor(readonly config: VlmConfig, seed = 0) {
    super();
    if (config.projector.input_dim !== config.vision.embedding_length)
      throw new ConfigError(`projector input ${config.projector.input_dim} ≠ vision width ${config.vision.embedding_length}`);
    if (config.projector.output_dim !== config.lm.embedding_length)
      throw new ConfigError(`projector output ${config.projector.output_dim} ≠ LM width ${config.lm.embedding_length}`);
    this.v = new VisionTower(config.vision, seed);
    this.mm = new Projector(config.projector, seed + 1);
    this.lm = new Llama(config.lm, seed + 2);
  }

  /** Image tokens per image. */
  get imageTokens(): number {
    return this.mm.tokensPerImage(numPatches(this.config.vision));
  }

  /** Normalised pixels (B, 3, S, S) → image embeddings (B, N, D). */
  encodeImages(px: Tensor): Tensor {
    return this.mm.forward(this.v.forward(px));
  }

  /**
   * Training forward for the simplest layout: each sample = its image tokens followed by T text tokens.
   * Returns logits (B, N + T, V).
   */
  forwardImageThenText(px: Tensor, ids: Int32Array, B: number): Tensor {
    const img = this.encodeImages(px); // (B, N, D)
    const txt = this.lm.embed(ids, B); // (B, T, D)
    return this.lm.logits(this.lm.hidden(concat([img, txt], 1)));
  }
}
