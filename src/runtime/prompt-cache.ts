/**
 * What a VisionLanguageModel keeps between calls, so a conversation that grows turn by turn is not
 * recomputed from the start each time:
 * - `PromptCache`: the KV cache of the last conversation and what fills each of its positions (llama.cpp
 *   server's `cache_prompt`). The next call reuses the longest common prefix and prefills the rest.
 * - `ImageEmbeddingCache`: an LRU of image embeddings keyed by a hash of the preprocessed pixels.
 *
 * Both are only valid while the weights stay as they were; `VisionLanguageModel.clearCaches()` forgets them.
 */
import { createHash } from 'node:crypto';
import type { Tensor } from '../tensor/tensor.ts';
import type { Decoder } from './generate.ts';

/** What fills one prompt position: a token id, or the content key of the image whose embedding sits there. */
export type Slot = number | string;

/** Per position: `ids[i]`, or `imageKeys[k]` across image k's `N` positions from `imageStarts[k]`. */
export function promptSlots(ids: readonly number[], imageStarts: readonly number[], imageKeys: readonly string[], N: number): Slot[] {
  const slots: Slot[] = ids.slice();
  imageStarts.forEach((start, k) => slots.fill(imageKeys[k]!, start, start + N));
  return slots;
}

/**
 * Leading positions of `cached` that a prompt `next` can reuse: their longest common prefix, at most
 * `next.length − 1` (the last position is always run, for its logits), and never ending inside one of
 * `next`'s images (`imageStarts`, `N` positions each) — then it backs off to before that image.
 */
export function reusablePrefix(cached: readonly Slot[], next: readonly Slot[], imageStarts: readonly number[], N: number): number {
  const max = Math.min(cached.length, next.length - 1);
  let n = 0;
  while (n < max && cached[n] === next[n]) n++;
  for (const start of imageStarts) if (start < n && n < start + N) return start;
  return n;
}

/** A KV cache and the slots of the positions it holds (`slots.length === dec.length`). */
export interface CachedPrompt {
  readonly dec: Decoder;
  readonly slots: readonly Slot[];
}

/**
 * One stored KV cache. A call `take`s it — so calls that overlap never share a cache: the later ones find
 * none and start fresh — and `put`s its own back when it ends; the last to end is kept. A cache taken
 * before a `clear` is freed rather than put back.
 */
export class PromptCache {
  private stored: CachedPrompt | null = null;
  private epoch = 0;

  take(): { cached: CachedPrompt | null; epoch: number } {
    const cached = this.stored;
    this.stored = null;
    return { cached, epoch: this.epoch };
  }

  /** Keep `c` (taken at `epoch`), freeing what was kept before. */
  put(c: CachedPrompt, epoch: number): void {
    if (epoch !== this.epoch || c.slots.length === 0) return c.dec.dispose();
    this.stored?.dec.dispose();
    this.stored = c;
  }

  /** Positions held, when no call has the cache taken. */
  get length(): number {
    return this.stored?.slots.length ?? 0;
  }

  clear(): void {
    this.stored?.dec.dispose();
    this.stored = null;
    this.epoch++;
  }
}

/** A content key for preprocessed pixels (any contiguous f32 tensor): SHA-256 of shape and values. */
export function pixelKey(px: Tensor): string {
  const v = px.data.subarray(px.offset, px.offset + px.size);
  // a copy: node's hash refuses views of the wasm backend's shared memory
  const bytes = new Uint8Array(v.slice().buffer);
  return createHash('sha256').update(px.shape.join('x')).update(bytes).digest('base64');
}

export interface ImageCacheOptions {
  /** Most images kept (default 64). */
  readonly maxEntries?: number;
  /** Most embedding bytes kept (default 64 MiB). */
  readonly maxBytes?: number;
}

/**
 * Least-recently-used f32 arrays by key, bounded by count and bytes: image embeddings here, preprocessed
 * training images in src/train/data.ts. An array larger than maxBytes is not kept.
 */
export class ImageEmbeddingCache {
  private readonly map = new Map<string, Float32Array>();
  private used = 0;
  readonly maxEntries: number;
  readonly maxBytes: number;

  constructor(opts: ImageCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 64;
    this.maxBytes = opts.maxBytes ?? 64 * 2 ** 20;
  }

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.used;
  }

  get(key: string): Float32Array | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key); // re-insert: Map order is recency order
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: Float32Array): void {
    if (value.byteLength > this.maxBytes || this.maxEntries < 1) return;
    const old = this.map.get(key);
    if (old) {
      this.used -= old.byteLength;
      this.map.delete(key);
    }
    this.map.set(key, value);
    this.used += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.map.size <= this.maxEntries && this.used <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= v.byteLength;
    }
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }
}
