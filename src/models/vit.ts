/**
 * ViT vision tower (CLIP / SigLIP style), named as llama.cpp's mmproj `v.*` tensors.
 *
 * Legend: B images, C=3 channels, S image side, p patch side, P = (S/p)² patches, E width, F MLP width,
 * H heads.
 *
 * Layout options cover LLaVA's CLIP (class token, pre-LN, features from an inner layer) and SigLIP
 * (patch bias, no class token, post-LN). Config keys keep the GGUF spelling without `clip.vision.`.
 */
import { ConfigError } from '../errors.ts';
import { Module } from '../nn/module.ts';
import { LayerNorm, Linear } from '../nn/layers.ts';
import { multiHeadAttention } from '../nn/attention.ts';
import { Rng } from '../tensor/rng.ts';
import { randn } from '../tensor/init.ts';
import { Tensor } from '../tensor/tensor.ts';
import { add, unary } from '../tensor/ops/elementwise.ts';
import { linear } from '../tensor/ops/matmul.ts';
import { concat } from '../tensor/ops/shape.ts';
import { patchify } from '../tensor/ops/image.ts';
import { expand, reshape, slice } from '../tensor/ops/view.ts';
import type { UnaryOp } from '../tensor/kernels.ts';

export type VisionActivation = 'gelu_erf' | 'gelu_tanh' | 'quick_gelu' | 'silu';

export interface VisionConfig {
  readonly image_size: number;
  readonly patch_size: number;
  readonly embedding_length: number;
  readonly feed_forward_length: number;
  readonly block_count: number;
  readonly 'attention.head_count': number;
  readonly 'attention.layer_norm_epsilon': number;
  readonly image_mean: readonly [number, number, number];
  readonly image_std: readonly [number, number, number];
  /** MLP activation (GGUF: clip.use_gelu → gelu_tanh, clip.use_silu → silu, neither → quick_gelu) */
  readonly activation: VisionActivation;
  readonly class_token: boolean;
  readonly patch_bias: boolean;
  readonly pre_ln: boolean;
  readonly post_ln: boolean;
  /** number of blocks to run (features = output of that block); default all */
  readonly feature_layer?: number;
}

export function numPatches(c: VisionConfig): number {
  return (c.image_size / c.patch_size) ** 2;
}

export class VitBlock extends Module {
  ln1: LayerNorm;
  attn_q: Linear;
  attn_k: Linear;
  attn_v: Linear;
  attn_out: Linear;
  ln2: LayerNorm;
  ffn_up: Linear;
  ffn_down: Linear;

  constructor(readonly _c: VisionConfig, rng: Rng) {
    super();
    const E = _c.embedding_length;
    const F = _c.feed_forward_length;
    const eps = _c['attention.layer_norm_epsilon'];
    const lin = (i: number, o: number) => new Linear(i, o, { bias: true, rng, std: 0.02 });
    this.ln1 = new LayerNorm(E, eps);
    this.attn_q = lin(E, E);
    this.attn_k = lin(E, E);
    this.attn_v = lin(E, E);
    this.attn_out = lin(E, E);
    this.ln2 = new LayerNorm(E, eps);
    this.ffn_up = lin(E, F);
    this.ffn_down = lin(F, E);
  }

  /** x (B, P, E) → (B, P, E); bidirectional attention, no mask */
  forward(x: Tensor): Tensor {
    const H = this._c['attention.head_count'];
    const h = this.ln1.forward(x);
    const a = multiHeadAttention(this.attn_q.forward(h), this.attn_k.forward(h), this.attn_v.forward(h), { H, Hkv: H, causal: false });
    x = add(x, this.attn_out.forward(a));
    const m = this.ffn_down.forward(unary(this._c.activation as UnaryOp, this.ffn_up.forward(this.ln2.forward(x))));
    return add(x, m);
  }
}

/** Conv2d weight (E, C, p, p) and bias, applied as a matmul over patchified pixels. */
export class PatchEmbed extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly _p: number, E: number, bias: boolean, rng: Rng) {
    super();
    this.weight = randn([E, 3, _p, _p], rng, 1 / Math.sqrt(3 * _p * _p)).param();
    this.bias = bias ? Tensor.zeros([E]).param() : null;
  }
  /** pixels (B, 3, S, S) → (B, P, E) */
  forward(px: Tensor): Tensor {
    const E = this.weight.shape[0]!;
    return linear(patchify(px, this._p), reshape(this.weight, [E, -1]), this.bias);
  }
}

export class VisionTower extends Module {
  patch_embd: PatchEmbed;
  class_embd: Tensor | null;
  position_embd: { weight: Tensor } & Module;
  pre_ln: LayerNorm | null;
  blk: VitBlock[];
  post_ln: LayerNorm | null;

  constructor(readonly config: VisionConfig, seed = 0) {
    super();
    const c = config;
    if (c.image_size % c.patch_size) throw new ConfigError(`image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
    if (c.embedding_length % c['attention.head_count']) throw new ConfigError(`vision width ${c.embedding_length} is not a multiple of ${c['attention.head_count']} heads`);
    const rng = new Rng(seed);
    const E = c.embedding_length;
    const eps = c['attention.layer_norm_epsilon'];
    this.patch_embd = new PatchEmbed(c.patch_size, E, c.patch_bias, rng);
    this.class_embd = c.class_token ? randn([E], rng, 0.02).param() : null;
    const nPos = numPatches(c) + (c.class_token ? 1 : 0);
    this.position_embd = new PositionEmbedding(nPos, E, rng);
    this.pre_ln = c.pre_ln ? new LayerNorm(E, eps) : null;
    this.blk = Array.from({ length: c.block_count }, () => new VitBlock(c, rng));
    this.post_ln = c.post_ln ? new LayerNorm(E, eps) : null;
  }

  /** Normalised pixels (B, 3, S, S) → patch features (B, P, E) (class token dropped). */
  forward(px: Tensor): Tensor {
    const c = this.config;
    const B = px.shape[0]!;
    const E = c.embedding_length;
    let x = this.patch_embd.forward(px); // (B, P, E)
    if (this.class_embd) x = concat([expand(reshape(this.class_embd, [1, 1, E]), [B, 1, E]), x], 1); // (B, 1+P, E)
    x = add(x, this.position_embd.weight);
    if (this.pre_ln) x = this.pre_ln.forward(x);
    const n = c.feature_layer ?? this.blk.length;
    for (let i = 0; i < n; i++) x = this.blk[i]!.forward(x);
    if (this.post_ln && n === this.blk.length) x = this.post_ln.forward(x);
    return this.class_embd ? slice(x, 1, 1, x.shape[1]!) : x;
  }
}

class PositionEmbedding extends Module {
  weight: Tensor;
  constructor(n: number, E: number, rng: Rng) {
    super();
    this.weight = randn([n, E], rng, 0.02).param();
  }
}
