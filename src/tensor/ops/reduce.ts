/** Reductions over axes, with backward rules. */
import { record } from '../autograd.ts';
import { Tensor, numel } from '../tensor.ts';
import { mul, scale } from './elementwise.ts';
import { expand, normAxis, reduceAxes, reshape } from './view.ts';

function resolveAxes(x: Tensor, axis?: number | readonly number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  return (typeof axis === 'number' ? [axis] : [...axis]).map((a) => normAxis(a, x.ndim));
}

function squeezeShape(x: Tensor, axes: readonly number[], keepDims: boolean): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => keepDims || !axes.includes(i));
}

/** Sum over `axis` (all axes when omitted). */
export function sum(x: Tensor, axis?: number | readonly number[], keepDims = false): Tensor {
  const axes = resolveAxes(x, axis);
  const kept = reduceAxes(x, axes, 'sum');
  const out = reshape(kept, squeezeShape(x, axes, keepDims));
  const keptShape = kept.shape;
  return record(out, 'sum', [x], (g) => [expand(reshape(g, keptShape), x.shape)]);
}

/** Mean over `axis` (all axes when omitted). */
export function mean(x: Tensor, axis?: number | readonly number[], keepDims = false): Tensor {
  const axes = resolveAxes(x, axis);
  const n = numel(axes.map((a) => x.shape[a]!));
  const s = sum(x, axes, keepDims);
  return scale(s, 1 / n);
}

/** Max over `axis`; the gradient goes to the first maximal element of each reduced group. */
export function max(x: Tensor, axis?: number | readonly number[], keepDims = false): Tensor {
  const axes = resolveAxes(x, axis);
  const kept = reduceAxes(x, axes, 'max');
  const out = reshape(kept, squeezeShape(x, axes, keepDims));
  const keptShape = kept.shape;
  return record(out, 'max', [x], (g) => {
    // mask of the first argmax per group, computed on a contiguous copy
    const xc = x.toArray();
    const m = kept.toArray();
    const mask = Tensor.zeros(x.shape);
    const md = mask.data;
    const strides = x.shape.map((_, i) => numel(x.shape.slice(i + 1)));
    const keptStrides = keptShape.map((_, i) => numel(keptShape.slice(i + 1)));
    const taken = new Uint8Array(m.length);
    for (let i = 0; i < xc.length; i++) {
      let r = i;
      let k = 0;
      for (let d = 0; d < x.ndim; d++) {
        const idx = Math.floor(r / strides[d]!);
        r -= idx * strides[d]!;
        if (!axes.includes(d)) k += idx * keptStrides[d]!;
      }
      if (!taken[k] && xc[i] === m[k]) {
        md[i] = 1;
        taken[k] = 1;
      }
    }
    return [mul(expand(reshape(g, keptShape), x.shape), mask)];
  });
}

/** Index of the maximum along the last axis, per row (no gradient). */
export function argmax(x: Tensor): Int32Array {
  const cols = x.shape[x.ndim - 1]!;
  const v = x.toArray();
  const rows = v.length / cols;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (v[r * cols + c]! > v[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}
