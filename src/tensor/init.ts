/** Seeded tensor constructors. */
import { Rng } from './rng.ts';
import { Tensor, isMeta, type Shape } from './tensor.ts';

/** Normal(mean, std) samples. */
export function randn(shape: Shape, rng: Rng, std = 1, mean = 0): Tensor {
  const t = Tensor.empty(shape);
  if (isMeta(t)) return t;
  const d = t.data;
  for (let i = 0; i < t.size; i++) d[i] = mean + std * rng.normal();
  return t;
}

/** Uniform samples in [lo, hi). */
export function rand(shape: Shape, rng: Rng, lo = 0, hi = 1): Tensor {
  const t = Tensor.empty(shape);
  if (isMeta(t)) return t;
  const d = t.data;
  for (let i = 0; i < t.size; i++) d[i] = lo + (hi - lo) * rng.uniform();
  return t;
}
