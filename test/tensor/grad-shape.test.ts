// Shape, image and dropout ops: finite-difference gradient checks and value semantics (reference backend).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { Tensor, Rng } from '../../src/tensor/index.ts';
import { ShapeError } from '../../src/errors.ts';
import { gradcheck, rnd } from '../helpers/gradcheck.ts';
import { useBackend } from '../helpers/backends.ts';

before(() => useBackend('ref'));

const arr = (t: Tensor): number[] => Array.from(t.toArray());

describe('gradients: shape ops', () => {
  test('concat along first, middle and last axes, strided inputs', () => {
    gradcheck((a, b) => T.concat([a!, b!], 0), [rnd([2, 3], 1), rnd([1, 3], 2)]);
    gradcheck((a, b, c) => T.concat([a!, b!, c!], 1), [rnd([2, 1, 4], 3), rnd([2, 3, 4], 4), rnd([2, 2, 4], 5)]);
    gradcheck((a, b) => T.concat([T.transpose(a!), b!], -1), [rnd([3, 2], 6), rnd([2, 5], 7)]);
  });
  test('split (sizes and n), unsqueeze/squeeze', () => {
    gradcheck((a) => {
      const [x, y, z] = T.split(a!, [1, 3, 2], 1);
      return T.concat([T.mul(z!, 2), x!, T.square(y!)], 1);
    }, [rnd([2, 6], 8)]);
    gradcheck((a) => T.mul(T.split(a!, 2, -1)[1]!, T.split(a!, 2, -1)[0]!), [rnd([3, 4], 9)]);
    gradcheck((a) => T.squeeze(T.mul(T.unsqueeze(a!, 1), 3), 1), [rnd([3, 4], 10)]);
  });
  test('stack on every axis', () => {
    for (const axis of [0, 1, 2, -1]) gradcheck((a, b) => T.stack([a!, b!], axis), [rnd([2, 3], 11), rnd([2, 3], 12)]);
  });
  test('gather with repeated indices on each axis', () => {
    const idx = Int32Array.from([2, 0, 2, 1]);
    gradcheck((a) => T.gather(a!, 0, idx), [rnd([3, 4], 13)]);
    gradcheck((a) => T.gather(a!, 1, idx), [rnd([2, 3, 2], 14)]);
    gradcheck((a) => T.gather(T.transpose(a!), -1, idx), [rnd([3, 2], 15)]);
  });
  test('gather with zero slices (-1) on each axis', () => {
    const idx = Int32Array.from([1, -1, 0, 1, -1]);
    gradcheck((a) => T.gather(a!, 0, idx, { zeroAt: -1 }), [rnd([2, 3], 17)]);
    gradcheck((a) => T.gather(a!, 1, idx, { zeroAt: -1 }), [rnd([2, 2, 3], 18)]);
  });
  test('pad', () => gradcheck((a) => T.pad(a!, 1, 2, 1, -1), [rnd([2, 3], 16)]));
});

describe('shape ops: values and errors', () => {
  const a = Tensor.from([[1, 2], [3, 4]]);
  const b = Tensor.from([[5], [6]]);
  test('concat / stack / split / pad / gather', () => {
    assert.deepEqual(arr(T.concat([a, b], 1)), [1, 2, 5, 3, 4, 6]);
    assert.deepEqual(T.stack([a, a], 1).shape, [2, 2, 2]);
    assert.deepEqual(arr(T.stack([a, T.transpose(a)], 2)), [1, 1, 2, 3, 3, 2, 4, 4]);
    const parts = T.split(Tensor.from([0, 1, 2, 3, 4, 5], [6]), [2, 4], 0);
    assert.deepEqual(parts.map(arr), [[0, 1], [2, 3, 4, 5]]);
    assert.equal(parts[1]!.storage, parts[0]!.storage, 'split pieces are views');
    assert.deepEqual(arr(T.pad(a, 0, 1, 0, 9)), [9, 9, 1, 2, 3, 4]);
    assert.deepEqual(arr(T.gather(a, 1, Int32Array.from([1, 1, 0]))), [2, 2, 1, 4, 4, 3]);
    assert.deepEqual(arr(T.gather(a, 0, Int32Array.from([-1, 1, -1, 0]), { zeroAt: -1 })), [0, 0, 3, 4, 0, 0, 1, 2]);
    // the zero slices get no gradient; the others scatter-add
    const x = Tensor.from([[1, 2], [3, 4]]);
    x.requiresGrad = true;
    T.backward(T.sum(T.mul(T.gather(x, 0, Int32Array.from([1, -1, 1]), { zeroAt: -1 }), Tensor.from([[1, 1], [5, 5], [2, 3]]))));
    assert.deepEqual(arr(x.grad!), [0, 0, 3, 4]);
  });
  test('errors name the shapes', () => {
    assert.throws(() => T.concat([a, Tensor.zeros([3, 1])], 1), ShapeError);
    assert.throws(() => T.split(a, 3, 0), /equal parts/);
    assert.throws(() => T.split(a, [1, 2], 0), /do not add up/);
    assert.throws(() => T.gather(a, 0, Int32Array.from([2])), /outside \[0, 2\)/);
    assert.throws(() => T.gather(a, 0, Int32Array.from([-1])), /index -1 outside/, '-1 is a zero slice only when asked for');
    assert.throws(() => T.gather(a, 0, Int32Array.from([-2]), { zeroAt: -1 }), /index -2 outside/);
    assert.throws(() => T.stack([a, b], 0), ShapeError);
  });
});

/** Direct stride-p convolution: w (D, C, p, p), img (B, C, H, W) → (B, P, D). */
function convPatches(img: Tensor, w: Tensor, p: number): Float32Array {
  const [B, C, H, W] = img.shape as number[];
  const D = w.shape[0]!;
  const x = img.toArray(), wv = w.toArray();
  const gh = H! / p, gw = W! / p;
  const out = new Float32Array(B! * gh * gw * D);
  for (let b = 0; b < B!; b++)
    for (let py = 0; py < gh; py++)
      for (let px = 0; px < gw; px++)
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let c = 0; c < C!; c++)
            for (let ky = 0; ky < p; ky++)
              for (let kx = 0; kx < p; kx++)
                s += x[((b * C! + c) * H! + py * p + ky) * W! + px * p + kx]! * wv[((d * C! + c) * p + ky) * p + kx]!;
          out[((b * gh + py) * gw + px) * D + d] = s;
        }
  return out;
}

/** idefics3 pixel_shuffle step by step, as HF writes it (view, view, permute, reshape, permute, reshape). */
function hfPixelShuffle(x: Tensor, s: number): Tensor {
  const [B, N, C] = x.shape as [number, number, number];
  const h = Math.sqrt(N), w = h;
  let y = T.reshape(x, [B, h, w, C]);
  y = T.reshape(y, [B, h, w / s, C * s]);
  y = T.permute(y, [0, 2, 1, 3]);
  y = T.reshape(y, [B, w / s, h / s, C * s * s]);
  y = T.permute(y, [0, 2, 1, 3]);
  return T.reshape(y, [B, N / (s * s), C * s * s]);
}

describe('image ops', () => {
  test('patchify then linear equals a stride-p Conv2d with weight (D, C, p, p)', () => {
    const img = rnd([2, 3, 8, 12], 20);
    const w = rnd([5, 3, 4, 4], 21);
    const got = T.linear(T.patchify(img, 4), T.reshape(w, [5, 48]));
    assert.deepEqual(got.shape, [2, 6, 5]);
    const want = convPatches(img, w, 4);
    got.toArray().forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-4, `${i}: ${v} vs ${want[i]}`));
  });
  test('patchify: (c, ky, kx) order on a hand example; indivisible sizes throw', () => {
    const img = Tensor.from(Array.from({ length: 2 * 2 * 4 }, (_, i) => i), [1, 2, 2, 4]); // C=2, H=2, W=4
    // patch 0 = columns 0-1: c0 rows (0,1),(4,5); c1 rows (8,9),(12,13)
    assert.deepEqual(arr(T.patchify(img, 2)), [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]);
    assert.throws(() => T.patchify(rnd([1, 3, 10, 12], 1), 4), /10×12 is not divisible into 4×4/);
  });
  test('pixelShuffle equals the HF idefics3 reshape/permute sequence', () => {
    for (const [N, C, s] of [[16, 3, 2], [36, 2, 3], [64, 5, 4]] as const) {
      const x = rnd([2, N, C], N + C);
      assert.deepEqual(arr(T.pixelShuffle(x, s)), arr(hfPixelShuffle(x, s)));
    }
    // 4×4 grid of scalar tokens 0..15, s = 2: token 0 gathers the top-left 2×2 block row by row
    const g = Tensor.from(Array.from({ length: 16 }, (_, i) => i), [1, 16, 1]);
    assert.deepEqual(arr(T.pixelShuffle(g, 2)), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
    assert.throws(() => T.pixelShuffle(rnd([1, 15, 2], 1), 2), /square grid/);
    assert.throws(() => T.pixelShuffle(rnd([1, 36, 2], 1), 4), /not divisible by 4/);
  });
  test('avgPoolTokens equals gemma3 (transpose, AvgPool2d, flatten, transpose) = avgPool2d on the grid', () => {
    const x = rnd([2, 16, 3], 30);
    const viaMap = T.avgPool2d(T.reshape(T.permute(x, [0, 2, 1]), [2, 3, 4, 4]), 2); // (B, C, 2, 2)
    const want = T.permute(T.reshape(viaMap, [2, 3, 4]), [0, 2, 1]);
    const got = T.avgPoolTokens(x, 2);
    assert.deepEqual(got.shape, [2, 4, 3]);
    got.toArray().forEach((v, i) => assert.ok(Math.abs(v - want.toArray()[i]!) < 1e-6));
    const g = Tensor.from(Array.from({ length: 16 }, (_, i) => i), [1, 16, 1]);
    assert.deepEqual(arr(T.avgPoolTokens(g, 2)), [2.5, 4.5, 10.5, 12.5]);
  });
  test('gradients: patchify, avgPool2d, avgPoolTokens, pixelShuffle', () => {
    gradcheck((a) => T.patchify(a!, 2), [rnd([2, 2, 4, 6], 40)]);
    gradcheck((a) => T.avgPool2d(a!, 2), [rnd([1, 2, 4, 6], 41)]);
    gradcheck((a) => T.avgPoolTokens(a!, 3), [rnd([2, 36, 2], 42)]);
    gradcheck((a) => T.pixelShuffle(a!, 2), [rnd([2, 16, 3], 43)]);
  });
});

describe('dropout', () => {
  test('identity when not training or p = 0; inverted scaling; deterministic per seed', () => {
    const x = rnd([64, 64], 50);
    assert.equal(T.dropout(x, 0.5, new Rng(1), false), x);
    assert.equal(T.dropout(x, 0, new Rng(1), true), x);
    const y1 = T.dropout(x, 0.25, new Rng(7), true).toArray();
    const y2 = T.dropout(x, 0.25, new Rng(7), true).toArray();
    assert.deepEqual(y1, y2);
    const xv = x.toArray();
    let dropped = 0;
    for (let i = 0; i < y1.length; i++) {
      if (y1[i] === 0) dropped++;
      else assert.equal(y1[i], Math.fround(xv[i]! * Math.fround(1 / 0.75)));
    }
    // 4096 Bernoulli(0.25): mean 1024, sd 27.7; 5 sd either way
    assert.ok(Math.abs(dropped - 1024) < 140, `${dropped} dropped`);
    assert.ok(T.dropout(x, 1, new Rng(1), true).toArray().every((v) => v === 0));
    assert.throws(() => T.dropout(x, 1.5, new Rng(1), true), ShapeError);
  });
  test('gradient uses the same mask', () => gradcheck((a) => T.dropout(a!, 0.4, new Rng(3), true), [rnd([5, 6], 51)]));
});
