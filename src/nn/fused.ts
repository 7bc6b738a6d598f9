/**
 * Inference fusions for the decoding path: the Q/K/V (or gate/up) projections of one input as one backend
 * call, and SwiGLU as one backend call without an intermediate tensor. Both give what the unfused modules
 * give (bit for bit) and fall back to them whenever a gradient is wanted or a layer has more than a weight
 * (bias, LoRA). Shapes: `K` in features, `N` out features.
 */
import { Tensor, isGradEnabled } from '../tensor/tensor.ts';
import { backendFor, type MatmulParams } from '../tensor/kernels.ts';
import { contiguous, reshape } from '../tensor/ops/view.ts';
import { mul, silu } from '../tensor/ops/elementwise.ts';
import type { Linear } from './layers.ts';

/**
 * x (..., K) through several Linear layers of the same K: [(..., N₀), (..., N₁), …]. With quantized weights
 * and no gradient, one backend call (the wasm backend runs the decode products as one dispatch).
 * @example const [q, k, v] = linearShared(h, [blk.attn_q, blk.attn_k, blk.attn_v]);
 */
export function linearShared(x: Tensor, layers: readonly Linear[]): Tensor[] {
  const plain = layers.every((l) => l.weight.dtype !== 'f32' && !l.bias && !l.lora_a && !l.weight.requiresGrad &&
    l.weight.shape[1] === x.shape[x.ndim - 1]);
  if (!plain || layers.length < 2 || (isGradEnabled() && x.requiresGrad)) return layers.map((l) => l.forward(x));
  const K = x.shape[x.ndim - 1]!;
  const x2 = contiguous(reshape(x, [-1, K])); // (rows, K)
  const rows = x2.shape[0]!;
  const outs = layers.map((l) => Tensor.empty([rows, l.weight.shape[0]!]));
  if (rows > 0) {
    const ps = layers.map((l, i): MatmulParams => ({
      batch: 1, M: rows, N: l.weight.shape[0]!, K,
      a: x2.data, aOff: x2.offset, transA: false, lda: K, strideA: 0,
      b: l.weight.storage.bytes, bType: l.weight.dtype, bOff: l.weight.offset, transB: true, ldb: K, strideB: 0,
      c: outs[i]!.data, cOff: 0, ldc: l.weight.shape[0]!, strideC: 0, accumulate: false,
    }));
    backendFor('matmulShared', ['f32', ...layers.map((l) => l.weight.dtype)]).matmulShared(ps);
  }
  return outs.map((o) => reshape(o, [...x.shape.slice(0, -1), o.shape[1]!])); // (..., N)
}

/** silu(g) · u elementwise for g, u of one shape: one backend call without a gradient, the two ops with one. */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  if ((isGradEnabled() && (g.requiresGrad || u.requiresGrad)) || g.shape.length !== u.shape.length ||
    g.shape.some((d, i) => d !== u.shape[i])) return mul(silu(g), u);
  const gc = contiguous(g), uc = contiguous(u);
  const out = Tensor.empty(g.shape);
  backendFor('swiglu', ['f32']).swiglu(out.size, gc.data, gc.offset, uc.data, uc.offset, out.data);
  return out;
}
