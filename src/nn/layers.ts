/**
 * Basic layers. Shapes: `K` in features, `N` out features, `V` vocabulary, `C` channels.
 * Weights are created f32 and trainable; loaded weights may be any storage dtype (quantized weights are
 * frozen and only feed matmul/embedding).
 */
import { Module } from './module.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { randn } from '../tensor/init.ts';
import { add, linear, matmul, scale as scaleOp } from '../tensor/index.ts';
import { embedding, layerNorm, rmsNorm } from '../tensor/ops/nn.ts';
import { transpose } from '../tensor/ops/view.ts';

/** y = x·Wᵀ + b with W (N, K) — nn.Linear / GGUF layout; optional LoRA adapter y += (α/r)·x·Aᵀ·Bᵀ. */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  lora_a: Tensor | null = null;
  lora_b: Tensor | null = null;
  _loraScale = 0;

  constructor(inFeatures: number, outFeatures: number, opts: { bias?: boolean; rng?: Rng; std?: number } = {}) {
    super();
    const rng = opts.rng ?? new Rng(0);
    this.weight = randn([outFeatures, inFeatures], rng, opts.std ?? 1 / Math.sqrt(inFeatures)).param();
    this.bias = opts.bias ? Tensor.zeros([outFeatures]).param() : null;
  }

  /** Attach a LoRA adapter of rank r (A random, B zero so the output starts unchanged) and freeze W, b. */
  addLora(r: number, alpha: number, rng: Rng): void {
    const [N, K] = this.weight.shape as [number, number];
    this.weight.requiresGrad = false;
    if (this.bias) this.bias.requiresGrad = false;
    this.lora_a = randn([r, K], rng, 1 / Math.sqrt(K)).param();
    this.lora_b = Tensor.zeros([N, r]).param();
    this._loraScale = alpha / r;
  }

  forward(x: Tensor): Tensor {
    let y = linear(x, this.weight, this.bias);
    if (this.lora_a && this.lora_b) {
      const h = matmul(matmul(x, transpose(this.lora_a)), transpose(this.lora_b));
      y = add(y, scaleOp(h, this._loraScale));
    }
    return y;
  }
}

export class Embedding extends Module {
  weight: Tensor;
  constructor(vocab: number, dim: number, opts: { rng?: Rng; std?: number } = {}) {
    super();
    this.weight = randn([vocab, dim], opts.rng ?? new Rng(0), opts.std ?? 0.02).param();
  }
  /** ids → (...shape, C) */
  forward(ids: Int32Array | readonly number[], shape?: readonly number[]): Tensor {
    return embedding(this.weight, ids, shape);
  }
}

// eps is kept as the f32 value model files store, so a saved and reloaded model computes bit-identically
export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly eps: number;
  constructor(dim: number, eps = 1e-5, hasBias = true) {
    super();
    this.eps = Math.fround(eps);
    this.weight = Tensor.full([dim], 1).param();
    this.bias = hasBias ? Tensor.zeros([dim]).param() : null;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  weight: Tensor;
  readonly eps: number;
  constructor(dim: number, eps = 1e-5) {
    super();
    this.eps = Math.fround(eps);
    this.weight = Tensor.full([dim], 1).param();
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
