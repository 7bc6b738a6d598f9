/**
 * Llama-style decoder LM, laid out as llama.cpp's `llama` architecture so GGUF tensors load by name.
 *
 * Legend: B batch, T tokens, E embedding width, H heads, Hkv key/value heads, D head dim, F FFN width,
 * V vocabulary.
 *
 * RoPE pairs adjacent dims ('norm'), as llama.cpp runs `llama` files (their Q/K rows were permuted by
 * the converter). Config keys keep the GGUF spelling without the `llama.` prefix.
 */
import { ConfigError, ShapeError } from '../errors.ts';
import { Module } from '../nn/module.ts';
import { Embedding, Linear, RMSNorm } from '../nn/layers.ts';
import { KVCache, multiHeadAttention } from '../nn/attention.ts';
import { linearShared, swiglu } from '../nn/fused.ts';
import { Rng } from '../tensor/rng.ts';
import { Tensor } from '../tensor/tensor.ts';
import { add } from '../tensor/ops/elementwise.ts';
import { linear } from '../tensor/ops/matmul.ts';
import { gather } from '../tensor/ops/shape.ts';
import { reshape } from '../tensor/ops/view.ts';

export interface LlamaConfig {
  readonly vocab_size: number;
  readonly context_length: number;
  readonly embedding_length: number;
  readonly block_count: number;
  readonly feed_forward_length: number;
  readonly 'attention.head_count': number;
  readonly 'attention.head_count_kv': number;
  readonly 'attention.layer_norm_rms_epsilon': number;
  readonly 'rope.freq_base': number;
  readonly 'rope.dimension_count'?: number;
  /** output.weight absent: logits use token_embd.weight */
  readonly tied_embeddings?: boolean;
  /**
   * RoPE pairing: 'norm' (adjacent pairs — llama.cpp's `llama`, whose converter permuted the Q/K rows) or
   * 'neox' (halves — HF Llama's rotate_half on unpermuted weights). Default 'norm'.
   */
  readonly rope_type?: 'norm' | 'neox';
}

export function validateLlamaConfig(c: LlamaConfig): void {
  const E = c.embedding_length;
  const H = c['attention.head_count'];
  const Hkv = c['attention.head_count_kv'];
  const bad = (m: string) => new ConfigError(`llama config: ${m}`);
  for (const k of ['vocab_size', 'embedding_length', 'block_count', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv'] as const)
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw bad(`${k} must be a positive integer, got ${c[k]}`);
  if (E % H) throw bad(`embedding_length ${E} is not a multiple of head_count ${H}`);
  if (H % Hkv) throw bad(`head_count ${H} is not a multiple of head_count_kv ${Hkv}`);
}

/**
 * A packed batch: the hidden states hold only the R real tokens of B right-padded samples of T tokens
 * (rows (R, E)), so norms, projections and the FFN skip the padding; attention alone runs on the padded
 * (B, T) grid, where each sample's tokens sit at its own causal positions and pads (zeros) are never seen
 * by a real token. The result equals the padded computation's real rows.
 */
export interface PackedRows {
  readonly B: number;
  readonly T: number;
  /** (R) each real token's position b·T + t on the padded grid */
  readonly real: Int32Array;
  /** (B·T) each grid position's row in the packed states, or -1 for a pad */
  readonly slot: Int32Array;
}

/** (R, C) packed rows → (B, T, C) on the padded grid, pads zero. */
function unpack(x: Tensor, p: PackedRows): Tensor {
  const C = x.shape[x.ndim - 1]!;
  return reshape(gather(x, 0, p.slot, { zeroAt: -1 }), [p.B, p.T, C]);
}

/** (B, T, C) on the padded grid → (R, C) rows of the real tokens. */
function pack(x: Tensor, p: PackedRows): Tensor {
  const C = x.shape[x.ndim - 1]!;
  return gather(reshape(x, [p.B * p.T, C]), 0, p.real);
}

/** Sees layer `layer`'s rotated queries (B, T, H, D) and keys (B, T, Hkv, D) (auxiliary losses on attention). */
export type AttentionTap = (layer: number, q: Tensor, k: Tensor) => void;

export class LlamaBlock extends Module {
  attn_norm: RMSNorm;
  attn_q: Linear;
  attn_k: Linear;
  attn_v: Linear;
  attn_output: Linear;
  ffn_norm: RMSNorm;
  ffn_gate: Linear;
  ffn_up: Linear;
  ffn_down: Linear;

  constructor(readonly _c: LlamaConfig, rng: Rng) {
    super();
    const E = _c.embedding_length;
    const D = E / _c['attention.head_count'];
    const kv = D * _c['attention.head_count_kv'];
    const F = _c.feed_forward_length;
    const eps = _c['attention.layer_norm_rms_epsilon'];
    const out = { rng, std: 0.02 / Math.sqrt(2 * _c.block_count) };
    this.attn_norm = new RMSNorm(E, eps);
    this.attn_q = new Linear(E, E, { rng, std: 0.02 });
    this.attn_k = new Linear(E, kv, { rng, std: 0.02 });
    this.attn_v = new Linear(E, kv, { rng, std: 0.02 });
    this.attn_output = new Linear(E, E, out);
    this.ffn_norm = new RMSNorm(E, eps);
    this.ffn_gate = new Linear(E, F, { rng, std: 0.02 });
    this.ffn_up = new Linear(E, F, { rng, std: 0.02 });
    this.ffn_down = new Linear(F, E, out);
  }

  /** x (B, T, E) → (B, T, E); packed, x (R, E) → (R, E) */
  forward(x: Tensor, pos0: number, cache: KVCache | null, layer: number, keyMask: Uint8Array | null,
    tap: ((q: Tensor, k: Tensor) => void) | null = null, packed: PackedRows | null = null): Tensor {
    const c = this._c;
    const h = this.attn_norm.forward(x);
    let [q, k, v] = linearShared(h, [this.attn_q, this.attn_k, this.attn_v]); // (B, T, E), (B, T, Hkv·D) ×2
    if (packed) [q, k, v] = [unpack(q!, packed), unpack(k!, packed), unpack(v!, packed)];
    let a = multiHeadAttention(q!, k!, v!, {
      H: c['attention.head_count'], Hkv: c['attention.head_count_kv'], causal: true, pos0,
      rope: { mode: c.rope_type ?? 'norm', base: c['rope.freq_base'], nRot: c['rope.dimension_count'] },
      cache: cache ? cache.layers[layer]! : null, keyMask, tap,
    });
    if (packed) a = pack(a, packed);
    x = add(x, this.attn_output.forward(a));
    const g = this.ffn_norm.forward(x);
    const [gate, up] = linearShared(g, [this.ffn_gate, this.ffn_up]); // (B, T, F) ×2
    return add(x, this.ffn_down.forward(swiglu(gate!, up!)));
  }
}

export class Llama extends Module {
  token_embd: Embedding;
  blk: LlamaBlock[];
  output_norm: RMSNorm;
  output: Linear | null;

  constructor(readonly config: LlamaConfig, seed = 0) {
    super();
    validateLlamaConfig(config);
    const rng = new Rng(seed);
    const E = config.embedding_length;
    this.token_embd = new Embedding(config.vocab_size, E, { rng });
    this.blk = Array.from({ length: config.block_count }, () => new LlamaBlock(config, rng));
    this.output_norm = new RMSNorm(E, config['attention.layer_norm_rms_epsilon']);
    this.output = config.tied_embeddings ? null : new Linear(E, config.vocab_size, { rng, std: 0.02 });
  }

  get headDim(): number {
    return this.config.embedding_length / this.config['attention.head_count'];
  }

  /** Token embeddings (B, T, E) for ids (B·T). */
  embed(ids: Int32Array | readonly number[], B = 1): Tensor {
    return this.token_embd.forward(ids, [B, ids.length / B]);
  }

  /**
   * Hidden states after the final norm for input embeddings x (B, T, E) starting at position `pos0`.
   * With a cache, keys/values are stored for later decoding steps. `tap` sees each layer's rotated queries
   * and keys (for auxiliary losses on attention, ../train/attend.ts).
   */
  hidden(x: Tensor, opts: {
    pos0?: number; cache?: KVCache | null; keyMask?: Uint8Array | null; tap?: AttentionTap | null;
    /** x holds only the real tokens (R, E) of a padded batch (training; no cache) */
    packed?: PackedRows | null;
  } = {}): Tensor {
    const pos0 = opts.pos0 ?? 0;
    const tap = opts.tap;
    const packed = opts.packed ?? null;
    if (packed && (opts.cache || x.ndim !== 2 || x.shape[0] !== packed.real.length))
      throw new ShapeError(`packed hidden: x [${x.shape}] for ${packed.real.length} real tokens${opts.cache ? ', with a cache' : ''}`);
    for (let i = 0; i < this.blk.length; i++)
      x = this.blk[i]!.forward(x, pos0, opts.cache ?? null, i, opts.keyMask ?? null, tap ? (q, k) => tap(i, q, k) : null, packed);
    return this.output_norm.forward(x);
  }

  /** Logits (…, V) of hidden states (…, E). */
  logits(h: Tensor): Tensor {
    return this.output ? this.output.forward(h) : linear(h, this.token_embd.weight);
  }

  /** ids (B·T) → logits (B, T, V). */
  forward(ids: Int32Array | readonly number[], B = 1, opts: { pos0?: number; cache?: KVCache | null } = {}): Tensor {
    return this.logits(this.hidden(this.embed(ids, B), opts));
  }

  newCache(B: number, capacity: number): KVCache {
    return new KVCache(this.blk.length, B, this.config['attention.head_count_kv'], capacity, this.headDim);
  }
}
