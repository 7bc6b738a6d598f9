/** Inverted dropout, deterministic under a seeded Rng. */
import { ShapeError } from '../../errors.ts';
import type { Rng } from '../rng.ts';
import { Tensor } from '../tensor.ts';
import { mul } from './elementwise.ts';

/**
 * Zero each element with probability `p` and scale the survivors by 1/(1-p), so the expectation is
 * unchanged (PyTorch `nn.Dropout`). Identity when `!training` or `p = 0`. The mask comes from `rng`, one
 * 32-bit draw per element in row-major order, so a seed fixes it on every backend; backward multiplies
 * by the same mask.
 * @example dropout(h, 0.1, rng, true) // same shape as h
 */
export function dropout(x: Tensor, p: number, rng: Rng, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ShapeError(`dropout probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const mask = Tensor.empty(x.shape);
  const m = mask.data;
  const keepScale = p === 1 ? 0 : 1 / (1 - p);
  // keep when u32 ≥ p·2³²: P(drop) = p up to 2⁻³² granularity
  const threshold = p * 4294967296;
  for (let i = 0; i < mask.size; i++) m[i] = rng.nextU32() >= threshold ? keepScale : 0;
  return mul(x, mask);
}
