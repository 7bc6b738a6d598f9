/**
 * Matrix products. `matmul` is batched with broadcasting over leading dims and takes transposed views
 * without copying (a transposed operand is passed to the kernel as such). `linear` multiplies by a weight
 * stored as (N, K) rows — the layout of PyTorch's nn.Linear and of GGUF — in any weight dtype.
 */
import { ShapeError } from '../../errors.ts';
import { backendFor, type MatmulParams } from '../kernels.ts';
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

/** Describe the last two dims of `t` (already expanded to the batch shape) for the kernel, copying only if needed. */
function operand(t: Tensor, batchShape: Shape): Operand {
  const nd = t.ndim;
  const e = expand(t, [...batchShape, t.shape[nd - 2]!, t.shape[nd - 1]!]);
  const rows = e.shape[e.ndim - 2]!;
  const cols = e.shape[e.ndim - 1]!;
  const sr = e.strides[e.ndim - 2]!;
  const sc = e.strides[e.ndim - 1]!;
  // batch dims must collapse to one stride (or all broadcast)
  const bs = e.strides.slice(0, e.ndim - 2);
  const bshape = e.shape.slice(0, e.ndim - 2);
  let batchStride = 0;
  let ok = true;
  let expected = -1;
  for (let i = bs.length - 1; i >= 0; i--) {
    if (bshape[i] === 1) continue;
    if (expected === -1) {
      batchStride = bs[i]!;
      expected = bs[i]! * bshape[i]!;
    } else if (bs[i] !== expected) ok = false;
    else expected *= bshape[i]!;
  }
  if (ok && batchStride === 0 && bs.some((s, i) => s !== 0 && bshape[i] !== 1)) ok = false;
  if (ok && (sc === 1 || cols === 1) && sr >= cols) return { t: e, trans: false, ld: Math.max(sr, cols), batchStride };
  if (ok && (sr === 1 || rows === 1) && sc >= rows) return { t: e, trans: true, ld: Math.max(sc, rows), batchStride };
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
  const A = operand(a, batchShape);
  const B = operand(b, batchShape);
  const out = Tensor.empty([...batchShape, M, N]);
  const p: MatmulParams = {
    batch, M, N, K,
    a: A.t.data, aOff: A.t.offset, transA: A.trans, lda: A.ld, strideA: A.batchStride,
    b: B.t.data, bType: 'f32', bOff: B.t.offset, transB: B.trans, ldb: B.ld, strideB: B.batchStride,
    c: out.data, cOff: 0, ldc: N, strideC: M * N, accumulate: false,
  };
  if (M * N * batch > 0) backendFor('matmul', ['f32', 'f32']).matmul(p);
  return out;
}

/**
 * a (..., M, K) · b (..., K, N) → (..., M, N), broadcasting leading dims.
 * @example matmul(Tensor.from([[1, 2]]), Tensor.from([[3], [4]])).item() // 11
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = matmulRaw(a, b);
  return record(out, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(matmulRaw(g, transpose(b)), a.shape) : null,
    b.requiresGrad ? sumTo(matmulRaw(transpose(a), g), b.shape) : null,
  ]);
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
