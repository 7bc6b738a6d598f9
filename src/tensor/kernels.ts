/**
 * The narrow backend interface: a set of *fat* kernels over flat typed arrays (offsets in elements for
 * f32 arrays, in bytes for quantized weight bytes), in the spirit of ggml's backend ops. The tensor layer
 * defines it and the ops call it; `src/backend/` implements it (`ref` = plain TypeScript, the spec;
 * `wasm` = SIMD kernels on a worker pool). A backend that does not `supports()` a kernel for some dtypes
 * falls back to `ref` for that call.
 *
 * Conventions: unless a parameter says otherwise, arrays are contiguous row-major and outputs are
 * written (not accumulated). Kernels never allocate tensors; scratch they need is theirs.
 */
import type { DType } from './dtype.ts';
import type { Allocator } from './storage.ts';

export type F32 = Float32Array;

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';
export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'abs' | 'relu' | 'sigmoid'
  | 'gelu_erf' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'square' | 'recip';
export type ReduceOp = 'sum' | 'max';

export interface MatmulParams {
  /** C[b] (M×N) (+)= A[b] (M×K) · B[b] (K×N) */
  batch: number;
  M: number;
  N: number;
  K: number;
  a: F32;
  aOff: number;
  /** A stored as (K×M) when true: element (m,k) at aOff + k*lda + m; else at aOff + m*lda + k */
  transA: boolean;
  lda: number;
  /** per-batch element stride of A (0 broadcasts one A over the batch) */
  strideA: number;
  /** f32 Float32Array, or a Uint8Array of weight bytes for every other dtype */
  b: F32 | Uint8Array;
  bType: DType;
  /** elements for f32, bytes for quantized B */
  bOff: number;
  /** B stored as (N×K) when true: element (k,n) at bOff + n*ldb + k. Quantized B requires transB, ldb = K. */
  transB: boolean;
  ldb: number;
  strideB: number;
  c: F32;
  cOff: number;
  ldc: number;
  strideC: number;
  /** C += A·B instead of C = A·B */
  accumulate: boolean;
}

export interface AttentionParams {
  /** q (B, H, Tq, D), k/v (B, Hkv, Tk, D) given by element strides; out (B, Tq, H, D) contiguous */
  B: number;
  H: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  q: F32; qOff: number; qStrides: readonly [number, number, number]; // strides of (B, H, Tq); D contiguous
  k: F32; kOff: number; kStrides: readonly [number, number, number]; // (B, Hkv, Tk)
  v: F32; vOff: number; vStrides: readonly [number, number, number];
  out: F32;
  scale: number;
  /** causal: query i (absolute position qPos0 + i) sees keys j ≤ qPos0 + i */
  causal: boolean;
  qPos0: number;
  /** optional key padding mask (B, Tk): 0 = attend, anything else = masked out */
  keyMask: Uint8Array | null;
}

export interface Backend {
  readonly name: string;
  /** threads the backend's kernels use (1 for ref) */
  readonly threads: number;
  /** memory for tensors this backend computes on */
  readonly allocator: Allocator;
  supports(kernel: KernelName, dtypes: readonly DType[]): boolean;

  matmul(p: MatmulParams): void;
  /**
   * Several products sharing their A operand (same a, aOff, lda, transA, M, K; batch 1), each `matmul(p)`:
   * a backend may run them as one dispatch (decoding: Q/K/V, gate/up from one normed input).
   */
  matmulShared(ps: readonly MatmulParams[]): void;

  /**
   * out[i] = a[ia] op b[ib] over `shape`, with element strides for a and b (0 on broadcast dims);
   * out is contiguous with `shape`.
   */
  binary(op: BinaryOp, shape: readonly number[], a: F32, aOff: number, aStrides: readonly number[],
    b: F32, bOff: number, bStrides: readonly number[], out: F32): void;
  /** out[i] = op(x[i]) for i < n (contiguous) */
  unary(op: UnaryOp, n: number, x: F32, xOff: number, out: F32): void;
  /** dx[i] = dy[i] · op'(x[i]) for i < n (contiguous) */
  unaryBackward(op: UnaryOp, n: number, x: F32, xOff: number, dy: F32, dx: F32): void;
  /** SwiGLU: out[i] = silu(g[i]) · u[i] for i < n (contiguous) */
  swiglu(n: number, g: F32, gOff: number, u: F32, uOff: number, out: F32): void;
  /** out[i] = x[i] * alpha + beta */
  affine(n: number, x: F32, xOff: number, alpha: number, beta: number, out: F32): void;
  /** copy a strided view (shape, strides, offset) into a contiguous array */
  copyStrided(shape: readonly number[], x: F32, xOff: number, strides: readonly number[], out: F32, outOff: number): void;
  /** x viewed as (outer, dim, inner) contiguous → out (outer, inner) */
  reduce(op: ReduceOp, outer: number, dim: number, inner: number, x: F32, xOff: number, out: F32): void;

  /** row-wise over (rows, cols) */
  softmax(rows: number, cols: number, x: F32, xOff: number, out: F32): void;
  softmaxBackward(rows: number, cols: number, y: F32, dy: F32, dx: F32): void;
  logSoftmax(rows: number, cols: number, x: F32, xOff: number, out: F32): void;
  logSoftmaxBackward(rows: number, cols: number, y: F32, dy: F32, dx: F32): void;

  /** out = (x - mean)·rstd·w + b per row; writes mean and rstd (rows) for the backward pass. w, b may be null. */
  layerNorm(rows: number, cols: number, x: F32, xOff: number, w: F32 | null, b: F32 | null, eps: number,
    out: F32, mean: F32, rstd: F32): void;
  /** dx (written), dw/db (accumulated; may be null) */
  layerNormBackward(rows: number, cols: number, x: F32, w: F32 | null, mean: F32, rstd: F32, dy: F32,
    dx: F32, dw: F32 | null, db: F32 | null): void;
  /** out = x·rstd·w per row, rstd = 1/sqrt(mean(x²)+eps) */
  rmsNorm(rows: number, cols: number, x: F32, xOff: number, w: F32 | null, eps: number, out: F32, rstd: F32): void;
  rmsNormBackward(rows: number, cols: number, x: F32, w: F32 | null, rstd: F32, dy: F32, dx: F32, dw: F32 | null): void;

  /**
   * Rotary embedding on x (B, T, H, D) contiguous, position of token t = pos[b*T + t] (or pos0 + t when
   * `pos` is null). mode 'norm' rotates adjacent pairs (x[2i], x[2i+1]) as llama.cpp's `llama`;
   * 'neox' rotates (x[i], x[i + nRot/2]). Only the first nRot dims of each head rotate.
   * `inverse` rotates by -θ (the backward pass).
   */
  rope(B: number, T: number, H: number, D: number, nRot: number, x: F32, xOff: number, out: F32,
    pos: Int32Array | null, pos0: number, base: number, mode: 'norm' | 'neox', inverse: boolean): void;

  /** Fused attention forward (online softmax; the T×T matrix is never kept). */
  attention(p: AttentionParams): void;

  /**
   * Cross-entropy per row of logits (rows, cols) with integer targets; rows whose target equals
   * `ignoreIndex` contribute 0. Writes loss per row and, when dlogits is given, softmax - onehot
   * (0 rows for ignored targets).
   */
  crossEntropy(rows: number, cols: number, logits: F32, xOff: number, targets: Int32Array, ignoreIndex: number,
    loss: F32, dlogits: F32 | null): void;

  /** out[i, :] = table[ids[i], :] ; table may be any dtype (rows of `dim` elements) */
  embedding(n: number, dim: number, table: F32 | Uint8Array, tableType: DType, ids: Int32Array, out: F32): void;
  /** dtable[ids[i], :] += dy[i, :] */
  embeddingBackward(n: number, dim: number, ids: Int32Array, dy: F32, dtable: F32): void;

  /** AdamW step over n parameters, in place (decoupled weight decay) */
  adamw(n: number, p: F32, pOff: number, g: F32, gOff: number, m: F32, v: F32, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number): void;
}

export type KernelName = {
  [K in keyof Backend]: Backend[K] extends (...a: never[]) => unknown ? K : never;
}[keyof Backend] & string;

let active: Backend | null = null;
let reference: Backend | null = null;

/** Called by src/backend when a backend is selected; `ref` is the fallback for unsupported kernels. */
export function installBackend(b: Backend, ref: Backend): void {
  active = b;
  reference = ref;
}

export function backend(): Backend {
  if (!active) throw new Error('no backend: import "vista" or call initBackend() from src/backend first');
  return active;
}

/** The backend to run `kernel` on for these dtypes: the active one if it supports them, else `ref`. */
export function backendFor(kernel: KernelName, dtypes: readonly DType[]): Backend {
  const b = backend();
  if (b.supports(kernel, dtypes)) return b;
  return reference!;
}
