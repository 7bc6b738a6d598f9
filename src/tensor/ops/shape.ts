/**
 * Joining, splitting and indexing along one axis — concat, split, stack, gather, pad, (un)squeeze — each
 * with its backward rule. Splits and (un)squeezes are views; concat, gather and pad write one new tensor
 * with one block copy per (outer index, input).
 */
import { ShapeError } from '../../errors.ts';
import { record } from '../autograd.ts';
import { Tensor, noGrad, numel } from '../tensor.ts';
import { contiguous, normAxis, slice } from './view.ts';

/** `x` as a contiguous tensor, without recording a graph node (forward-pass scratch). */
const raw = (x: Tensor): Tensor => noGrad(() => contiguous(x));

function checkF32(op: string, x: Tensor): void {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: f32 tensors only, got ${x.dtype} [${x.shape}]`);
}

/**
 * Concatenate along `axis`; all other dims must agree. Backward hands each input its slice of the
 * gradient (a view).
 * @example concat([a, b], -1) // (B, T, C1), (B, T, C2) → (B, T, C1 + C2)
 */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!xs.length) throw new ShapeError('concat of no tensors');
  const first = xs[0]!;
  const a = normAxis(axis, first.ndim);
  for (const x of xs) {
    checkF32('concat', x);
    if (x.ndim !== first.ndim || x.shape.some((d, i) => i !== a && d !== first.shape[i]))
      throw new ShapeError(`concat along axis ${a}: [${x.shape.join(', ')}] does not match [${first.shape.join(', ')}]`);
  }
  const total = xs.reduce((s, x) => s + x.shape[a]!, 0);
  const shape = [...first.shape];
  shape[a] = total;
  const out = Tensor.empty(shape);
  const outer = numel(shape.slice(0, a));
  const inner = numel(shape.slice(a + 1));
  const od = out.data;
  const starts: number[] = [];
  let start = 0;
  for (const x of xs) {
    starts.push(start);
    const xc = raw(x);
    const block = x.shape[a]! * inner; // each outer index: one contiguous run in both x and out
    const xd = xc.data;
    for (let o = 0; o < outer; o++) {
      const src = xc.offset + o * block;
      od.set(xd.subarray(src, src + block), o * total * inner + start * inner);
    }
    start += x.shape[a]!;
  }
  return record(out, 'concat', xs, (g) => xs.map((x, i) => (x.requiresGrad ? slice(g, a, starts[i]!, starts[i]! + x.shape[a]!) : null)));
}

/**
 * Split along `axis` into pieces of the given sizes, or into `n` equal pieces. The pieces are views.
 * @example const [q, k, v] = split(qkv, 3, -1) // (B, T, 3C) → 3 × (B, T, C)
 */
export function split(x: Tensor, sizes: number | readonly number[], axis: number): Tensor[] {
  const a = normAxis(axis, x.ndim);
  const len = x.shape[a]!;
  let parts: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes < 1 || len % sizes !== 0)
      throw new ShapeError(`split of axis ${a} (${len} elements) into ${sizes} equal parts`);
    parts = new Array<number>(sizes).fill(len / sizes);
  } else parts = [...sizes];
  if (parts.some((s) => !Number.isInteger(s) || s < 0) || parts.reduce((s, p) => s + p, 0) !== len)
    throw new ShapeError(`split sizes [${parts.join(', ')}] do not add up to ${len} (axis ${a} of [${x.shape.join(', ')}])`);
  let start = 0;
  return parts.map((p) => {
    const s = start;
    start += p;
    // the view is slice's; the backward pads with block copies (slice's backward writes its strided
    // destination element by element, slow for the typical split of a fused qkv along the last axis)
    const piece = noGrad(() => slice(x, a, s, s + p));
    return record(piece, 'split', [x], (g) => [pad(g, a, s, len - s - p)]);
  });
}

/** Insert a size-1 dim at `axis` (a view). `axis` may be `ndim` (append). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.ndim + 1);
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(a, 0, 1);
  strides.splice(a, 0, a < x.ndim ? x.strides[a]! * x.shape[a]! : 1);
  const out = new Tensor(x.storage, shape, x.dtype, strides, x.offset);
  return record(out, 'unsqueeze', [x], (g) => [squeeze(g, a)]);
}

/** Remove the size-1 dim at `axis` (a view). */
export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.ndim);
  if (x.shape[a] !== 1) throw new ShapeError(`squeeze axis ${a} of [${x.shape.join(', ')}]: size is not 1`);
  const shape = x.shape.filter((_, i) => i !== a);
  const strides = x.strides.filter((_, i) => i !== a);
  const out = new Tensor(x.storage, shape, x.dtype, strides, x.offset);
  return record(out, 'squeeze', [x], (g) => [unsqueeze(g, a)]);
}

/**
 * Stack same-shaped tensors along a new axis.
 * @example stack([a, b], 0) // 2 × (T, C) → (2, T, C)
 */
export function stack(xs: readonly Tensor[], axis: number): Tensor {
  if (!xs.length) throw new ShapeError('stack of no tensors');
  const first = xs[0]!;
  for (const x of xs)
    if (x.ndim !== first.ndim || x.shape.some((d, i) => d !== first.shape[i]))
      throw new ShapeError(`stack: [${x.shape.join(', ')}] differs from [${first.shape.join(', ')}]`);
  const a = normAxis(axis, first.ndim + 1);
  return concat(xs.map((x) => unsqueeze(x, a)), a);
}

/**
 * Index-select along `axis`: out has `indices.length` entries on that axis, out[..., j, ...] =
 * x[..., indices[j], ...]. Indices may repeat; the backward pass scatter-adds. With `zeroAt: -1`, an index
 * of -1 gives a slice of zeros (which gets no gradient): scattering rows into a larger zero-padded grid.
 * @example gather(tokens, 1, Int32Array.from([0, 5, 9])) // (B, N, C) → (B, 3, C)
 * @example gather(rows, 0, Int32Array.from([0, -1, 1]), { zeroAt: -1 }) // (2, C) → (3, C), the middle row zero
 */
export function gather(x: Tensor, axis: number, indices: Int32Array, opts: { zeroAt?: -1 } = {}): Tensor {
  checkF32('gather', x);
  const a = normAxis(axis, x.ndim);
  const dim = x.shape[a]!;
  const zero = opts.zeroAt === -1;
  for (const i of indices)
    if ((i < 0 || i >= dim) && !(zero && i === -1)) throw new ShapeError(`gather: index ${i} outside [0, ${dim}) on axis ${a}`);
  const n = indices.length;
  const outer = numel(x.shape.slice(0, a));
  const inner = numel(x.shape.slice(a + 1));
  const shape = [...x.shape];
  shape[a] = n;
  const out = Tensor.empty(shape);
  const xc = raw(x);
  const xd = xc.data;
  const od = out.data;
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++) {
      const dst = (o * n + j) * inner;
      if (indices[j]! < 0) od.fill(0, dst, dst + inner);
      else {
        const src = xc.offset + (o * dim + indices[j]!) * inner;
        od.set(xd.subarray(src, src + inner), dst);
      }
    }
  return record(out, 'gather', [x], (g) => {
    const gc = raw(g);
    const gd = gc.data;
    const gx = Tensor.zeros(x.shape);
    const d = gx.data;
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < n; j++) {
        if (indices[j]! < 0) continue;
        const dst = (o * dim + indices[j]!) * inner;
        const src = gc.offset + (o * n + j) * inner;
        for (let i = 0; i < inner; i++) d[dst + i]! += gd[src + i]!;
      }
    return [gx];
  });
}

/**
 * Pad `before` and `after` entries of `value` along `axis` (a concat with constant blocks).
 * @example pad(x, -1, 0, 3) // (T, 13) → (T, 16)
 */
export function pad(x: Tensor, axis: number, before: number, after: number, value = 0): Tensor {
  const a = normAxis(axis, x.ndim);
  if (!Number.isInteger(before) || !Number.isInteger(after) || before < 0 || after < 0)
    throw new ShapeError(`pad: before ${before} and after ${after} must be non-negative integers`);
  if (before === 0 && after === 0) return x;
  const block = (n: number): Tensor => {
    const s = [...x.shape];
    s[a] = n;
    return Tensor.full(s, value);
  };
  const parts = [...(before ? [block(before)] : []), x, ...(after ? [block(after)] : [])];
  return concat(parts, a);
}
