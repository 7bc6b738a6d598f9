// Optimisers, gradient clipping and LR schedules: values against hand-computed f64 references, and exact resume.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, AdamW, SGD, clipGradNorm, warmupCosine } from '../../src/tensor/index.ts';
import { ConfigError, ModelFormatError } from '../../src/errors.ts';
import { useBackend } from '../helpers/backends.ts';
import { makeAdamW, makeData, makeMlp, mlpParams, trainStep } from './tiny-mlp.ts';

before(() => useBackend('ref'));

const withGrad = (values: number[], grad: number[]): Tensor => {
  const p = Tensor.from(values).param();
  p.grad = Tensor.from(grad);
  return p;
};

/** PyTorch AdamW on plain numbers (f64). */
function adamwRef(p: number[], grads: number[][], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const m = p.map(() => 0), v = p.map(() => 0);
  p = [...p];
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      p[i] = p[i]! * (1 - lr * wd);
      p[i] = p[i]! - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
    }
  });
  return p;
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void => {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++)
    assert.ok(Math.abs(got[i]! - want[i]!) <= tol * Math.max(1, Math.abs(want[i]!)), `${i}: ${got[i]} vs ${want[i]}`);
};

describe('AdamW', () => {
  test('matches PyTorch semantics per group (own lr and weight decay), 3 steps', () => {
    const grads = [[0.5, -1, 2], [0.1, 0.3, -0.2], [-0.7, 0.05, 1]];
    const w = withGrad([1, -2, 0.5], grads[0]!);
    const b = withGrad([0.3, 0.1, -0.4], grads[0]!);
    const opt = new AdamW([{ params: [w] }, { params: [b], weightDecay: 0, lr: 0.05 }], { lr: 0.1, weightDecay: 0.1 });
    for (const g of grads) {
      w.grad!.data.set(g);
      b.grad!.data.set(g);
      opt.step();
    }
    assert.equal(opt.stepCount, 3);
    // f32 storage of p, m, v: agreement to a few f32 ulps of the values
    close(w.toArray(), adamwRef([1, -2, 0.5], grads, 0.1, 0.1), 1e-6);
    close(b.toArray(), adamwRef([0.3, 0.1, -0.4], grads, 0.05, 0), 1e-6);
  });
  test('lr is settable per step; parameters without a gradient are left alone', () => {
    const p = withGrad([1, 1], [1, 1]);
    const q = Tensor.from([5, 5]).param();
    const opt = new AdamW([p, q], { lr: 0.1, weightDecay: 0 });
    opt.setLr(0);
    opt.step();
    assert.deepEqual(Array.from(p.toArray()), [1, 1]);
    opt.groups[0]!.lr = 0.1;
    opt.step();
    assert.ok(p.toArray()[0]! < 1);
    assert.deepEqual(Array.from(q.toArray()), [5, 5]);
  });
  test('zeroGrad zeroes in place without reallocating', () => {
    const m = makeMlp(1);
    const { x, y } = makeData(2);
    const opt = makeAdamW(m);
    trainStep(m, opt, x, y);
    const g = m.w1.grad!;
    const storage = g.storage;
    opt.zeroGrad();
    assert.equal(m.w1.grad, g);
    assert.equal(g.storage, storage);
    assert.ok(g.toArray().every((v) => v === 0));
    trainStep(m, opt, x, y);
    assert.equal(m.w1.grad, g, 'backward accumulates into the zeroed gradient');
    assert.ok(g.toArray().some((v) => v !== 0));
  });
  test('a parameter in two groups is a ConfigError', () => {
    const p = Tensor.zeros([2]).param();
    assert.throws(() => new AdamW([{ params: [p] }, { params: [p] }]), ConfigError);
  });
});

describe('optimiser state', () => {
  test('save → load → continuation is bit-identical', () => {
    const { x, y } = makeData(3);
    const a = makeMlp(4);
    const optA = makeAdamW(a);
    for (let i = 0; i < 3; i++) trainStep(a, optA, x, y);
    const params = mlpParams(a).map((p) => p.toArray());
    const saved = optA.state();
    optA.groups[0]!.lr = 0.02; // a schedule change before the snapshot is restored must not leak
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(trainStep(a, optA, x, y));

    const b = makeMlp(99);
    mlpParams(b).forEach((p, i) => p.data.set(params[i]!));
    const optB = makeAdamW(b);
    optB.loadState(saved);
    optB.groups[0]!.lr = 0.02;
    assert.equal(optB.stepCount, 3);
    const lossesB: number[] = [];
    for (let i = 0; i < 3; i++) lossesB.push(trainStep(b, optB, x, y));
    assert.deepEqual(lossesB, losses);
    mlpParams(b).forEach((p, i) => assert.deepEqual(p.toArray(), mlpParams(a)[i]!.toArray()));
  });
  test('loading a mismatched state lists every problem at once', () => {
    const opt = makeAdamW(makeMlp(5));
    const s = opt.state();
    delete s.tensors['m.0.1'];
    s.tensors['v.1.0'] = Tensor.zeros([3]);
    s.tensors['extra'] = Tensor.zeros([1]);
    assert.throws(() => opt.loadState(s), (e: Error) =>
      e instanceof ModelFormatError && /3 problems/.test(e.message) && /missing m\.0\.1/.test(e.message)
      && /v\.1\.0: expected f32 \[32\], got f32 \[3\]/.test(e.message) && /unexpected extra/.test(e.message));
    assert.throws(() => opt.loadState({ ...opt.state(), groups: [] }), /0 parameter groups/);
  });
});

describe('SGD', () => {
  const run = (nesterov: boolean): number[] => {
    const p = withGrad([1, -1], [0, 0]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov, weightDecay: 0.01 });
    for (const g of [[1, 2], [0.5, -1], [-0.25, 0.5]]) {
      p.grad!.data.set(g);
      opt.step();
    }
    return Array.from(p.toArray());
  };
  const reference = (nesterov: boolean): number[] => {
    const p = [1, -1], buf = [0, 0];
    for (const g of [[1, 2], [0.5, -1], [-0.25, 0.5]])
      for (let i = 0; i < 2; i++) {
        let d = g[i]! + 0.01 * p[i]!;
        buf[i] = 0.9 * buf[i]! + d;
        d = nesterov ? d + 0.9 * buf[i]! : buf[i]!;
        p[i] = p[i]! - 0.1 * d;
      }
    return p;
  };
  test('momentum and nesterov match the PyTorch update', () => {
    close(run(false), reference(false), 1e-6);
    close(run(true), reference(true), 1e-6);
    assert.throws(() => new SGD([Tensor.zeros([1]).param()], { nesterov: true }), ConfigError);
  });
});

describe('clipGradNorm', () => {
  test('global L2 norm over all grads; scales only above maxNorm', () => {
    const a = withGrad([0, 0], [3, 4]);
    const b = withGrad([0], [12]);
    const none = Tensor.zeros([2]).param();
    assert.equal(clipGradNorm([a, b, none], 100), 13);
    assert.deepEqual(Array.from(a.grad!.toArray()), [3, 4]);
    assert.equal(clipGradNorm([a, b, none], 6.5), 13);
    const c = 6.5 / (13 + 1e-6);
    close(a.grad!.toArray(), [3 * c, 4 * c], 1e-7);
    close(b.grad!.toArray(), [12 * c], 1e-7);
    assert.ok(Math.abs(clipGradNorm([a, b], 1e9) - 6.5) < 1e-5);
  });
});

describe('warmupCosine', () => {
  const s = warmupCosine({ baseLr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 });
  test('exact values at the boundaries', () => {
    assert.equal(s(0), 0);
    assert.equal(s(5), 0.5);
    assert.equal(s(10), 1);
    assert.equal(s(110), 0.1);
    assert.equal(s(1000), 0.1);
    assert.ok(Math.abs(s(60) - 0.55) < 1e-15); // halfway: minLr + (base - min)/2
    assert.ok(Math.abs(s(35) - (0.1 + 0.45 * (1 + Math.SQRT1_2))) < 1e-15); // quarter: cos(π/4)
    for (let i = 11; i <= 110; i++) assert.ok(s(i) < s(i - 1), `monotone decay at ${i}`);
  });
  test('no warmup starts at baseLr; bad configs throw', () => {
    assert.equal(warmupCosine({ baseLr: 3e-4, warmupSteps: 0, totalSteps: 100 })(0), 3e-4);
    assert.equal(warmupCosine({ baseLr: 3e-4, warmupSteps: 0, totalSteps: 100 })(100), 0);
    assert.throws(() => warmupCosine({ baseLr: 1, warmupSteps: 20, totalSteps: 10 }), ConfigError);
    assert.throws(() => warmupCosine({ baseLr: 1, warmupSteps: 0, totalSteps: 10, minLr: 2 }), ConfigError);
  });
});
