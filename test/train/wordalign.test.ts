// Word alignment of image tokens (src/train/wordalign.ts): which tokens get which words, and that the loss
// turns the tokens toward their words without touching the embeddings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectWords, wordAlignLoss, wordAlignTargets } from '../../src/train/wordalign.ts';
import type { DenseObject } from '../../src/train/dense.ts';
import { backward } from '../../src/tensor/autograd.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { randn } from '../../src/tensor/init.ts';
import { initBackend } from '../../src/backend/index.ts';

initBackend();

const WORDS = [' red', ' circle', ' large', ' small', ' blue', ' star', ' black', ' digit', '7'];
const wordId = (w: string): number => {
  const i = WORDS.indexOf(w);
  if (i < 0) throw new Error(`no word '${w}'`);
  return 10 + i;
};
const wordIds = (w: string): number[] => [wordId(w)];
const circle: DenseObject = { shape: 'circle', colour: 'red', size: 'large', digit: null, box1000: [0, 0, 500, 500] };
const seven: DenseObject = { shape: 'digit', colour: 'black', size: null, digit: 7, box1000: [700, 700, 900, 900] };

test('objectWords: colour, shape and size; a digit is black, digit and its numeral', () => {
  assert.deepEqual(objectWords(circle), [' red', ' circle', ' large']);
  assert.deepEqual(objectWords(seven), [' black', ' digit', '7']);
});

test('wordAlignTargets: the tokens whose cell centre an object holds get its three words; background gets none', () => {
  // 4×4 grid of 250-wide cells (centres 125, 375, 625, 875): the circle's box [0, 500) holds the centres of tokens
  // 0, 1, 4 and 5; the digit's box [700, 900) holds only token 15's, in the second image (rows 16 + …)
  const t = wordAlignTargets([[circle], [seven]], 4, wordIds);
  const rows = [...t.rows], words = [...t.words];
  const circleRows = [0, 1, 4, 5];
  assert.deepEqual(rows.slice(0, 12), circleRows.flatMap((r) => [r, r, r]));
  assert.deepEqual(words.slice(0, 12), circleRows.flatMap(() => [' red', ' circle', ' large'].map(wordId)));
  assert.deepEqual(rows.slice(12), [16 + 15, 16 + 15, 16 + 15]);
  assert.deepEqual(words.slice(12), [' black', ' digit', '7'].map(wordId));
});

test('wordAlignTargets: a word the tokenizer splits gives one target row per piece', () => {
  const t = wordAlignTargets([[circle]], 2, (w) => (w === ' circle' ? [1, 2] : [3]));
  // a 2×2 grid: the box [0, 500) holds token 0's centre only; red, then circle's two pieces, then large
  assert.deepEqual([...t.rows], [0, 0, 0, 0]);
  assert.deepEqual([...t.words], [3, 1, 2, 3]);
});

test('wordAlignLoss: gradient steps on the tokens make their words the best-matching embeddings; the embeddings get no gradient', () => {
  const V = 24, D = 16, G = 4, N = G * G;
  const rng = new Rng(5);
  const embd = randn([V, D], rng, 1).param();
  const img = randn([1, N, D], rng, 0.1).param();
  const t = wordAlignTargets([[circle]], G, wordIds);
  const first = wordAlignLoss(img, embd, t);
  const l0 = first.item();
  for (let step = 0; step < 60; step++) {
    img.grad?.data.fill(0);
    const l = wordAlignLoss(img, embd, t);
    backward(l);
    for (let i = 0; i < img.size; i++) img.data[i]! -= 0.5 * img.grad!.data[i]!;
  }
  const l1 = wordAlignLoss(img, embd, t).item();
  assert.ok(l1 < l0 * 0.5, `loss ${l0} → ${l1}`);
  assert.equal(embd.grad, null, 'the embeddings are read, not trained');
  // for each covered token, its three words are the three highest dot products
  const want = new Set([' red', ' circle', ' large'].map(wordId));
  for (const r of [0, 1, 4, 5]) {
    const dots = Array.from({ length: V }, (_, v) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += img.data[r * D + d]! * embd.data[v * D + d]!;
      return [s, v] as const;
    }).sort((a, b) => b[0] - a[0]);
    assert.deepEqual(new Set(dots.slice(0, 3).map(([, v]) => v)), want, `token ${r}`);
  }
});
