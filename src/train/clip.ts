/**
 * Contrastive image–caption pretraining of the vision tower (CLIP, Radford et al. 2021): symmetric InfoNCE
 * over a batch with a learned temperature.
 *
 * Legend: B pairs, P patches, E vision width, V vocabulary, C contrastive width.
 *
 * The text side is deliberately tiny and exists only for this stage: a **bag-of-words encoder** — the mean
 * of learned token embeddings of the caption (one (B, V) matrix of token frequencies times a (V, C)
 * table), then L2-normalised. Shapes World captions are sets of "size colour shape" mentions, so word
 * identity without order carries almost everything the tower needs to learn to see; it is thrown away
 * after the stage. The image side mean-pools the tower's patch features and projects them to C.
 */
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { Rng } from '../tensor/rng.ts';
import { randn } from '../tensor/init.ts';
import { Tensor } from '../tensor/tensor.ts';
import { add, exp, mul, rsqrt, square } from '../tensor/ops/elementwise.ts';
import { matmul } from '../tensor/ops/matmul.ts';
import { mean, sum } from '../tensor/ops/reduce.ts';
import { crossEntropy } from '../tensor/ops/nn.ts';
import { transpose } from '../tensor/ops/view.ts';

/** ln(1/0.07), CLIP's initial temperature; the scale is capped at 100 as in CLIP. */
const INIT_LOGIT_SCALE = Math.log(1 / 0.07);
export const MAX_LOGIT_SCALE = Math.log(100);

export class ClipHead extends Module {
  /** (V, C) token embeddings of the bag-of-words text encoder */
  txt_embd: Tensor;
  /** mean-pooled patch features E → C */
  img_proj: Linear;
  /** log of the similarity scale (learned temperature) */
  logit_scale: Tensor;

  constructor(vocab: number, visionWidth: number, dim: number, seed: number) {
    super();
    const rng = new Rng(seed, 7);
    this.txt_embd = randn([vocab, dim], rng, 0.02).param();
    this.img_proj = new Linear(visionWidth, dim, { rng, std: 1 / Math.sqrt(visionWidth) });
    this.logit_scale = Tensor.from([INIT_LOGIT_SCALE], [1]).param();
  }

  /** Keep the scale ≤ 100 (after each optimiser step). */
  clampScale(): void {
    const d = this.logit_scale.data;
    const o = this.logit_scale.offset;
    if (d[o]! > MAX_LOGIT_SCALE) d[o] = MAX_LOGIT_SCALE;
  }
}

/** Token frequencies per caption, each row summing to 1: (B, V). */
export function bagOfWords(captions: readonly (readonly number[])[], vocab: number): Tensor {
  const m = Tensor.zeros([captions.length, vocab]);
  captions.forEach((ids, b) => {
    for (const id of ids) m.data[b * vocab + id]! += 1 / Math.max(ids.length, 1);
  });
  return m;
}

const l2normalize = (x: Tensor): Tensor => mul(x, rsqrt(add(sum(square(x), -1, true), 1e-8)));

/**
 * Symmetric InfoNCE loss of B image–caption pairs: the tower's patch features (B, P, E), bag-of-words (B, V).
 * Pair b is the positive of row b and of column b; every other pair in the batch is a negative.
 */
export function clipLoss(head: ClipHead, feats: Tensor, bow: Tensor): Tensor {
  const B = feats.shape[0]!;
  const img = l2normalize(head.img_proj.forward(mean(feats, 1))); // (B, C)
  const txt = l2normalize(matmul(bow, head.txt_embd)); // (B, C)
  const logits = mul(matmul(img, transpose(txt)), exp(head.logit_scale)); // (B, B)
  const labels = Int32Array.from({ length: B }, (_, i) => i);
  return mul(add(crossEntropy(logits, labels), crossEntropy(transpose(logits), labels)), 0.5);
}
