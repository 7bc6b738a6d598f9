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
import { InputError, ShapeError } from '../errors.ts';
import type { Llama } from '../models/llama.ts';
import type { KVCache } from '../nn/attention.ts';
import { noGrad, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/storage.ts';
import { slice } from '../tensor/ops/view.ts';
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
}

export interface GenerationStats {
  promptTokens: number;
  /** Tokens sampled, including a stop token. */
  completionTokens: number;
  prefillMs: number;
  prefillTokensPerS: number;
  /** Forward passes of single tokens after the prefill, and the time they took. */
  decodeMs: number;
  decodeTokensPerS: number;
  /** From the first call into the generator to the first sampled token (NaN if none). */
  timeToFirstTokenMs: number;
  imageEncodeMs?: number;
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
 * The synchronous core shared by `generate` and `greedyTokens`: a batch-1 KV cache of fixed capacity and
 * forward passes that append to it.
 */
export class Decoder {
  readonly cache: KVCache;

  constructor(readonly model: Llama, capacity: number) {
    this.cache = model.newCache(1, capacity);
  }

  /** Positions already in the cache. */
  get length(): number {
    return this.cache.length;
  }

  /**
   * Append token ids or input embeddings (1, T, E) at the next positions. Returns the logits (V) of the
   * last of them if `wantLogits`, else null (prefill chunks before the last skip the output projection).
   */
  feed(input: readonly number[] | Tensor, wantLogits: boolean): Float32Array | null {
    const m = this.model;
    return noGrad(() => tidy(() => {
      const x = Array.isArray(input) ? m.embed(input as readonly number[]) : (input as Tensor); // (1, T, E)
      const T = x.shape[1]!;
      if (this.cache.length + T > this.cache.capacity)
        throw new ShapeError(`decoder: ${this.cache.length} + ${T} positions exceed the cache capacity ${this.cache.capacity}`);
      const h = m.hidden(x, { pos0: this.cache.length, cache: this.cache }); // (1, T, E)
      this.cache.length += T;
      return wantLogits ? m.logits(slice(h, 1, T - 1, T)).toArray() : null; // (V)
    }));
  }

  dispose(): void {
    this.cache.dispose();
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
  const maxTokens = opts.maxTokens ?? 256;
  const batchSize = opts.batchSize ?? 512;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InputError(`maxTokens must be an integer ≥ 1, got ${maxTokens}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be an integer ≥ 1, got ${batchSize}`);
  const T = promptLength(model, prompt);
  const ctx = model.config.context_length;
  if (T > ctx) throw new InputError(`prompt of ${T} tokens exceeds the model's context length ${ctx}`);
  const tok = opts.tokenizer;
  if (opts.stopStrings?.length && !tok) throw new InputError('stopStrings need a tokenizer to turn tokens into text');

  const sampler = opts.sampler instanceof Sampler ? opts.sampler : new Sampler(opts.sampler);
  const stopIds = new Set(opts.stopTokens ?? []);
  if (tok && !opts.ignoreEos) for (const id of tok.eogIds) stopIds.add(id);
  const text = tok?.streamDecoder({ first: false, skipSpecial: !opts.special });
  const stops = new StopStrings(opts.stopStrings ?? []);
  const signal = opts.signal;

  const capacity = Math.min(T + maxTokens, ctx);
  const dec = new Decoder(model, capacity);
  let finish: FinishReason | null = null;
  let stoppedBy: { token: number } | { string: string } | undefined;
  let completion = 0;
  let ttft = NaN;
  let decodeMs = 0;
  let decodeSteps = 0;
  try {
    if ('ids' in prompt) for (const id of prompt.ids) sampler.accept(id);

    const tp = performance.now();
    let logits: Float32Array | null = null;
    for (let s = 0; s < T && !finish; s += batchSize) {
      if (signal?.aborted) finish = 'abort';
      else {
        const e = Math.min(T, s + batchSize);
        const chunk = 'ids' in prompt ? prompt.ids.slice(s, e) : slice(prompt.embeddings, 1, s, e); // (1, e−s, E)
        logits = dec.feed(chunk, e === T);
        if (e < T) await nextTick();
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
      completionTokens: completion,
      prefillMs,
      prefillTokensPerS: prefillMs > 0 ? (T / prefillMs) * 1000 : 0,
      decodeMs,
      decodeTokensPerS: decodeMs > 0 ? (decodeSteps / decodeMs) * 1000 : 0,
      timeToFirstTokenMs: ttft,
      ...(opts.imageEncodeMs !== undefined ? { imageEncodeMs: opts.imageEncodeMs } : {}),
    };
    yield { type: 'done', finishReason: finish, text: tail, ...(stoppedBy ? { stoppedBy } : {}), stats };
  } finally {
    dec.dispose();
  }
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
