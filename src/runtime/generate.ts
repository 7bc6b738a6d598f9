/**
 * Text generation with a llama-family model: chunked prefill into a preallocated KV cache, then one token
 * per step, streamed as events. Every forward pass runs inside `tidy`, so a decoding step reuses the
 * memory of the one before it; the cache is freed when generation ends, however it ends.
 *
 * Legend: T prompt tokens, E embedding width, V vocabulary.
 *
 * @example
 * const tok = Tokenizer.fromGGUFMetadata(file.metadata);
 * const ids = tok.encode('Once upon a time', { addBos: true });
 * for await (const ev of generate(model, { ids }, { tokenizer: tok, maxTokens: 64, sampler: { temperature: 0 } })) {
 *   if (ev.type === 'token') process.stdout.write(ev.text);
 *   else console.log(`\n[${ev.finishReason}]`, ev.stats);
 * }
 */
import { InputError, ShapeError, assert } from '../errors.ts';
import type { Llama } from '../models/llama.ts';
import type { KVCache } from '../nn/attention.ts';
import { noGrad, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/storage.ts';
import { copyInto, slice } from '../tensor/ops/view.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { Sampler, argmaxLogits, type SamplerOptions } from './sampler.ts';
import { StopStrings } from './stop.ts';

/** Token ids, or input embeddings (1, T, E) — e.g. text embeddings with image embeddings spliced in. */
export type Prompt = { readonly ids: readonly number[] } | { readonly embeddings: Tensor };

export interface GenerateOptions {
  /** Most tokens to sample (the stop token included). Default 256. */
  readonly maxTokens?: number;
  /** A sampler, or options for a new one (default: llama.cpp's defaults; `{ temperature: 0 }` = greedy). */
  readonly sampler?: Sampler | SamplerOptions;
  /** Turns tokens into text deltas; its end-of-generation tokens (EOS, EOT…) stop generation. */
  readonly tokenizer?: Tokenizer;
  /** More token ids that end generation (never emitted as text). */
  readonly stopTokens?: readonly number[];
  /** Do not stop at the tokenizer's end-of-generation tokens. Default false. */
  readonly ignoreEos?: boolean;
  /** Text that ends generation; it is never emitted, nor is anything after it. Needs `tokenizer`. */
  readonly stopStrings?: readonly string[];
  /** Render control tokens as their text instead of nothing. Default false. */
  readonly special?: boolean;
  /** Prompt positions per prefill forward pass (bounds activation memory). Default 512. */
  readonly batchSize?: number;
  /** Checked before every step; an abort ends generation with finishReason 'abort'. */
  readonly signal?: AbortSignal;
  /** Time spent encoding images for this prompt, reported back in the stats. */
  readonly imageEncodeMs?: number;
  /** Images run through the vision tower for this prompt (not found in a cache), reported back in the stats. */
  readonly imagesEncoded?: number;
}

export interface GenerationStats {
  /** The whole prompt, cached positions included. */
  promptTokens: number;
  /**
   * Leading prompt positions whose keys/values were reused from an earlier call (see `generateFrom`) rather
   * than computed; the prefill ran over `promptTokens − cachedTokens` positions. Always set by `generate`.
   */
  cachedTokens?: number;
  /** Tokens sampled, including a stop token. */
  completionTokens: number;
  prefillMs: number;
  /** Positions actually prefilled (cached ones excluded) per second. */
  prefillTokensPerS: number;
  /** Forward passes of single tokens after the prefill, and the time they took. */
  decodeMs: number;
  decodeTokensPerS: number;
  /** From the first call into the generator to the first sampled token (NaN if none). */
  timeToFirstTokenMs: number;
  imageEncodeMs?: number;
  imagesEncoded?: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export type GenerationEvent =
  /** One sampled token and the text that became final with it (may be '', held back or mid-character). */
  | { readonly type: 'token'; readonly id: number; readonly text: string }
  | {
      readonly type: 'done';
      readonly finishReason: FinishReason;
      /** Text released at the end (held back for a possible stop string, or an unfinished character). */
      readonly text: string;
      /** The stop token or stop string that ended generation, when finishReason is 'stop'. */
      readonly stoppedBy?: { readonly token: number } | { readonly string: string };
      readonly stats: GenerationStats;
    };

/**
 * The synchronous core shared by `generate` and `greedyTokens`: a batch-1 KV cache and forward passes that
 * append to it. The cache is allocated at `capacity` positions (or at the first `reserve`), grows by copying
 * when a longer continuation is reserved, and can be cut back to a prefix (`truncate`) to be reused.
 */
export class Decoder {
  private kv: KVCache | null = null;

  constructor(readonly model: Llama, capacity = 0) {
    if (capacity > 0) this.kv = model.newCache(1, capacity);
  }

  get cache(): KVCache {
    assert(this.kv, () => 'decoder: no cache yet (construct with a capacity or call reserve)');
    return this.kv;
  }

  /** Positions already in the cache. */
  get length(): number {
    return this.kv?.length ?? 0;
  }

  /** Positions the cache can hold. */
  get capacity(): number {
    return this.kv?.capacity ?? 0;
  }

  /** Make room for `capacity` positions, keeping the ones already filled. */
  reserve(capacity: number): void {
    if (capacity <= this.capacity) return;
    const grown = this.model.newCache(1, capacity);
    const old = this.kv;
    if (old) {
      const n = old.length;
      noGrad(() => tidy(() => old.layers.forEach((l, i) => {
        copyInto(slice(grown.layers[i]!.k, 2, 0, n), slice(l.k, 2, 0, n)); // (1, Hkv, n, D)
        copyInto(slice(grown.layers[i]!.v, 2, 0, n), slice(l.v, 2, 0, n));
      })));
      grown.length = n;
      old.dispose();
    }
    this.kv = grown;
  }

  /** Forget every position from `length` on (the next `feed` writes there). */
  truncate(length: number): void {
    assert(Number.isInteger(length) && length >= 0 && length <= this.length, () => `decoder: truncate to ${length} of ${this.length} positions`);
    if (this.kv) this.kv.length = length;
  }

  /**
   * Append token ids or input embeddings (1, T, E) at the next positions. Returns the logits (V) of the
   * last of them if `wantLogits`, else null (prefill chunks before the last skip the output projection).
   */
  feed(input: readonly number[] | Tensor, wantLogits: boolean): Float32Array | null {
    const m = this.model;
    const cache = this.cache;
    return noGrad(() => tidy(() => {
      const x = Array.isArray(input) ? m.embed(input as readonly number[]) : (input as Tensor); // (1, T, E)
      const T = x.shape[1]!;
      if (cache.length + T > cache.capacity)
        throw new ShapeError(`decoder: ${cache.length} + ${T} positions exceed the cache capacity ${cache.capacity}`);
      const h = m.hidden(x, { pos0: cache.length, cache }); // (1, T, E)
      cache.length += T;
      return wantLogits ? m.logits(slice(h, 1, T - 1, T)).toArray() : null; // (V)
    }));
  }

  dispose(): void {
    this.kv?.dispose();
    this.kv = null;
  }
}

/** Greedy continuation of `ids` by `n` tokens, synchronously (for tests and scripts). */
export function greedyTokens(model: Llama, ids: readonly number[], n: number): number[] {
  checkIds(model, ids);
  const dec = new Decoder(model, Math.min(ids.length + n, model.config.context_length));
  try {
    const out: number[] = [];
    let logits = dec.feed(ids, true)!;
    for (let i = 0; i < n; i++) {
      const id = argmaxLogits(logits);
      out.push(id);
      if (i + 1 < n) logits = dec.feed([id], true)!;
    }
    return out;
  } finally {
    dec.dispose();
  }
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Stream a continuation of `prompt`. Yields a 'token' event per sampled token (except a stop token) and
 * ends with one 'done' event; the concatenated `text` of all events is the completion.
 *
 * Capacity is prompt + maxTokens positions, capped at the model's context_length (then generation ends
 * with 'length' when the context is full). Throws InputError if the prompt alone does not fit.
 */
export async function* generate(model: Llama, prompt: Prompt, opts: GenerateOptions = {}): AsyncGenerator<GenerationEvent, void, undefined> {
  const t0 = performance.now();
  const plan = planGeneration(model, 0, prompt, opts);
  const dec = new Decoder(model, plan.capacity);
  try {
    yield* run(dec, prompt, plan, opts, t0);
  } finally {
    dec.dispose();
  }
}

/**
 * `generate` continuing a decoder whose cache already holds the first `dec.length` positions of the prompt:
 * `rest` is the prompt after them (at least one position — its last logits start sampling). The cache grows
 * as needed and is left to the caller, holding the prompt and every sampled token that was fed back (all
 * but the last); the stats report `cachedTokens` = the positions that were already there.
 */
export async function* generateFrom(dec: Decoder, rest: Prompt, opts: GenerateOptions = {}): AsyncGenerator<GenerationEvent, void, undefined> {
  const t0 = performance.now();
  const plan = planGeneration(dec.model, dec.length, rest, opts);
  dec.reserve(plan.capacity);
  yield* run(dec, rest, plan, opts, t0);
}

interface Plan {
  /** positions already in the cache, and the whole prompt */
  cached: number;
  T: number;
  /** cache positions this generation may fill: prompt + maxTokens, at most the context */
  capacity: number;
  maxTokens: number;
  batchSize: number;
}

function planGeneration(model: Llama, cached: number, rest: Prompt, opts: GenerateOptions): Plan {
  const maxTokens = opts.maxTokens ?? 256;
  const batchSize = opts.batchSize ?? 512;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InputError(`maxTokens must be an integer ≥ 1, got ${maxTokens}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be an integer ≥ 1, got ${batchSize}`);
  const T = cached + promptLength(model, rest);
  const ctx = model.config.context_length;
  if (T > ctx) throw new InputError(`prompt of ${T} tokens exceeds the model's context length ${ctx}`);
  if (opts.stopStrings?.length && !opts.tokenizer) throw new InputError('stopStrings need a tokenizer to turn tokens into text');
  return { cached, T, capacity: Math.min(T + maxTokens, ctx), maxTokens, batchSize };
}

/** Prefill `rest` (positions plan.cached … T−1) into `dec`, then sample until a stop, the limit or an abort. */
async function* run(dec: Decoder, rest: Prompt, plan: Plan, opts: GenerateOptions, t0: number): AsyncGenerator<GenerationEvent, void, undefined> {
  const { cached, T, capacity, maxTokens, batchSize } = plan;
  const R = T - cached;
  const tok = opts.tokenizer;
  const sampler = opts.sampler instanceof Sampler ? opts.sampler : new Sampler(opts.sampler);
  const stopIds = new Set(opts.stopTokens ?? []);
  if (tok && !opts.ignoreEos) for (const id of tok.eogIds) stopIds.add(id);
  const text = tok?.streamDecoder({ first: false, skipSpecial: !opts.special });
  const stops = new StopStrings(opts.stopStrings ?? []);
  const signal = opts.signal;

  let finish: FinishReason | null = null;
  let stoppedBy: { token: number } | { string: string } | undefined;
  let completion = 0;
  let ttft = NaN;
  let decodeMs = 0;
  let decodeSteps = 0;
  if ('ids' in rest) for (const id of rest.ids) sampler.accept(id);

  const tp = performance.now();
  let logits: Float32Array | null = null;
  for (let s = 0; s < R && !finish; s += batchSize) {
    if (signal?.aborted) finish = 'abort';
    else {
      const e = Math.min(R, s + batchSize);
      const chunk = 'ids' in rest ? rest.ids.slice(s, e) : slice(rest.embeddings, 1, s, e); // (1, e−s, E)
      logits = dec.feed(chunk, e === R);
      if (e < R) await nextTick();
    }
  }
  const prefillMs = performance.now() - tp;

  while (!finish) {
    if (signal?.aborted) {
      finish = 'abort';
      break;
    }
    const id = sampler.sample(logits!);
    sampler.accept(id);
    completion++;
    if (completion === 1) ttft = performance.now() - t0;
    if (stopIds.has(id)) {
      finish = 'stop';
      stoppedBy = { token: id };
      break;
    }
    const r = stops.push(text ? text.push(id) : '');
    yield { type: 'token', id, text: r.text };
    if (r.stop !== null) {
      finish = 'stop';
      stoppedBy = { string: r.stop };
      break;
    }
    if (completion >= maxTokens || dec.length >= capacity) {
      finish = 'length';
      break;
    }
    await nextTick(); // let aborts, timers and other requests run between steps
    if (signal?.aborted) {
      finish = 'abort';
      break;
    }
    const td = performance.now();
    logits = dec.feed([id], true);
    decodeMs += performance.now() - td;
    decodeSteps++;
  }

  const tail = stoppedBy && 'string' in stoppedBy ? '' : stops.push(text?.flush() ?? '').text + stops.flush();
  const stats: GenerationStats = {
    promptTokens: T,
    cachedTokens: cached,
    completionTokens: completion,
    prefillMs,
    prefillTokensPerS: prefillMs > 0 ? (R / prefillMs) * 1000 : 0,
    decodeMs,
    decodeTokensPerS: decodeMs > 0 ? (decodeSteps / decodeMs) * 1000 : 0,
    timeToFirstTokenMs: ttft,
    ...(opts.imageEncodeMs !== undefined ? { imageEncodeMs: opts.imageEncodeMs } : {}),
    ...(opts.imagesEncoded !== undefined ? { imagesEncoded: opts.imagesEncoded } : {}),
  };
  yield { type: 'done', finishReason: finish, text: tail, ...(stoppedBy ? { stoppedBy } : {}), stats };
}

function promptLength(model: Llama, prompt: Prompt): number {
  if ('ids' in prompt) {
    checkIds(model, prompt.ids);
    return prompt.ids.length;
  }
  const x = prompt.embeddings;
  const E = model.config.embedding_length;
  if (x.ndim !== 3 || x.shape[0] !== 1 || x.shape[2] !== E || x.shape[1]! < 1)
    throw new InputError(`prompt embeddings must have shape (1, T ≥ 1, ${E}), got [${x.shape.join(', ')}]`);
  return x.shape[1]!;
}

function checkIds(model: Llama, ids: readonly number[]): void {
  const V = model.config.vocab_size;
  if (!ids.length) throw new InputError('the prompt is empty (at least one token is needed)');
  const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= V);
  if (bad >= 0) throw new InputError(`prompt token ${bad} is ${ids[bad]}, outside the vocabulary [0, ${V})`);
}
