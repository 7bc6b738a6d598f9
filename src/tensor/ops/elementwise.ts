/** Broadcasting binary ops and unary maps, each with its backward rule. */
import { ShapeError } from '../../errors.ts';
import { backendFor, type BinaryOp, type UnaryOp } from '../kernels.ts';
import { record } from '../autograd.ts';
import { Tensor, type Shape } from '../tensor.ts';
import { expand, sumTo } from './view.ts';

export function broadcastShape(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new ShapeError(`cannot broadcast [${a.join(', ')}] with [${b.join(', ')}]`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `t` read as `shape` (0 on broadcast dims). */
function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]!));
}

const asTensor = (x: Tensor | number): Tensor => (typeof x === 'number' ? Tensor.scalar(x) : x);

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  const out = Tensor.empty(shape);
  backendFor('binary', ['f32']).binary(op, shape, a.data, a.offset, broadcastStrides(a, shape),
    b.data, b.offset, broadcastStrides(b, shape), out.data);
  return out;
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, b);
  const out = binaryForward('add', a, b);
  return record(out, 'add', [a, b], (g) => [a.requiresGrad ? sumTo(g, a.shape) : null, b.requiresGrad ? sumTo(g, b.shape) : null]);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  const out = binaryForward('sub', a, b);
  return record(out, 'sub', [a, b], (g) => [a.requiresGrad ? sumTo(g, a.shape) : null, b.requiresGrad ? sumTo(scale(g, -1), b.shape) : null]);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return scale(a, b);
  const out = binaryForward('mul', a, b);
  return record(out, 'mul', [a, b], (g) => [
    a.requiresGrad ? sumTo(binaryForward('mul', g, b), a.shape) : null,
    b.requiresGrad ? sumTo(binaryForward('mul', g, a), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return scale(a, 1 / b);
  const out = binaryForward('div', a, b);
  return record(out, 'div', [a, b], (g) => [
    a.requiresGrad ? sumTo(binaryForward('div', g, b), a.shape) : null,
    // d(a/b)/db = -a/b² = -out/b
    b.requiresGrad ? sumTo(scale(binaryForward('mul', g, binaryForward('div', out, b)), -1), b.shape) : null,
  ]);
}

/** Elementwise maximum; the gradient goes to `a` where a ≥ b, else to b. */
export function maximum(a: Tensor, b: Tensor | number): Tensor {
  const bt = asTensor(b);
  const out = binaryForward('max', a, bt);
  return record(out, 'maximum', [a, bt], (g) => {
    const gv = g.toArray();
    const av = expand(a, out.shape).toArray(); // a as broadcast to the output
    const ov = out.data;
    const ga = Tensor.empty(out.shape);
    const gb = Tensor.empty(out.shape);
    for (let i = 0; i < gv.length; i++) {
      if (av[i] === ov[i]) ga.data[i] = gv[i]!;
      else gb.data[i] = gv[i]!;
    }
    return [sumTo(ga, a.shape), sumTo(gb, bt.shape)];
  });
}

/** x · alpha + beta (scalars). */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const src = x.isContiguous() ? x : contiguousRaw(x);
  const out = Tensor.empty(x.shape);
  backendFor('affine', ['f32']).affine(x.size, src.data, src.offset, alpha, beta, out.data);
  return record(out, 'affine', [x], (g) => [alpha === 1 ? g : scale(g, alpha)]);
}

export function scale(x: Tensor, alpha: number): Tensor {
  return affine(x, alpha, 0);
}

function contiguousRaw(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  backendFor('copyStrided', ['f32']).copyStrided(x.shape, x.data, x.offset, x.strides, out.data, 0);
  return out;
}

/** Apply a unary map; backward through the backend's derivative of the same map. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  const src = x.isContiguous() ? x : contiguousRaw(x);
  const out = Tensor.empty(x.shape);
  backendFor('unary', ['f32']).unary(op, x.size, src.data, src.offset, out.data);
  return record(out, op, [x], (g) => {
    const gc = g.isContiguous() ? g : contiguousRaw(g);
    const dx = Tensor.empty(x.shape);
    const dy = gc.offset === 0 ? gc.data : gc.data.subarray(gc.offset);
    backendFor('unary', ['f32']).unaryBackward(op, x.size, src.data, src.offset, dy, dx.data);
    return [dx];
  });
}

export const neg = (x: Tensor): Tensor => scale(x, -1);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const square = (x: Tensor): Tensor => unary('square', x);
/** GELU with the exact erf form (PyTorch default, SigLIP). */
export const gelu = (x: Tensor): Tensor => unary('gelu_erf', x);
/** GELU, tanh approximation (llama.cpp's ggml_gelu). */
export const geluTanh = (x: Tensor): Tensor => unary('gelu_tanh', x);
/** x·sigmoid(1.702x) (OpenAI CLIP). */
export const quickGelu = (x: Tensor): Tensor => unary('quick_gelu', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
