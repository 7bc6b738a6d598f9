// Finite-difference gradient checks for every differentiable op (reference backend, f32).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { Tensor } from '../../src/tensor/index.ts';
import { gradcheck, rnd } from '../helpers/gradcheck.ts';
import { useBackend } from '../helpers/backends.ts';
import type { UnaryOp } from '../../src/tensor/kernels.ts';

before(() => useBackend('ref'));

describe('gradients: elementwise', () => {
  test('add/sub/mul/div with broadcasting', () => {
    gradcheck((a, b) => T.add(a!, b!), [rnd([2, 3, 4], 1), rnd([3, 1], 2)]);
    gradcheck((a, b) => T.sub(a!, b!), [rnd([4], 3), rnd([2, 3, 4], 4)]);
    gradcheck((a, b) => T.mul(a!, b!), [rnd([2, 1, 4], 5), rnd([3, 1], 6)]);
    const pos = T.affine(T.abs(rnd([3, 4], 8)), 1, 0.5);
    gradcheck((a, b) => T.div(a!, b!), [rnd([3, 4], 7), pos]);
    gradcheck((a, b) => T.maximum(a!, b!), [rnd([3, 4], 9), rnd([4], 10)]);
  });
  test('affine and scale', () => {
    gradcheck((a) => T.affine(a!, -1.5, 0.25), [rnd([5, 3], 11)]);
  });
  const unaries: UnaryOp[] = ['exp', 'tanh', 'abs', 'relu', 'sigmoid', 'gelu_erf', 'gelu_tanh', 'quick_gelu', 'silu', 'square', 'neg'];
  for (const op of unaries)
    test(`unary ${op}`, () => gradcheck((a) => T.unary(op, a!), [rnd([4, 5], 20, 1.5)]));
  for (const op of ['log', 'sqrt', 'rsqrt', 'recip'] as UnaryOp[])
    test(`unary ${op} (positive inputs)`, () => gradcheck((a) => T.unary(op, a!), [T.affine(T.abs(rnd([4, 5], 21)), 1, 0.5)]));
});

describe('gradients: views and matmul', () => {
  test('reshape, permute, transpose, slice, expand, contiguous', () => {
    gradcheck((a) => T.reshape(T.permute(a!, [2, 0, 1]), [4, -1]), [rnd([2, 3, 4], 30)]);
    gradcheck((a) => T.slice(T.transpose(a!, 0, 1), 1, 1, 3), [rnd([4, 3], 31)]);
    gradcheck((a) => T.expand(a!, [3, 2, 4]), [rnd([2, 1], 32)]);
    gradcheck((a) => T.contiguous(T.transpose(a!)), [rnd([3, 5], 33)]);
  });
  test('matmul: plain, transposed views, batched broadcast', () => {
    gradcheck((a, b) => T.matmul(a!, b!), [rnd([3, 5], 40), rnd([5, 2], 41)]);
    gradcheck((a, b) => T.matmul(T.transpose(a!), T.transpose(b!)), [rnd([5, 3], 42), rnd([2, 5], 43)]);
    gradcheck((a, b) => T.matmul(a!, b!), [rnd([2, 3, 4, 5], 44), rnd([5, 3], 45)]);
    gradcheck((a, b) => T.matmul(a!, b!), [rnd([4, 5], 46), rnd([2, 1, 5, 3], 47)]);
  });
  test('linear with bias', () => {
    gradcheck((x, w, b) => T.linear(x!, w!, b!), [rnd([2, 3, 6], 50), rnd([4, 6], 51), rnd([4], 52)]);
  });
  test('linear with a quantized weight passes the gradient of the dequantized weight to the input', () => {
    // the forward pass quantizes activations (llama.cpp semantics), so finite differences are meaningless;
    // the gradient is defined as that of x·dequant(w)ᵀ
    const w = T.quantize(rnd([4, 32], 53), 'q8_0');
    const x = rnd([3, 32], 54).param();
    const R = rnd([3, 4], 55);
    T.backward(T.sum(T.mul(T.linear(x, w), R)));
    const expected = T.matmul(R, T.dequantize(w)).toArray();
    const got = x.grad!.toArray();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - expected[i]!) < 1e-5);
  });
});

describe('gradients: reductions and nn ops', () => {
  test('sum, mean, max over axes', () => {
    gradcheck((a) => T.sum(a!, 1), [rnd([3, 4, 2], 60)]);
    gradcheck((a) => T.mean(a!, [0, 2], true), [rnd([3, 4, 2], 61)]);
    // well-separated values: finite differences must not cross the kink between two near-equal maxima
    const distinct = Tensor.from(Array.from({ length: 15 }, (_, i) => ((i * 7) % 15) * 0.25 - 2), [3, 5]);
    gradcheck((a) => T.max(a!, -1), [distinct]);
  });
  test('softmax and logSoftmax', () => {
    gradcheck((a) => T.softmax(a!), [rnd([3, 7], 70)]);
    gradcheck((a) => T.logSoftmax(a!), [rnd([2, 3, 5], 71)]);
  });
  test('crossEntropy with ignore-index', () => {
    gradcheck((a) => T.crossEntropy(a!, [1, -100, 4, 0]), [rnd([4, 6], 72)]);
  });
  test('crossEntropy with per-row weights: the weighted mean over rows not ignored', () => {
    const w = Float32Array.from([0.5, 9, 2, 0.25]); // row 1 is ignored: its weight must not count
    gradcheck((a) => T.crossEntropy(a!, [1, -100, 4, 0], -100, w), [rnd([4, 6], 73)]);
    const x = rnd([4, 6], 74);
    const rows = [0, 2, 3].map((r) => T.crossEntropy(T.Tensor.from(x.data.slice(r * 6, r * 6 + 6), [1, 6]), [[1, -100, 4, 0][r]!]).item());
    const want = (0.5 * rows[0]! + 2 * rows[1]! + 0.25 * rows[2]!) / 2.75;
    assert.ok(Math.abs(T.crossEntropy(x, [1, -100, 4, 0], -100, w).item() - want) < 1e-5);
    assert.throws(() => T.crossEntropy(x, [1, 2, 3, 0], -100, Float32Array.from([1, 1, -1, 1])), /weight -1 of row 2/);
    assert.throws(() => T.crossEntropy(x, [1, 2, 3, 0], -100, Float32Array.from([1, 1])), /2 weights for 4 rows/);
  });
  test('layerNorm and rmsNorm', () => {
    gradcheck((x, w, b) => T.layerNorm(x!, w!, b!, 1e-5), [rnd([3, 8], 80), rnd([8], 81), rnd([8], 82)]);
    gradcheck((x) => T.layerNorm(x!, null, null), [rnd([2, 5], 83)]);
    gradcheck((x, w) => T.rmsNorm(x!, w!, 1e-5), [rnd([3, 8], 84), rnd([8], 85)]);
  });
  test('rope in both pairings', () => {
    for (const mode of ['norm', 'neox'] as const)
      gradcheck((x) => T.rope(x!, { mode, base: 10000, pos0: 3 }), [rnd([2, 3, 2, 8], 90)]);
    gradcheck((x) => T.rope(x!, { mode: 'neox', base: 100, nRot: 4 }), [rnd([1, 4, 1, 8], 91)]);
  });
  test('attention: causal with GQA, bidirectional with key mask', () => {
    gradcheck((q, k, v) => T.attention(q!, k!, v!, { causal: true }), [rnd([2, 4, 3, 4], 100), rnd([2, 2, 3, 4], 101), rnd([2, 2, 3, 4], 102)]);
    const mask = Uint8Array.from([0, 0, 1, 0, 1, 1]);
    gradcheck((q, k, v) => T.attention(q!, k!, v!, { causal: false, keyMask: mask }), [rnd([2, 2, 2, 4], 103), rnd([2, 2, 3, 4], 104), rnd([2, 2, 3, 4], 105)]);
  });
  test('embedding scatter-adds repeated ids', () => {
    gradcheck((t) => T.embedding(t!, [2, 0, 2, 1], [2, 2]), [rnd([3, 4], 110)]);
  });
});

describe('fused attention equals the differentiable composition', () => {
  test('causal GQA with offset, and key mask', () => {
    const q = rnd([2, 4, 3, 8], 120), k = rnd([2, 2, 5, 8], 121), v = rnd([2, 2, 5, 8], 122);
    for (const opts of [{ causal: true }, { causal: false, keyMask: Uint8Array.from([0, 1, 0, 0, 1, 0, 0, 0, 0, 1]) }]) {
      const fused = T.noGrad(() => T.attention(q, k, v, opts)).toArray();
      q.requiresGrad = true;
      const composed = T.attention(q, k, v, opts).toArray();
      q.requiresGrad = false;
      for (let i = 0; i < fused.length; i++) assert.ok(Math.abs(fused[i]! - composed[i]!) < 1e-5, `${i}: ${fused[i]} vs ${composed[i]}`);
    }
  });
});

test('matmul values', () => {
  const c = T.matmul(Tensor.from([[1, 2], [3, 4]]), Tensor.from([[5, 6], [7, 8]]));
  assert.deepEqual(Array.from(c.toArray()), [19, 22, 43, 50]);
});
