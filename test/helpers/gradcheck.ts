/**
 * Finite-difference gradient check: compares autograd gradients of sum(f(inputs) · R) (R a fixed random
 * projection, so every output element matters) with central differences computed in f32.
 */
import assert from 'node:assert/strict';
import { Tensor, backward, Rng, randn, mul, sum, noGrad } from '../../src/tensor/index.ts';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** check at most this many coordinates per input (seeded choice) */
  maxChecks?: number;
}

export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 2e-3;
  const rtol = opts.rtol ?? 2e-2;
  const rng = new Rng(1234);
  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  const y0 = f(...inputs);
  const R = randn(y0.shape, rng);
  const loss = sum(mul(y0, R));
  backward(loss);
  const objective = (): number => noGrad(() => {
    const y = f(...inputs);
    const a = y.toArray();
    const r = R.toArray();
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * r[i]!;
    return s;
  });
  inputs.forEach((x, xi) => {
    assert.ok(x.grad, `input ${xi} got no gradient`);
    const g = x.grad!.toArray();
    const n = x.size;
    const picks = n <= (opts.maxChecks ?? 24) ? [...Array(n).keys()] : Array.from({ length: opts.maxChecks ?? 24 }, () => rng.int(n));
    // contiguous inputs only (gradcheck inputs are made fresh)
    for (const i of picks) {
      const d = x.data;
      const off = x.offset + i;
      const orig = d[off]!;
      d[off] = orig + eps;
      const fp = objective();
      d[off] = orig - eps;
      const fm = objective();
      d[off] = orig;
      const num = (fp - fm) / (2 * eps);
      const err = Math.abs(num - g[i]!);
      assert.ok(err <= atol + rtol * Math.abs(num),
        `input ${xi} element ${i}: autograd ${g[i]} vs numeric ${num} (err ${err.toExponential(2)})`);
    }
  });
}

/** Random input tensor for gradchecks. */
export function rnd(shape: number[], seed: number, scale = 1): Tensor {
  return randn(shape, new Rng(seed), scale);
}
