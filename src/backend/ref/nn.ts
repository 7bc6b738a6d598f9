/** Reference kernels for the fat neural-network ops: softmax, norms, RoPE, attention, losses, optimiser. */
import type { AttentionParams } from '../../tensor/kernels.ts';
import type { DType } from '../../tensor/dtype.ts';
import { BLOCKS } from '../../tensor/dtype.ts';
import { dequantizeRow } from '../../tensor/quant.ts';

type F32 = Float32Array;

export function softmax(rows: number, cols: number, x: F32, xOff: number, out: F32): void {
  for (let r = 0; r < rows; r++) {
    const xo = xOff + r * cols;
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[xo + c]! > max) max = x[xo + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const e = max === -Infinity ? 0 : Math.exp(x[xo + c]! - max);
      out[o + c] = e;
      sum += e;
    }
    const inv = sum > 0 ? 1 / sum : 0;
    for (let c = 0; c < cols; c++) out[o + c]! *= inv;
  }
}

export function softmaxBackward(rows: number, cols: number, y: F32, dy: F32, dx: F32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += y[o + c]! * dy[o + c]!;
    for (let c = 0; c < cols; c++) dx[o + c] = y[o + c]! * (dy[o + c]! - dot);
  }
}

export function logSoftmax(rows: number, cols: number, x: F32, xOff: number, out: F32): void {
  for (let r = 0; r < rows; r++) {
    const xo = xOff + r * cols;
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[xo + c]! > max) max = x[xo + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[xo + c]! - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < cols; c++) out[o + c] = x[xo + c]! - lse;
  }
}

export function logSoftmaxBackward(rows: number, cols: number, y: F32, dy: F32, dx: F32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += dy[o + c]!;
    for (let c = 0; c < cols; c++) dx[o + c] = dy[o + c]! - Math.exp(y[o + c]!) * sum;
  }
}

export function layerNorm(rows: number, cols: number, x: F32, xOff: number, w: F32 | null, b: F32 | null, eps: number,
  out: F32, mean: F32, rstd: F32): void {
  for (let r = 0; r < rows; r++) {
    const xo = xOff + r * cols;
    let m = 0;
    for (let c = 0; c < cols; c++) m += x[xo + c]!;
    m /= cols;
    let v = 0;
    for (let c = 0; c < cols; c++) {
      const d = x[xo + c]! - m;
      v += d * d;
    }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = m;
    rstd[r] = rs;
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      let y = (x[xo + c]! - m) * rs;
      if (w) y *= w[c]!;
      if (b) y += b[c]!;
      out[o + c] = y;
    }
  }
}

export function layerNormBackward(rows: number, cols: number, x: F32, w: F32 | null, mean: F32, rstd: F32, dy: F32,
  dx: F32, dw: F32 | null, db: F32 | null): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const m = mean[r]!;
    const rs = rstd[r]!;
    // dxhat = dy·w ; dx = rs·(dxhat - mean(dxhat) - xhat·mean(dxhat·xhat))
    let sumD = 0;
    let sumDX = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c]! - m) * rs;
      const d = dy[o + c]! * (w ? w[c]! : 1);
      sumD += d;
      sumDX += d * xhat;
      if (dw) dw[c]! += dy[o + c]! * xhat;
      if (db) db[c]! += dy[o + c]!;
    }
    sumD /= cols;
    sumDX /= cols;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c]! - m) * rs;
      const d = dy[o + c]! * (w ? w[c]! : 1);
      dx[o + c] = rs * (d - sumD - xhat * sumDX);
    }
  }
}

export function rmsNorm(rows: number, cols: number, x: F32, xOff: number, w: F32 | null, eps: number, out: F32, rstd: F32): void {
  for (let r = 0; r < rows; r++) {
    const xo = xOff + r * cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[xo + c]! * x[xo + c]!;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[o + c] = x[xo + c]! * rs * (w ? w[c]! : 1);
  }
}

export function rmsNormBackward(rows: number, cols: number, x: F32, w: F32 | null, rstd: F32, dy: F32, dx: F32, dw: F32 | null): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rs = rstd[r]!;
    // y = x·rs·w ; dx = rs·(d - x·rs²·mean(d·x)) with d = dy·w
    let dot = 0;
    for (let c = 0; c < cols; c++) {
      const d = dy[o + c]! * (w ? w[c]! : 1);
      dot += d * x[o + c]!;
      if (dw) dw[c]! += dy[o + c]! * x[o + c]! * rs;
    }
    const k = (rs * rs * dot) / cols;
    for (let c = 0; c < cols; c++) {
      const d = dy[o + c]! * (w ? w[c]! : 1);
      dx[o + c] = rs * (d - x[o + c]! * k);
    }
  }
}

export function rope(B: number, T: number, H: number, D: number, nRot: number, x: F32, xOff: number, out: F32,
  pos: Int32Array | null, pos0: number, base: number, mode: 'norm' | 'neox', inverse: boolean): void {
  const half = nRot / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.pow(base, (-2 * i) / nRot);
  const sign = inverse ? -1 : 1;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const p = pos ? pos[b * T + t]! : pos0 + t;
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < D; i++) out[o + i] = x[xOff + o + i]!;
        for (let i = 0; i < half; i++) {
          const theta = p * invFreq[i]!;
          const cos = Math.cos(theta);
          const sin = sign * Math.sin(theta);
          const i0 = mode === 'norm' ? 2 * i : i;
          const i1 = mode === 'norm' ? 2 * i + 1 : i + half;
          const x0 = x[xOff + o + i0]!;
          const x1 = x[xOff + o + i1]!;
          out[o + i0] = x0 * cos - x1 * sin;
          out[o + i1] = x0 * sin + x1 * cos;
        }
      }
    }
}

export function attention(p: AttentionParams): void {
  const { B, H, Hkv, Tq, Tk, D, q, k, v, out, scale } = p;
  const group = H / Hkv;
  const scores = new Float64Array(Tk);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < Tq; i++) {
        const qo = p.qOff + b * p.qStrides[0] + h * p.qStrides[1] + i * p.qStrides[2];
        const limit = p.causal ? Math.min(Tk, p.qPos0 + i + 1) : Tk;
        let max = -Infinity;
        for (let j = 0; j < Tk; j++) {
          if (j >= limit || (p.keyMask && p.keyMask[b * Tk + j] !== 0)) {
            scores[j] = -Infinity;
            continue;
          }
          const ko = p.kOff + b * p.kStrides[0] + hk * p.kStrides[1] + j * p.kStrides[2];
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d]! * k[ko + d]!;
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        acc.fill(0);
        let sum = 0;
        for (let j = 0; j < Tk; j++) {
          if (scores[j] === -Infinity) continue;
          const e = Math.exp(scores[j]! - max);
          sum += e;
          const vo = p.vOff + b * p.vStrides[0] + hk * p.vStrides[1] + j * p.vStrides[2];
          for (let d = 0; d < D; d++) acc[d]! += e * v[vo + d]!;
        }
        const o = ((b * Tq + i) * H + h) * D;
        const inv = sum > 0 ? 1 / sum : 0;
        for (let d = 0; d < D; d++) out[o + d] = acc[d]! * inv;
      }
    }
}

export function crossEntropy(rows: number, cols: number, logits: F32, xOff: number, targets: Int32Array, ignoreIndex: number,
  loss: F32, dlogits: F32 | null): void {
  for (let r = 0; r < rows; r++) {
    const xo = xOff + r * cols;
    const t = targets[r]!;
    if (t === ignoreIndex) {
      loss[r] = 0;
      if (dlogits) dlogits.fill(0, r * cols, (r + 1) * cols);
      continue;
    }
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (logits[xo + c]! > max) max = logits[xo + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(logits[xo + c]! - max);
    const lse = max + Math.log(sum);
    loss[r] = lse - logits[xo + t]!;
    if (dlogits) {
      const o = r * cols;
      for (let c = 0; c < cols; c++) dlogits[o + c] = Math.exp(logits[xo + c]! - lse);
      dlogits[o + t]! -= 1;
    }
  }
}

export function embedding(n: number, dim: number, table: F32 | Uint8Array, tableType: DType, ids: Int32Array, out: F32): void {
  if (tableType === 'f32') {
    const t = table as F32;
    for (let i = 0; i < n; i++) out.set(t.subarray(ids[i]! * dim, ids[i]! * dim + dim), i * dim);
    return;
  }
  const rowBytes = (dim / BLOCKS[tableType].elems) * BLOCKS[tableType].bytes;
  for (let i = 0; i < n; i++) dequantizeRow(tableType, table as Uint8Array, ids[i]! * rowBytes, dim, out, i * dim);
}

export function embeddingBackward(n: number, dim: number, ids: Int32Array, dy: F32, dtable: F32): void {
  for (let i = 0; i < n; i++) {
    const o = ids[i]! * dim;
    for (let c = 0; c < dim; c++) dtable[o + c]! += dy[i * dim + c]!;
  }
}

export function adamw(n: number, p: F32, pOff: number, g: F32, gOff: number, m: F32, v: F32, lr: number, beta1: number,
  beta2: number, eps: number, weightDecay: number, step: number): void {
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  for (let i = 0; i < n; i++) {
    const gi = g[gOff + i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const pi = p[pOff + i]! * (1 - lr * weightDecay);
    p[pOff + i] = pi - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}
