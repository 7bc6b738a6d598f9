/**
 * Word alignment of image tokens: an auxiliary loss that makes each image token that covers an object point
 * at the LM's own input embeddings of that object's words (' red', ' circle', ' large'; a digit: ' black',
 * ' digit', '7').
 *
 * Why: answering "what colour is the star?" needs a query built from the word ' star' to hit the star's
 * image tokens. When image tokens already resemble the words that name them, that match is the one a
 * transformer learns fastest (a token matching a copy of itself); when they are arbitrary features it is a
 * bilinear map the LM must discover while the value readout is still useless, and it stalls. In a toy
 * associative-recall run in PyTorch (scripts/reference/recall-toy.py; README, "The bundled model") tokens
 * that are sums of word embeddings are read within 250 steps, projected features within 1 000–1 500 or not
 * at all, and projected features pulled toward their words (an MSE form of this loss) sooner than without.
 *
 * The loss is a cross-entropy over the vocabulary of the token's dot products with the (detached) input
 * embeddings, one row per (token, word). Only directions are asked for, so the token keeps room for what
 * words do not say (where the object is). The exported projector is an ordinary one.
 */
import { Tensor } from '../tensor/tensor.ts';
import { crossEntropy } from '../tensor/ops/nn.ts';
import { matmul } from '../tensor/ops/matmul.ts';
import { gather } from '../tensor/ops/shape.ts';
import { reshape, transpose } from '../tensor/ops/view.ts';
import { cellOwners, type DenseObject } from './dense.ts';

/** Rows (image·N + token) of the image tokens that cover an object, and one target word id per row. */
export interface WordAlignTargets {
  readonly rows: Int32Array;
  readonly words: Int32Array;
}

/** The words naming an object, as the questions spell them (with the leading space of a word inside a sentence). */
export function objectWords(o: DenseObject): string[] {
  return o.shape === 'digit' ? [' black', ' digit', String(o.digit)] : [' ' + o.colour, ' ' + o.shape, ' ' + o.size];
}

/**
 * Targets for a batch of scenes whose images become G×G image tokens. A token covers the object whose box
 * holds its cell centre (the box centre's cell always counts): `cellOwners`, the rule of the dense targets. `wordIds`
 * spells a word as token ids; a word of several tokens gives a target row per token.
 */
export function wordAlignTargets(scenes: readonly (readonly DenseObject[])[], G: number, wordIds: (w: string) => readonly number[]): WordAlignTargets {
  const rows: number[] = [];
  const words: number[] = [];
  scenes.forEach((objs, b) => {
    const { owner } = cellOwners(objs, G);
    owner.forEach((k, p) => {
      if (k < 0) return;
      for (const w of objectWords(objs[k]!))
        for (const id of wordIds(w)) {
          rows.push(b * G * G + p);
          words.push(id);
        }
    });
  });
  return { rows: Int32Array.from(rows), words: Int32Array.from(words) };
}

/**
 * Loss of image tokens `img` (images, N, D) against the LM's input embeddings `embd` (V, D), which are
 * read but not trained by this term.
 */
export function wordAlignLoss(img: Tensor, embd: Tensor, t: WordAlignTargets): Tensor {
  const [B, N, D] = img.shape as [number, number, number];
  const fixed = Tensor.from(embd.data.slice(embd.offset, embd.offset + embd.size), embd.shape); // detached copy
  const logits = matmul(reshape(img, [B * N, D]), transpose(fixed, 0, 1)); // (B·N, V)
  return crossEntropy(gather(logits, 0, t.rows), t.words);
}
