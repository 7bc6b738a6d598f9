/** Views (no copy where the layout allows) and layout changes, each with its backward rule. */
import { ShapeError } from '../../errors.ts';
import { backendFor } from '../kernels.ts';
import { record } from '../autograd.ts';
import { Tensor, numel, type Shape } from '../tensor.ts';

function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new ShapeError(`axis ${axis} out of range for ${ndim} dims`);
  return a;
}
export { normAxis };

/** A contiguous tensor with the same values (the tensor itself when already contiguous). */
export function contiguous(x: Tensor): Tensor {
  if (x.dtype !== 'f32' || x.isContiguous()) return x;
  const out = Tensor.empty(x.shape);
  backendFor('copyStrided', ['f32']).copyStrided(x.shape, x.data, x.offset, x.strides, out.data, 0);
  return record(out, 'contiguous', [x], (g) => [g]);
}

/** Reshape; one dimension may be -1. A view when `x` is contiguous, else a copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const n = x.size;
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(s.filter((_, i) => i !== neg));
    s[neg] = rest === 0 ? 0 : n / rest;
  }
  if (numel(s) !== n || s.some((d) => !Number.isInteger(d) || d < 0))
    throw new ShapeError(`cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  const src = contiguous(x);
  const out = new Tensor(src.storage, s, src.dtype, undefined, src.offset);
  return record(out, 'reshape', [src], (g) => [reshape(g, src.shape)]);
}

/** Permute dimensions (a view). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim || new Set(dims.map((d) => normAxis(d, x.ndim))).size !== x.ndim)
    throw new ShapeError(`permute [${dims.join(', ')}] of a ${x.ndim}-d tensor`);
  const d = dims.map((a) => normAxis(a, x.ndim));
  const out = new Tensor(x.storage, d.map((i) => x.shape[i]!), x.dtype, d.map((i) => x.strides[i]!), x.offset);
  const inv = new Array<number>(d.length);
  d.forEach((a, i) => (inv[a] = i));
  return record(out, 'permute', [x], (g) => [permute(g, inv)]);
}

/** Swap two dimensions (a view). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const i = normAxis(a, x.ndim);
  const j = normAxis(b, x.ndim);
  [dims[i], dims[j]] = [dims[j]!, dims[i]!];
  return permute(x, dims);
}

/** Elements [start, end) along `axis` (a view). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const a = normAxis(axis, x.ndim);
  const len = x.shape[a]!;
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (!(0 <= start && start <= end && end <= len)) throw new ShapeError(`slice [${start}, ${end}) of axis ${a} with ${len} elements`);
  const shape = [...x.shape];
  shape[a] = end - start;
  const out = new Tensor(x.storage, shape, x.dtype, x.strides, x.offset + start * x.strides[a]!);
  return record(out, 'slice', [x], (g) => {
    const gx = Tensor.zeros(x.shape);
    const view = new Tensor(gx.storage, shape, 'f32', gx.strides, start * gx.strides[a]!);
    copyInto(view, g);
    return [gx];
  });
}

/** Broadcast size-1 dims to `shape` (a view with stride 0). */
export function expand(x: Tensor, shape: Shape): Tensor {
  if (shape.length < x.ndim) throw new ShapeError(`expand [${x.shape}] to [${shape}]`);
  const lead = shape.length - x.ndim;
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead]!;
    if (xd === d) return x.strides[i - lead]!;
    if (xd === 1) return 0;
    throw new ShapeError(`cannot expand [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  });
  const out = new Tensor(x.storage, [...shape], x.dtype, strides, x.offset);
  return record(out, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

/** Copy the values of `src` into the (possibly strided) view `dst` of the same shape. No autograd. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.shape.length !== src.shape.length || dst.shape.some((d, i) => d !== src.shape[i]))
    throw new ShapeError(`copy [${src.shape}] into [${dst.shape}]`);
  if (dst.isContiguous()) {
    backendFor('copyStrided', ['f32']).copyStrided(src.shape, src.data, src.offset, src.strides, dst.data, dst.offset);
    return;
  }
  // strided destination: copy the innermost contiguous runs of dst one by one
  const src2 = contiguous(src);
  const nd = dst.ndim;
  let inner = 1;
  let k = nd;
  while (k > 0 && (dst.strides[k - 1] === inner || dst.shape[k - 1] === 1)) {
    inner *= dst.shape[k - 1]!;
    k--;
  }
  const outerShape = dst.shape.slice(0, k);
  const outerStrides = dst.strides.slice(0, k);
  const n = src2.size / Math.max(inner, 1);
  const idx = new Array<number>(k).fill(0);
  const s = src2.data;
  const d = dst.data;
  let so = src2.offset;
  for (let r = 0; r < n; r++) {
    let off = dst.offset;
    for (let j = 0; j < k; j++) off += idx[j]! * outerStrides[j]!;
    d.set(s.subarray(so, so + inner), off);
    so += inner;
    for (let j = k - 1; j >= 0; j--) {
      if (++idx[j]! < outerShape[j]!) break;
      idx[j] = 0;
    }
  }
}

/** Sum `g` down to `shape` (the reverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  let r = g;
  // reduce leading dims, then dims that were 1
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  r = reduceAxes(r, axes, 'sum');
  return reshape(r, shape);
}

/** Sum or max over `axes`, keeping them as size-1 dims. Contiguous result. No autograd (see ops/reduce). */
export function reduceAxes(x: Tensor, axes: readonly number[], op: 'sum' | 'max'): Tensor {
  let r = contiguous(x);
  const sorted = [...new Set(axes.map((a) => normAxis(a, x.ndim)))].sort((a, b) => a - b);
  for (const a of sorted) {
    const outer = numel(r.shape.slice(0, a));
    const dim = r.shape[a]!;
    const inner = numel(r.shape.slice(a + 1));
    const shape = [...r.shape];
    shape[a] = 1;
    const out = Tensor.empty(shape);
    backendFor('reduce', ['f32']).reduce(op, outer, dim, inner, r.data, r.offset, out.data);
    r = out;
  }
  return r;
}
