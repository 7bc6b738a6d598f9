/**
 * Multi-head attention on projected q/k/v, with GQA, RoPE in either pairing and a preallocated KV cache.
 * Letters: B batch, T new tokens, S cached + new tokens, H query heads, Hkv key/value heads, D head dim.
 */
import { ShapeError } from '../errors.ts';
import { Tensor, isGradEnabled } from '../tensor/tensor.ts';
import { keep } from '../tensor/storage.ts';
import { attention, rope, type RopeOptions } from '../tensor/ops/nn.ts';
import { copyInto, permute, reshape, slice } from '../tensor/ops/view.ts';

/** Keys and values of one layer for up to `capacity` positions: (B, Hkv, capacity, D) each. */
export class LayerKV {
  readonly k: Tensor;
  readonly v: Tensor;
  constructor(B: number, Hkv: number, capacity: number, D: number) {
    this.k = keep(Tensor.zeros([B, Hkv, capacity, D]));
    this.v = keep(Tensor.zeros([B, Hkv, capacity, D]));
  }
  get capacity(): number {
    return this.k.shape[2]!;
  }
  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
}

/** A KV cache for every layer of a decoder; `length` is the number of positions already filled. */
export class KVCache {
  readonly layers: LayerKV[];
  length = 0;
  constructor(nLayers: number, B: number, Hkv: number, capacity: number, D: number) {
    this.layers = Array.from({ length: nLayers }, () => new LayerKV(B, Hkv, capacity, D));
  }
  get capacity(): number {
    return this.layers[0]?.capacity ?? 0;
  }
  dispose(): void {
    for (const l of this.layers) l.dispose();
  }
}

export interface MHAOptions {
  H: number;
  Hkv: number;
  causal: boolean;
  rope?: Omit<RopeOptions, 'pos0'> | null;
  /** absolute position of the first of the T tokens */
  pos0?: number;
  cache?: LayerKV | null;
  keyMask?: Uint8Array | null;
  /** sees the rotated queries (B, T, H, D) and keys (B, T, Hkv, D) — for auxiliary losses on attention */
  tap?: ((q: Tensor, k: Tensor) => void) | null;
}

/**
 * q (B, T, H·D), k and v (B, T, Hkv·D) → (B, T, H·D). With a cache, the new keys/values are written at
 * positions pos0 … pos0+T−1 and attention runs over positions 0 … pos0+T−1.
 */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, o: MHAOptions): Tensor {
  const [B, T, E] = q.shape as [number, number, number];
  const D = E / o.H;
  if (!Number.isInteger(D) || k.shape[2] !== o.Hkv * D) throw new ShapeError(`attention: q [${q.shape}], k [${k.shape}] for H=${o.H}, Hkv=${o.Hkv}`);
  const pos0 = o.pos0 ?? 0;
  let qh = reshape(q, [B, T, o.H, D]); // (B, T, H, D)
  let kh = reshape(k, [B, T, o.Hkv, D]); // (B, T, Hkv, D)
  const vh = reshape(v, [B, T, o.Hkv, D]);
  if (o.rope) {
    qh = rope(qh, { ...o.rope, pos0 });
    kh = rope(kh, { ...o.rope, pos0 });
  }
  o.tap?.(qh, kh);
  let kk = permute(kh, [0, 2, 1, 3]); // (B, Hkv, T, D)
  let vv = permute(vh, [0, 2, 1, 3]);
  if (o.cache) {
    if (isGradEnabled() && (kk.requiresGrad || vv.requiresGrad)) throw new ShapeError('KV cache is for inference (use noGrad)');
    if (pos0 + T > o.cache.capacity) throw new ShapeError(`KV cache overflow: ${pos0 + T} positions > capacity ${o.cache.capacity}`);
    copyInto(slice(o.cache.k, 2, pos0, pos0 + T), kk);
    copyInto(slice(o.cache.v, 2, pos0, pos0 + T), vv);
    kk = slice(o.cache.k, 2, 0, pos0 + T); // (B, Hkv, S, D)
    vv = slice(o.cache.v, 2, 0, pos0 + T);
  }
  const out = attention(permute(qh, [0, 2, 1, 3]), kk, vv, {
    causal: o.causal, qPos0: o.cache ? pos0 : 0, keyMask: o.keyMask ?? null,
  }); // (B, T, H, D)
  return reshape(out, [B, T, E]);
}
