/**
 * Fat neural-network ops — softmax, losses, norms, RoPE, attention, embedding — each a single backend
 * kernel forward and a single kernel backward, as ggml does, so a fast backend speeds up whole layers.
 */
import { ShapeError } from '../../errors.ts';
import { backendFor } from '../kernels.ts';
import { record } from '../autograd.ts';
import { Tensor, isGradEnabled, numel } from '../tensor.ts';
import { keep } from '../storage.ts';
import { contiguous, reshape, permute } from './view.ts';
import { matmul } from './matmul.ts';
import { add, mul } from './elementwise.ts';

function rowsCols(x: Tensor): [number, number] {
  const cols = x.shape[x.ndim - 1] ?? 1;
  return [cols === 0 ? 0 : x.size / cols, cols];
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  const xc = contiguous(x);
  const [rows, cols] = rowsCols(xc);
  const out = Tensor.empty(x.shape);
  backendFor('softmax', ['f32']).softmax(rows, cols, xc.data, xc.offset, out.data);
  return record(out, 'softmax', [xc], (g) => {
    const gc = contiguous(g);
    const dx = Tensor.empty(x.shape);
    backendFor('softmaxBackward', ['f32']).softmaxBackward(rows, cols, out.data, view(gc), dx.data);
    return [dx];
  });
}

/** log(softmax(x)) over the last axis, computed stably. */
export function logSoftmax(x: Tensor): Tensor {
  const xc = contiguous(x);
  const [rows, cols] = rowsCols(xc);
  const out = Tensor.empty(x.shape);
  backendFor('logSoftmax', ['f32']).logSoftmax(rows, cols, xc.data, xc.offset, out.data);
  return record(out, 'log_softmax', [xc], (g) => {
    const gc = contiguous(g);
    const dx = Tensor.empty(x.shape);
    backendFor('logSoftmaxBackward', ['f32']).logSoftmaxBackward(rows, cols, out.data, view(gc), dx.data);
    return [dx];
  });
}

/** The f32 data of a contiguous tensor starting at its first element. */
function view(t: Tensor): Float32Array {
  return t.offset === 0 ? t.data : t.data.subarray(t.offset, t.offset + t.size);
}

/**
 * Mean cross-entropy of logits (..., V) against integer targets (one per row); rows whose target is
 * `ignoreIndex` are excluded from the loss and the mean. With `weights` (one per row) it is the weighted
 * mean Σ w·loss / Σ w over the rows not ignored.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array | readonly number[], ignoreIndex = -100,
  weights: Float32Array | null = null): Tensor {
  const xc = contiguous(logits);
  const [rows, cols] = rowsCols(xc);
  const tg = targets instanceof Int32Array ? targets : Int32Array.from(targets);
  if (tg.length !== rows) throw new ShapeError(`crossEntropy: ${tg.length} targets for ${rows} rows`);
  if (weights && weights.length !== rows) throw new ShapeError(`crossEntropy: ${weights.length} weights for ${rows} rows`);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = tg[r]!;
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= cols) throw new ShapeError(`crossEntropy: target ${t} outside [0, ${cols})`);
    const w = weights ? weights[r]! : 1;
    if (!(w >= 0) || !Number.isFinite(w)) throw new ShapeError(`crossEntropy: weight ${w} of row ${r} is not a finite number ≥ 0`);
    count += w;
  }
  const loss = new Float32Array(rows);
  const needGrad = xc.requiresGrad;
  const dlogits = needGrad ? Tensor.empty(xc.shape) : null;
  backendFor('crossEntropy', ['f32']).crossEntropy(rows, cols, xc.data, xc.offset, tg, ignoreIndex, loss, dlogits ? dlogits.data : null);
  let total = 0;
  for (let r = 0; r < rows; r++) total += weights && tg[r] !== ignoreIndex ? weights[r]! * loss[r]! : loss[r]!;
  const out = Tensor.scalar(count ? total / count : 0);
  return record(out, 'cross_entropy', [xc], (g) => {
    const s = count ? g.item() / count : 0;
    const dx = Tensor.empty(xc.shape);
    if (!weights) backendFor('affine', ['f32']).affine(dx.size, dlogits!.data, 0, s, 0, dx.data);
    else {
      // one pass: each row's gradient scaled by s·w (an ignored row's gradient is zero either way)
      const d = dlogits!.data;
      for (let r = 0; r < rows; r++) {
        const f = tg[r] === ignoreIndex ? 0 : s * weights[r]!;
        for (let c = r * cols, e = c + cols; c < e; c++) dx.data[c] = d[c]! * f;
      }
    }
    return [dx];
  });
}

/** LayerNorm over the last axis with optional affine weight and bias. */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps = 1e-5): Tensor {
  const xc = contiguous(x);
  const [rows, cols] = rowsCols(xc);
  const out = Tensor.empty(x.shape);
  const meanB = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  const wc = w ? contiguous(w) : null;
  const bc = b ? contiguous(b) : null;
  backendFor('layerNorm', ['f32']).layerNorm(rows, cols, xc.data, xc.offset, wc ? view(wc) : null, bc ? view(bc) : null, eps, out.data, meanB, rstd);
  const parents = [xc, ...(wc ? [wc] : []), ...(bc ? [bc] : [])];
  return record(out, 'layer_norm', parents, (g) => {
    const gc = contiguous(g);
    const dx = Tensor.empty(x.shape);
    const dw = wc?.requiresGrad ? Tensor.zeros(wc.shape) : null;
    const db = bc?.requiresGrad ? Tensor.zeros(bc.shape) : null;
    backendFor('layerNormBackward', ['f32']).layerNormBackward(rows, cols, view(xc), wc ? view(wc) : null, meanB, rstd,
      view(gc), dx.data, dw ? dw.data : null, db ? db.data : null);
    return [dx, ...(wc ? [dw] : []), ...(bc ? [db] : [])];
  });
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w. */
export function rmsNorm(x: Tensor, w: Tensor | null, eps = 1e-5): Tensor {
  const xc = contiguous(x);
  const [rows, cols] = rowsCols(xc);
  const out = Tensor.empty(x.shape);
  const rstd = new Float32Array(rows);
  const wc = w ? contiguous(w) : null;
  backendFor('rmsNorm', ['f32']).rmsNorm(rows, cols, xc.data, xc.offset, wc ? view(wc) : null, eps, out.data, rstd);
  return record(out, 'rms_norm', wc ? [xc, wc] : [xc], (g) => {
    const gc = contiguous(g);
    const dx = Tensor.empty(x.shape);
    const dw = wc?.requiresGrad ? Tensor.zeros(wc.shape) : null;
    backendFor('rmsNormBackward', ['f32']).rmsNormBackward(rows, cols, view(xc), wc ? view(wc) : null, rstd, view(gc), dx.data, dw ? dw.data : null);
    return wc ? [dx, dw] : [dx];
  });
}

export interface RopeOptions {
  /** 'norm': rotate adjacent pairs (llama.cpp `llama`); 'neox': rotate halves (GPT-NeoX, gemma3) */
  mode: 'norm' | 'neox';
  base: number;
  /** rotated dims per head (default: all) */
  nRot?: number;
  /** position of the first token (when `positions` is not given) */
  pos0?: number;
  /** explicit positions, one per (batch, token) */
  positions?: Int32Array;
}

/** Rotary position embedding on x (B, T, H, D). */
export function rope(x: Tensor, opts: RopeOptions): Tensor {
  if (x.ndim !== 4) throw new ShapeError(`rope expects (B, T, H, D), got [${x.shape}]`);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  const nRot = opts.nRot ?? D;
  if (nRot % 2 || nRot > D) throw new ShapeError(`rope: nRot ${nRot} must be even and ≤ head dim ${D}`);
  const xc = contiguous(x);
  const out = Tensor.empty(x.shape);
  const pos = opts.positions ?? null;
  if (pos && pos.length !== B * T) throw new ShapeError(`rope: ${pos.length} positions for ${B}×${T} tokens`);
  const k = backendFor('rope', ['f32']);
  k.rope(B, T, H, D, nRot, xc.data, xc.offset, out.data, pos, opts.pos0 ?? 0, opts.base, opts.mode, false);
  return record(out, 'rope', [xc], (g) => {
    const gc = contiguous(g);
    const dx = Tensor.empty(x.shape);
    k.rope(B, T, H, D, nRot, gc.data, gc.offset, dx.data, pos, opts.pos0 ?? 0, opts.base, opts.mode, true);
    return [dx];
  });
}

export interface AttentionOptions {
  causal: boolean;
  /** absolute position of the first query (KV-cache decoding); keys start at 0 */
  qPos0?: number;
  /** (B, Tk) 1 = padding (masked out) */
  keyMask?: Uint8Array | null;
  scale?: number;
}

/**
 * Scaled dot-product attention. q (B, H, Tq, D), k/v (B, Hkv, Tk, D) with H a multiple of Hkv (GQA);
 * returns (B, Tq, H, D). Without gradients it runs the fused kernel (online softmax, no T×T matrix kept);
 * with gradients it composes matmul/softmax so the backward pass has the probabilities it needs.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const [B, H, Tq, D] = q.shape as [number, number, number, number];
  const [B2, Hkv, Tk, D2] = k.shape as [number, number, number, number];
  if (q.ndim !== 4 || k.ndim !== 4 || B !== B2 || D !== D2 || H % Hkv !== 0 || v.shape.join() !== k.shape.join())
    throw new ShapeError(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const qPos0 = opts.qPos0 ?? (opts.causal ? Tk - Tq : 0);
  const needGrad = q.requiresGrad || k.requiresGrad || v.requiresGrad;
  if (!needGrad || !isGradEnabled()) {
    const inner = (t: Tensor) => (t.strides[3] === 1 ? t : contiguous(t));
    const qc = inner(q), kc = inner(k), vc = inner(v);
    const out = Tensor.empty([B, Tq, H, D]);
    backendFor('attention', ['f32']).attention({
      B, H, Hkv, Tq, Tk, D,
      q: qc.data, qOff: qc.offset, qStrides: [qc.strides[0]!, qc.strides[1]!, qc.strides[2]!],
      k: kc.data, kOff: kc.offset, kStrides: [kc.strides[0]!, kc.strides[1]!, kc.strides[2]!],
      v: vc.data, vOff: vc.offset, vStrides: [vc.strides[0]!, vc.strides[1]!, vc.strides[2]!],
      out: out.data, scale, causal: opts.causal, qPos0, keyMask: opts.keyMask ?? null,
    });
    return out;
  }
  // differentiable path: GQA by viewing q as (B, Hkv, group·Tq, D); the scale goes on q (T·D values)
  // rather than on the scores (T·T values)
  const group = H / Hkv;
  const qg = reshape(mul(q, scale), [B, Hkv, group * Tq, D]);
  let s = matmul(qg, permute(k, [0, 1, 3, 2])); // (B, Hkv, group·Tq, Tk)
  const bias = maskBias(B, Tq, Tk, group, opts.causal, qPos0, opts.keyMask ?? null);
  if (bias) s = add(s, bias);
  const p = softmax(s);
  const o = matmul(p, v); // (B, Hkv, group·Tq, D)
  return permute(reshape(o, [B, H, Tq, D]), [0, 2, 1, 3]); // (B, Tq, H, D)
}

// causal masks depend only on their shape: build each once (kept out of tidy scopes)
const causalMasks = new Map<string, Tensor>();

/** Additive mask (B, 1, group·Tq, Tk) with -inf where attention is not allowed, or null if none. */
function maskBias(B: number, Tq: number, Tk: number, group: number, causal: boolean, qPos0: number,
  keyMask: Uint8Array | null): Tensor | null {
  if (!causal && !keyMask) return null;
  const key = `${Tq},${Tk},${group},${qPos0}`;
  if (!keyMask) {
    const hit = causalMasks.get(key);
    if (hit && !hit.storage.freed) return hit;
  }
  const m = Tensor.zeros([keyMask ? B : 1, 1, group * Tq, Tk]);
  const d = m.data;
  const nb = keyMask ? B : 1;
  for (let b = 0; b < nb; b++)
    for (let r = 0; r < group * Tq; r++) {
      const i = r % Tq;
      for (let j = 0; j < Tk; j++) {
        const blocked = (causal && j > qPos0 + i) || (keyMask !== null && keyMask[b * Tk + j] !== 0);
        if (blocked) d[(b * group * Tq + r) * Tk + j] = -Infinity;
      }
    }
  if (!keyMask) {
    if (causalMasks.size > 64) {
      for (const t of causalMasks.values()) t.dispose();
      causalMasks.clear();
    }
    causalMasks.set(key, keep(m));
  }
  return m;
}

/** Rows of `table` (V, C) for integer ids → (...ids shape, C). Gradient scatter-adds into the table. */
export function embedding(table: Tensor, ids: Int32Array | readonly number[], shape?: readonly number[]): Tensor {
  const [V, C] = table.shape as [number, number];
  const idx = ids instanceof Int32Array ? ids : Int32Array.from(ids);
  for (const i of idx) if (i < 0 || i >= V) throw new ShapeError(`embedding: id ${i} outside [0, ${V})`);
  const outShape = [...(shape ?? [idx.length]), C];
  if (numel(outShape) !== idx.length * C) throw new ShapeError(`embedding: shape [${shape}] for ${idx.length} ids`);
  const t = table.dtype === 'f32' ? contiguous(table) : table;
  const out = Tensor.empty(outShape);
  const src = t.dtype === 'f32' ? (t.offset ? t.data.subarray(t.offset) : t.data) : t.bytes;
  backendFor('embedding', [t.dtype]).embedding(idx.length, C, src, t.dtype, idx, out.data);
  return record(out, 'embedding', [t], (g) => {
    const gc = contiguous(g);
    const dt = Tensor.zeros(table.shape);
    backendFor('embeddingBackward', ['f32']).embeddingBackward(idx.length, C, idx, view(gc), dt.data);
    return [dt];
  });
}
