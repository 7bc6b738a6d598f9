/**
 * Non-matmul kernels of the wasm backend: row-wise softmax / norms (+ backward), fused attention,
 * AdamW and elementwise fast paths (contiguous or row-broadcast binary ops, common unary ops, affine).
 * Shapes or ops without a wasm path run the reference kernel (same semantics, same arrays).
 */
import type { AttentionParams, Backend, BinaryOp, F32, KernelName, UnaryOp } from '../../tensor/kernels.ts';
import { refBackend } from '../ref/index.ts';
import { K as KI, threadsFor, type Kernels } from './kernels.ts';

export const SUPPORTED = new Set<KernelName>([
  'binary', 'unary', 'unaryBackward', 'affine', 'softmax', 'softmaxBackward', 'logSoftmax', 'layerNorm', 'layerNormBackward',
  'rmsNorm', 'rmsNormBackward', 'attention', 'adamw', 'copyStrided', 'reduce', 'rope', 'crossEntropy', 'swiglu',
]);

const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 };
/** exact ops (one f32 rounding either way) run 4-wide in f32 */
const UNARY_SIMD: Partial<Record<UnaryOp, number>> = { neg: 0, sqrt: 2, abs: 3, relu: 4, square: 7, recip: 8 };
/** every op, in f64 with the reference's formulas (asm/unary.ts; gelu_tanh takes its tanh from e^x, as close) */
const UNARY_F64: Record<UnaryOp, number> = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, tanh: 5, abs: 6, relu: 7, sigmoid: 8, gelu_erf: 9, gelu_tanh: 10,
  quick_gelu: 11, silu: 12, square: 13, recip: 14,
};

/** derivatives with an f32x4 kernel (training only: the backward pass never feeds quantized inference) */
const UNARY_BWD_SIMD: Partial<Record<UnaryOp, number>> = { sigmoid: 8, gelu_erf: 9, gelu_tanh: 10, quick_gelu: 11, silu: 12 };

/** elementwise work below this runs on the calling thread only (dispatch costs more than it saves) */
const EW_PER_THREAD = 1 << 15;

/**
 * Collapse (shape, strides of a, strides of b) into ≤ 2 dims (rows, cols) where the last dim has
 * strides 0 or 1 for both operands; null when the layout does not reduce to that.
 */
function collapse(shape: readonly number[], sa: readonly number[], sb: readonly number[]):
  { rows: number; cols: number; ars: number; acs: number; brs: number; bcs: number } | null {
  const dims: [number, number, number][] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const d: [number, number, number] = [shape[i]!, sa[i]!, sb[i]!];
    const last = dims[dims.length - 1];
    if (last && last[1] === d[1] * d[0] && last[2] === d[2] * d[0]) {
      last[0] *= d[0];
      last[1] = d[1];
      last[2] = d[2];
    } else dims.push(d);
  }
  if (dims.length === 0) return { rows: 1, cols: 1, ars: 0, acs: 0, brs: 0, bcs: 0 };
  if (dims.length > 2) return null;
  const [cols, acs, bcs] = dims[dims.length - 1]!;
  if ((acs !== 0 && acs !== 1) || (bcs !== 0 && bcs !== 1)) return null;
  if (dims.length === 1) return { rows: 1, cols, ars: 0, acs, brs: 0, bcs };
  const [rows, ars, brs] = dims[0]!;
  return { rows, cols, ars, acs, brs, bcs };
}

export function ops(k: Kernels): Partial<Backend> {
  const st = k.stager;
  const run = (fn: number, args: number[], work: number, per = EW_PER_THREAD): void => {
    try {
      k.pool.run(fn, args, threadsFor(k, work, per));
    } finally {
      st.done();
    }
  };
  const ptr = (a: F32 | null, off: number, len: number): number => (a ? st.in(a, off, len) : 0);
  const out = (a: F32, len: number, read = false): number => st.out(a, 0, len, read);

  return {
    binary(op, shape, a, aOff, aStrides, b, bOff, bStrides, o): void {
      const c = collapse(shape, aStrides, bStrides);
      if (!c) return refBackend.binary(op, shape, a, aOff, aStrides, b, bOff, bStrides, o);
      const aLen = (c.rows - 1) * c.ars + (c.cols - 1) * c.acs + 1;
      const bLen = (c.rows - 1) * c.brs + (c.cols - 1) * c.bcs + 1;
      const n = c.rows * c.cols;
      if (n === 0) return;
      const pa = st.in(a, aOff, aLen), pb = st.in(b, bOff, bLen), po = out(o, n);
      run(KI.binary_rows, [BINARY[op], c.rows, c.cols, pa, c.ars, c.acs, pb, c.brs, c.bcs, po], c.rows > 1 ? n : 0);
    },
    unary(op, n, x, xOff, o): void {
      if (n < 8) return refBackend.unary(op, n, x, xOff, o);
      const id = UNARY_SIMD[op];
      if (id !== undefined) run(KI.unary_f32, [id, n, st.in(x, xOff, n), out(o, n)], n);
      else run(KI.unary_f64, [UNARY_F64[op], n, st.in(x, xOff, n), out(o, n)], n, 1 << 12);
    },
    unaryBackward(op, n, x, xOff, dy, dx): void {
      if (n < 8) return refBackend.unaryBackward(op, n, x, xOff, dy, dx);
      const id = UNARY_BWD_SIMD[op];
      if (id !== undefined) run(KI.unary_bwd_f32, [id, n, st.in(x, xOff, n), st.in(dy, 0, n), out(dx, n)], n);
      else run(KI.unary_bwd_f64, [UNARY_F64[op], n, st.in(x, xOff, n), st.in(dy, 0, n), out(dx, n)], n, 1 << 12);
    },
    swiglu(n, g, gOff, u, uOff, o): void {
      if (n < 8) return refBackend.swiglu(n, g, gOff, u, uOff, o);
      // silu as `unary` computes it (f64, as the reference: q8_0 activations downstream amplify any ulp),
      // then the product in place: two kernels, no intermediate tensor
      const pg = st.in(g, gOff, n), pu = st.in(u, uOff, n), po = out(o, n);
      try {
        k.pool.run(KI.unary_f64, [UNARY_F64.silu, n, pg, po], threadsFor(k, n, 1 << 10)); // ~15 ns an element
        k.pool.run(KI.binary_rows, [BINARY.mul, 1, n, po, 0, 1, pu, 0, 1, po], 1);
      } finally {
        st.done();
      }
    },
    affine(n, x, xOff, alpha, beta, o): void {
      if (n < 8) return refBackend.affine(n, x, xOff, alpha, beta, o);
      run(KI.affine_f32, [n, st.in(x, xOff, n), alpha, beta, out(o, n)], n);
    },
    softmax(rows, cols, x, xOff, o): void {
      run(KI.softmax_rows, [rows, cols, st.in(x, xOff, rows * cols), out(o, rows * cols), 0], rows * cols, 1 << 13);
    },
    logSoftmax(rows, cols, x, xOff, o): void {
      run(KI.softmax_rows, [rows, cols, st.in(x, xOff, rows * cols), out(o, rows * cols), 1], rows * cols, 1 << 13);
    },
    softmaxBackward(rows, cols, y, dy, dx): void {
      const n = rows * cols;
      run(KI.softmax_bwd_rows, [rows, cols, st.in(y, 0, n), st.in(dy, 0, n), out(dx, n)], n);
    },
    rmsNorm(rows, cols, x, xOff, w, eps, o, rstd): void {
      const n = rows * cols;
      run(KI.rmsnorm_rows, [rows, cols, st.in(x, xOff, n), ptr(w, 0, cols), eps, out(o, n), out(rstd, rows)], n, 1 << 14);
    },
    rmsNormBackward(rows, cols, x, w, rstd, dy, dx, dw): void {
      const n = rows * cols;
      const px = st.in(x, 0, n), pw = ptr(w, 0, cols), pr = st.in(rstd, 0, rows), pdy = st.in(dy, 0, n);
      try {
        k.pool.run(KI.rmsnorm_bwd_rows, [rows, cols, px, pw, pr, pdy, out(dx, n)], threadsFor(k, n, 1 << 14));
        if (dw) k.pool.run(KI.norm_param_grads, [rows, cols, px, 0, pr, pdy, out(dw, cols, true), 0], threadsFor(k, n, 1 << 15));
      } finally {
        st.done();
      }
    },
    layerNorm(rows, cols, x, xOff, w, b, eps, o, mean, rstd): void {
      const n = rows * cols;
      run(KI.layernorm_rows, [rows, cols, st.in(x, xOff, n), ptr(w, 0, cols), ptr(b, 0, cols), eps, out(o, n),
        out(mean, rows), out(rstd, rows)], n, 1 << 14);
    },
    layerNormBackward(rows, cols, x, w, mean, rstd, dy, dx, dw, db): void {
      const n = rows * cols;
      const px = st.in(x, 0, n), pw = ptr(w, 0, cols), pm = st.in(mean, 0, rows), pr = st.in(rstd, 0, rows), pdy = st.in(dy, 0, n);
      try {
        k.pool.run(KI.layernorm_bwd_rows, [rows, cols, px, pw, pm, pr, pdy, out(dx, n)], threadsFor(k, n, 1 << 14));
        if (dw || db)
          k.pool.run(KI.norm_param_grads, [rows, cols, px, pm, pr, pdy, dw ? out(dw, cols, true) : 0, db ? out(db, cols, true) : 0],
            threadsFor(k, n, 1 << 15));
      } finally {
        st.done();
      }
    },
    copyStrided(shape, x, xOff, strides, o, outOff): void {
      const n = shape.reduce((a, b) => a * b, 1);
      if (n < 64 || shape.length > 8 || !k.arena.owns(x.buffer) || !k.arena.owns(o.buffer))
        return refBackend.copyStrided(shape, x, xOff, strides, o, outOff);
      const desc = st.temp(64);
      const d = new Int32Array(k.arena.buffer, desc, 16);
      shape.forEach((v, i) => { d[i] = v; d[shape.length + i] = strides[i]!; });
      run(KI.copy_strided, [shape.length, desc, x.byteOffset + 4 * xOff, o.byteOffset + 4 * outOff], n);
    },
    reduce(op, outer, dim, inner, x, xOff, o): void {
      const n = outer * dim * inner;
      if (n < 64) return refBackend.reduce(op, outer, dim, inner, x, xOff, o);
      run(KI.reduce_dim, [op === 'sum' ? 0 : 1, outer, dim, inner, st.in(x, xOff, n), out(o, outer * inner)], n);
    },
    rope(B, T, H, D, nRot, x, xOff, o, pos, pos0, base, mode, inverse): void {
      const n = B * T * H * D;
      if (n === 0) return;
      const px = st.in(x, xOff, n);
      const pp = pos ? st.in(pos, 0, B * T) : 0;
      run(KI.rope_f32, [B, T, H, D, nRot, px, out(o, n), pp, pos0, base, mode === 'norm' ? 0 : 1, inverse ? 1 : 0], n, 1 << 13);
    },
    crossEntropy(rows, cols, logits, xOff, targets, ignoreIndex, loss, dlogits): void {
      const n = rows * cols;
      run(KI.cross_entropy, [rows, cols, st.in(logits, xOff, n), st.in(targets, 0, rows), ignoreIndex, out(loss, rows),
        dlogits ? out(dlogits, n) : 0], n, 1 << 13);
    },
    attention(p: AttentionParams): void {
      attention(k, p);
    },
    adamw(n, p, pOff, g, gOff, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
      const bc1 = 1 - Math.pow(beta1, step);
      const bc2 = 1 - Math.pow(beta2, step);
      run(KI.adamw_step, [n, st.out(p, pOff, n, true), st.in(g, gOff, n), out(m, n, true), out(v, n, true),
        lr, beta1, beta2, eps, weightDecay, bc1, bc2], n, 1 << 15);
    },
  };
}

function attention(k: Kernels, p: AttentionParams): void {
  const { B, H, Hkv, Tq, Tk, D } = p;
  if (B * H * Tq === 0) return;
  const st = k.stager;
  const ext = (s: readonly [number, number, number], heads: number, T: number) =>
    (B - 1) * s[0] + (heads - 1) * s[1] + (T - 1) * s[2] + D;
  try {
    const q = st.in(p.q, p.qOff, ext(p.qStrides, H, Tq));
    const kk = st.in(p.k, p.kOff, ext(p.kStrides, Hkv, Tk));
    const v = st.in(p.v, p.vOff, ext(p.vStrides, Hkv, Tk));
    const o = st.out(p.out, 0, B * Tq * H * D, false);
    const mask = p.keyMask ? st.in(p.keyMask, 0, B * Tk) : 0;
    const nth = threadsFor(k, B * H * Tq * Tk * D, 1 << 15);
    const s = st.scratch((64 + D) * 4 + 64, nth);
    k.pool.run(KI.attention_fwd, [B, H, Hkv, Tq, Tk, D, q, ...p.qStrides, kk, ...p.kStrides, v, ...p.vStrides, o,
      p.scale, p.causal ? 1 : 0, p.qPos0, mask, s.base, s.stride], nth);
  } finally {
    st.done();
  }
}
