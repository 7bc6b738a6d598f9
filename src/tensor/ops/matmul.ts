/**
 * Matrix products. `matmul` is batched with broadcasting over leading dims and takes transposed views
 * without copying (a transposed operand is passed to the kernel as such). `linear` multiplies by a weight
 * stored as (N, K) rows — the layout of PyTorch's nn.Linear and of GGUF — in any weight dtype.
 */
import { ShapeError } from '../../errors.ts';
import { backendFor, type Backend } from '../kernels.ts';
import { record } from '../autograd.ts';
import { Tensor, noGrad, numel, type Shape } from '../tensor.ts';
import { broadcastShape } from './elementwise.ts';
import { add } from './elementwise.ts';
import { contiguous, expand, reshape, sumTo, transpose } from './view.ts';
import { dequantize } from '../quant.ts';

interface Operand {
  t: Tensor;
  trans: boolean;
  ld: number;
  batchStride: number;
}

interface Layout {
  trans: boolean;
  ld: number;
}

/** Kernel layout of the last two dims of `e` (row-major or transposed), or null if neither. */
function layout(e: Tensor): Layout | null {
  const rows = e.shape[e.ndim - 2]!;
  const cols = e.shape[e.ndim - 1]!;
  const sr = e.strides[e.ndim - 2]!;
  const sc = e.strides[e.ndim - 1]!;
  if ((sc === 1 || cols === 1) && sr >= cols) return { trans: false, ld: Math.max(sr, cols) };
  if ((sr === 1 || rows === 1) && sc >= rows) return { trans: true, ld: Math.max(sc, rows) };
  return null;
}

/** The one element stride of `e`'s batch dims (first `nb` dims), or null when they do not collapse to one. */
function batchStride(e: Tensor, nb: number): number | null {
  let stride = 0;
  let expected = -1;
  for (let i = nb - 1; i >= 0; i--) {
    if (e.shape[i] === 1) continue;
    const st = e.strides[i]!;
    if (expected === -1) {
      stride = st;
      expected = st * e.shape[i]!;
    } else if (st !== expected) return null;
    else expected *= e.shape[i]!;
  }
  // all-broadcast batch (stride 0) only if every batch dim broadcasts
  if (stride === 0 && e.strides.slice(0, nb).some((st, i) => st !== 0 && e.shape[i] !== 1)) return null;
  return stride;
}

/** The kernel's view of one operand: its layout and batch stride as they are, or a contiguous copy. */
function operand(e: Tensor, l: Layout | null, bs: number | null): Operand {
  if (l && bs !== null) return { t: e, trans: l.trans, ld: l.ld, batchStride: bs };
  const rows = e.shape[e.ndim - 2]!;
  const cols = e.shape[e.ndim - 1]!;
  const c = contiguous(e);
  return { t: c, trans: false, ld: cols, batchStride: rows * cols };
}

function matmulRaw(a: Tensor, b: Tensor): Tensor {
  return noGrad(() => matmulNoGrad(a, b));
}

function matmulNoGrad(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError(`matmul needs ≥ 2-d operands, got [${a.shape}] and [${b.shape}]`);
  const M = a.shape[a.ndim - 2]!;
  const K = a.shape[a.ndim - 1]!;
  const K2 = b.shape[b.ndim - 2]!;
  const N = b.shape[b.ndim - 1]!;
  if (K !== K2) throw new ShapeError(`matmul [${a.shape.join(', ')}] × [${b.shape.join(', ')}]: inner dims ${K} ≠ ${K2}`);
  const batchShape = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = numel(batchShape);
  const out = Tensor.empty([...batchShape, M, N]);
  if (M * N * batch === 0) return out;
  const kern = backendFor('matmul', ['f32', 'f32']);
  const nb = batchShape.length;
  // operands expanded to the batch shape, described once
  const ea = expand(a, [...batchShape, M, K]);
  const eb = expand(b, [...batchShape, K, N]);
  const la = layout(ea), lb = layout(eb);
  const sa = batchStride(ea, nb), sb = batchStride(eb, nb);
  if (nb >= 2 && (sa === null || sb === null) && la && lb) {
    splitBatch(kern, ea, eb, la, lb, out, batchShape, M, N, K);
    return out;
  }
  const A = operand(ea, la, sa);
  const B = operand(eb, lb, sb);
  kern.matmul({
    batch, M, N, K,
    a: A.t.data, aOff: A.t.offset, transA: A.trans, lda: A.ld, strideA: A.batchStride,
    b: B.t.data, bType: 'f32', bOff: B.t.offset, transB: B.trans, ldb: B.ld, strideB: B.batchStride,
    c: out.data, cOff: 0, ldc: N, strideC: M * N, accumulate: false,
  });
  return out;
}

/**
 * Batch dims that do not collapse to one stride (heads of a (B, T, H, D) tensor viewed as (B, H, T, D)):
 * one kernel call per index of the outer batch dims, batched over the last one, instead of copying the
 * operands `ea`, `eb` (expanded to the batch shape; la, lb their layouts).
 */
function splitBatch(kern: Backend, ea: Tensor, eb: Tensor, la: Layout,
  lb: Layout, out: Tensor, batchShape: Shape, M: number, N: number, K: number): void {
  const nb = batchShape.length;
  const inner = batchShape[nb - 1]!;
  const outer = numel(batchShape.slice(0, -1));
  const idx = new Array<number>(nb - 1).fill(0);
  for (let o = 0; o < outer; o++) {
    let offA = ea.offset, offB = eb.offset;
    for (let d = 0; d < nb - 1; d++) {
      offA += idx[d]! * ea.strides[d]!;
      offB += idx[d]! * eb.strides[d]!;
    }
    kern.matmul({
      batch: inner, M, N, K,
      a: ea.data, aOff: offA, transA: la.trans, lda: la.ld, strideA: ea.strides[nb - 1]!,
      b: eb.data, bType: 'f32', bOff: offB, transB: lb.trans, ldb: lb.ld, strideB: eb.strides[nb - 1]!,
      c: out.data, cOff: o * inner * M * N, ldc: N, strideC: M * N, accumulate: false,
    });
    for (let d = nb - 2; d >= 0; d--) {
      if (++idx[d]! < batchShape[d]!) break;
      idx[d] = 0;
    }
  }
}

/**
 * a (..., M, K) · b (..., K, N) → (..., M, N), broadcasting leading dims.
 * @example matmul(Tensor.from([[1, 2]]), Tensor.from([[3], [4]])).item() // 11
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = matmulRaw(a, b);
  return record(out, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(matmulRaw(g, transpose(b)), a.shape) : null,
    b.requiresGrad ? gradB(a, b, g) : null,
  ]);
}

/**
 * d(a·b)/db = aᵀ·g. When b is a transposed view of a contiguous (N, K) matrix (linear's wᵀ) the product
 * is computed as (gᵀ·a)ᵀ, so the gradient arrives in w's own layout instead of being copied out of a
 * transposed one on its way to w.grad.
 */
function gradB(a: Tensor, b: Tensor, g: Tensor): Tensor {
  if (a.ndim === 2 && b.ndim === 2 && b.shape[0]! > 1 && b.strides[0] === 1 && b.strides[1] === b.shape[0])
    return transpose(matmulRaw(transpose(g), a)); // (K, N) view of a contiguous (N, K)
  return sumTo(matmulRaw(transpose(a), g), b.shape);
}

/**
 * x (..., K) · wᵀ (+ bias) where w is (N, K) in any weight dtype (f32 or GGUF-quantized rows).
 * @example linear(x, w) // x (B, T, K), w (N, K) → (B, T, N)
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  if (w.ndim !== 2) throw new ShapeError(`linear weight must be (N, K), got [${w.shape}]`);
  const [N, K] = w.shape as [number, number];
  if (x.shape[x.ndim - 1] !== K) throw new ShapeError(`linear: input [${x.shape.join(', ')}] × weight [${N}, ${K}]`);
  let y: Tensor;
  if (w.dtype === 'f32') {
    // one (rows × K)·(K × N) product, not a batch of per-sample products sharing W: W's panels are packed
    // once, and W's gradient is a single product over all rows instead of a batch reduced afterwards
    y = x.ndim === 2 ? matmul(x, transpose(w)) : reshape(matmul(reshape(x, [-1, K]), transpose(w)), [...x.shape.slice(0, -1), N]);
  }
  else {
    const x2 = contiguous(reshape(x, [-1, K]));
    const rows = x2.shape[0]!;
    const out = Tensor.empty([rows, N]);
    if (rows > 0)
      backendFor('matmul', ['f32', w.dtype]).matmul({
        batch: 1, M: rows, N, K,
        a: x2.data, aOff: x2.offset, transA: false, lda: K, strideA: 0,
        b: w.storage.bytes, bType: w.dtype, bOff: w.offset, transB: true, ldb: K, strideB: 0,
        c: out.data, cOff: 0, ldc: N, strideC: 0, accumulate: false,
      });
    // frozen quantized weight: gradient flows to x only (through the dequantized weight)
    record(out, 'linear_q', [x2], (g) => [matmulRaw(g, dequantize(w))]);
    y = reshape(out, [...x.shape.slice(0, -1), N]);
  }
  return bias ? add(y, bias) : y;
}
