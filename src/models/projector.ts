/**
 * Projectors from vision features to LM embeddings, named as llama.cpp's `mm.*` tensors.
 * Legend: B images, P patches, E vision width, D LM width, s pixel-shuffle factor.
 *
 * - `mlp` (LLaVA-1.5): mm.0 → GELU → mm.2, one output token per patch.
 * - `idefics3` (SmolVLM): pixel-shuffle by s (P/s² tokens of E·s²) → mm.model.fc (no bias).
 */
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { Rng } from '../tensor/rng.ts';
import { Tensor } from '../tensor/tensor.ts';
import { unary } from '../tensor/ops/elementwise.ts';
import { pixelShuffle } from '../tensor/ops/image.ts';
import type { VisionActivation } from './vit.ts';

export type ProjectorType = 'mlp' | 'idefics3';

export interface ProjectorConfig {
  readonly projector_type: ProjectorType;
  /** vision width E */
  readonly input_dim: number;
  /** LM width D */
  readonly output_dim: number;
  /** mlp hidden width (default D) */
  readonly hidden_dim?: number;
  /** mlp activation (LLaVA: exact GELU in HF, tanh GELU in llama.cpp) */
  readonly activation?: VisionActivation;
  /** idefics3 pixel-shuffle factor */
  readonly scale_factor?: number;
}

class FC extends Module {
  fc: Linear;
  constructor(i: number, o: number, rng: Rng) {
    super();
    this.fc = new Linear(i, o, { rng, std: 0.02 });
  }
}

export class Projector extends Module {
  /** mlp: mm.0 / mm.2 ; idefics3: mm.model.fc */
  '0': Linear | null = null;
  '2': Linear | null = null;
  model: FC | null = null;

  constructor(readonly config: ProjectorConfig, seed = 0) {
    super();
    const rng = new Rng(seed);
    const c = config;
    if (c.projector_type === 'mlp') {
      const Hd = c.hidden_dim ?? c.output_dim;
      this['0'] = new Linear(c.input_dim, Hd, { bias: true, rng, std: 0.02 });
      this['2'] = new Linear(Hd, c.output_dim, { bias: true, rng, std: 0.02 });
    } else {
      const s = c.scale_factor ?? 2;
      this.model = new FC(c.input_dim * s * s, c.output_dim, rng);
    }
  }

  /** Vision features (B, P, E) → LM embeddings (B, N, D) */
  forward(x: Tensor): Tensor {
    if (this.config.projector_type === 'mlp')
      return this['2']!.forward(unary(this.config.activation ?? 'gelu_erf', this['0']!.forward(x)));
    return this.model!.fc.forward(pixelShuffle(x, this.config.scale_factor ?? 2));
  }

  /** Output tokens per image for `patches` input patches. */
  tokensPerImage(patches: number): number {
    if (this.config.projector_type === 'mlp') return patches;
    const s = this.config.scale_factor ?? 2;
    return patches / (s * s);
  }
}
