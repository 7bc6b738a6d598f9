/** Reference elementwise, reduction and layout kernels. */
import type { BinaryOp, ReduceOp, UnaryOp } from '../../tensor/kernels.ts';

type F32 = Float32Array;

const SQRT_2_OVER_PI = 0.7978845608028654;
const GELU_COEF_A = 0.044715;

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev), enough for f32. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function unaryScalar(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg': return -x;
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'sqrt': return Math.sqrt(x);
    case 'rsqrt': return 1 / Math.sqrt(x);
    case 'tanh': return Math.tanh(x);
    case 'abs': return Math.abs(x);
    case 'relu': return x > 0 ? x : 0;
    case 'sigmoid': return sigmoid(x);
    case 'gelu_erf': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh': return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x)));
    case 'quick_gelu': return x * sigmoid(1.702 * x);
    case 'silu': return x * sigmoid(x);
    case 'square': return x * x;
    case 'recip': return 1 / x;
  }
}

/** d op(x) / dx */
export function unaryDerivative(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg': return -1;
    case 'exp': return Math.exp(x);
    case 'log': return 1 / x;
    case 'sqrt': return 0.5 / Math.sqrt(x);
    case 'rsqrt': return -0.5 / (x * Math.sqrt(x));
    case 'tanh': { const t = Math.tanh(x); return 1 - t * t; }
    case 'abs': return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'relu': return x > 0 ? 1 : 0;
    case 'sigmoid': { const s = sigmoid(x); return s * (1 - s); }
    case 'gelu_erf': return 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case 'gelu_tanh': {
      const u = SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_COEF_A * x * x);
    }
    case 'quick_gelu': { const s = sigmoid(1.702 * x); return s + 1.702 * x * s * (1 - s); }
    case 'silu': { const s = sigmoid(x); return s * (1 + x * (1 - s)); }
    case 'square': return 2 * x;
    case 'recip': return -1 / (x * x);
  }
}

export function binaryScalar(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return a / b;
    case 'max': return a >= b ? a : b;
    case 'min': return a <= b ? a : b;
  }
}

export function binary(op: BinaryOp, shape: readonly number[], a: F32, aOff: number, aStrides: readonly number[],
  b: F32, bOff: number, bStrides: readonly number[], out: F32): void {
  const nd = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  // walk all dims but the last with an index vector; the innermost loop is flat
  const inner = nd ? shape[nd - 1]! : 1;
  const as = nd ? aStrides[nd - 1]! : 0;
  const bs = nd ? bStrides[nd - 1]! : 0;
  const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
  let ao = aOff;
  let bo = bOff;
  for (let o = 0; o < n; o += inner) {
    for (let i = 0; i < inner; i++) out[o + i] = binaryScalar(op, a[ao + i * as]!, b[bo + i * bs]!);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      ao += aStrides[d]!;
      bo += bStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      ao -= aStrides[d]! * shape[d]!;
      bo -= bStrides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export function copyStrided(shape: readonly number[], x: F32, xOff: number, strides: readonly number[], out: F32, outOff: number): void {
  const nd = shape.length;
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const inner = nd ? shape[nd - 1]! : 1;
  const s = nd ? strides[nd - 1]! : 0;
  const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
  let xo = xOff;
  for (let o = 0; o < n; o += inner) {
    if (s === 1) out.set(x.subarray(xo, xo + inner), outOff + o);
    else for (let i = 0; i < inner; i++) out[outOff + o + i] = x[xo + i * s]!;
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      xo += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      xo -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export function reduce(op: ReduceOp, outer: number, dim: number, inner: number, x: F32, xOff: number, out: F32): void {
  for (let o = 0; o < outer; o++) {
    const base = xOff + o * dim * inner;
    for (let i = 0; i < inner; i++) {
      let acc = op === 'sum' ? 0 : -Infinity;
      for (let d = 0; d < dim; d++) {
        const v = x[base + d * inner + i]!;
        acc = op === 'sum' ? acc + v : v > acc ? v : acc;
      }
      out[o * inner + i] = acc;
    }
  }
}
