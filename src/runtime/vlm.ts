/**
 * A loaded vision-language model ready to chat: LM + optional vision tower and projector, tokenizer,
 * chat template and the image wrapper its projector type expects. Turns OpenAI-style messages into one
 * embedding sequence — text token embeddings with image embeddings spliced in where images stand — and
 * streams the answer.
 *
 * Between calls it can keep the last conversation's KV cache and recent image embeddings
 * (./prompt-cache.ts), so a conversation answered turn by turn prefills only what each turn adds.
 *
 * Prompt safety: text written by the user (or by tools, or read from images) is tokenized with special-
 * token parsing OFF, so `<|im_start|>` typed into a message stays text; only the chat template's own
 * markup is parsed for control tokens.
 */
import { InputError, assert } from '../errors.ts';
import { readGGUF, type GGUFFile } from '../formats/gguf.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { DEFAULT_CHAT_TEMPLATE } from '../tokenizer/chat-template.ts';
import { tokenizeConversation, type ConvMessage, type PromptFormat } from './conversation.ts';
import { decodeImage, parseDataUrl, preprocessForModel, type RGBImage, type PreprocessOptions } from '../image/index.ts';
import type { Llama } from '../models/llama.ts';
import type { Llava } from '../models/llava.ts';
import { Tensor, noGrad } from '../tensor/tensor.ts';
import { tidy } from '../tensor/storage.ts';
import { concat } from '../tensor/ops/shape.ts';
import { llamaConfigFromGGUF, loadLlamaGGUF } from './gguf-llama.ts';
import { loadVlmGGUF } from './gguf-vlm.ts';
import { Decoder, generate, generateFrom, type GenerateOptions, type GenerationEvent } from './generate.ts';
import { ImageEmbeddingCache, PromptCache, pixelKey, promptSlots, reusablePrefix, type ImageCacheOptions, type Slot } from './prompt-cache.ts';
import type { TokenizedConversation } from './conversation.ts';
import { openGGUF, type GGUFHandle } from '../platform/gguf-file.ts';
import { initBackend } from '../backend/index.ts';

/** An image given to the library: a file path, raw bytes, a `data:` URL, or already decoded pixels. */
export type ImageInput = string | Uint8Array | RGBImage;

/** OpenAI-style content parts, plus `{ type: 'image', image }` for library callers. */
export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } | string }
  | { type: 'image'; image: ImageInput };

export interface Message {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | ContentPart[] | null;
  tool_calls?: unknown[];
  tool_call_id?: string;
  name?: string;
}

export interface ChatOptions extends Omit<GenerateOptions, 'tokenizer' | 'imageEncodeMs' | 'imagesEncoded'> {
  /**
   * Reuse the model's prompt cache (when it keeps one, see `RuntimeCacheOptions.cachePrompt`) and leave this
   * conversation in it. Default true; false runs the call from scratch and leaves the cache as it was.
   */
  cachePrompt?: boolean;
  /** OpenAI-style tool definitions, rendered by the chat template. */
  tools?: unknown[];
  /** Fetches http(s) image URLs (the server passes its SSRF-checked fetcher); without it they are refused. */
  fetchImage?: (url: string) => Promise<Uint8Array>;
  /** Most images per request (default 16). */
  maxImages?: number;
}

/**
 * What a model keeps between calls. Both caches assume the weights do not change; a model built around
 * modules that are still training should leave them off (the constructor's default) or call `clearCaches`.
 */
export interface RuntimeCacheOptions {
  /**
   * Keep the KV cache of the last conversation and reuse its longest common prefix with the next prompt
   * (token ids, and images by pixel hash), like llama.cpp server's `cache_prompt`.
   */
  readonly cachePrompt?: boolean;
  /** An LRU of image embeddings by pixel hash, so an image seen again is not re-encoded; false for none. */
  readonly imageCache?: ImageCacheOptions | false;
}

/** The embedding sequence for a conversation, and what it is made of. */
export interface PreparedPrompt {
  /** (1, T, E) */
  embeddings: Tensor;
  promptTokens: number;
  imageTokens: number;
  /** preprocessing and encoding the images (those found in the image cache cost only their preprocessing) */
  imageEncodeMs: number;
  /** images run through the vision tower (the others came from the image cache) */
  imagesEncoded: number;
  /** the rendered template text (image positions marked with <image>) */
  text: string;
}

export class VisionLanguageModel {
  readonly template: string;
  private readonly promptCache: PromptCache | null;
  private readonly imageCache: ImageEmbeddingCache | null;

  /** Caches are off by default here (the modules may be training); `load` turns them on. */
  constructor(
    readonly lm: Llama,
    readonly vlm: Llava | null,
    readonly tokenizer: Tokenizer,
    template?: string,
    caches: RuntimeCacheOptions = {},
  ) {
    this.template = template ?? tokenizer.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
    this.promptCache = caches.cachePrompt ? new PromptCache() : null;
    this.imageCache = caches.imageCache ? new ImageEmbeddingCache(caches.imageCache) : null;
  }

  /**
   * Load from GGUF files (paths or bytes): an LM file and, for images, its mmproj file. The prompt cache and
   * the image cache are on unless `caches` says otherwise.
   * @example const m = await VisionLanguageModel.load({ model: 'lm.gguf', mmproj: 'mmproj.gguf' });
   */
  static async load(opts: { model: string | Uint8Array; mmproj?: string | Uint8Array | null; caches?: RuntimeCacheOptions }): Promise<VisionLanguageModel> {
    // JavaScript callers get no type check: `load('m.gguf')` or a wrong field must say what is expected, not crash inside the reader
    const file = (x: unknown) => typeof x === 'string' || x instanceof Uint8Array;
    if (typeof opts !== 'object' || opts === null || !file(opts.model) || !(opts.mmproj == null || file(opts.mmproj)))
      throw new InputError('VisionLanguageModel.load expects { model, mmproj? }, each a GGUF path or its bytes (Uint8Array)');
    const caches = { cachePrompt: opts.caches?.cachePrompt ?? true, imageCache: opts.caches?.imageCache ?? {} };
    initBackend();
    // paths are read tensor by tensor straight into the weights' storage; bytes are parsed in place
    const open = (x: string | Uint8Array): GGUFHandle | { file: GGUFFile; read: undefined; close(): void } =>
      typeof x === 'string' ? openGGUF(x) : { file: readGGUF(x), read: undefined, close() {} };
    const lm = open(opts.model);
    const mm = opts.mmproj ? open(opts.mmproj) : null;
    try {
      llamaConfigFromGGUF(lm.file); // says so clearly when an mmproj file was passed as the LM
      const tokenizer = Tokenizer.fromGGUFMetadata(lm.file.metadata);
      if (mm) {
        const vlm = loadVlmGGUF(lm.file, mm.file, { lm: lm.read?.bind(lm), mmproj: mm.read?.bind(mm) });
        return new VisionLanguageModel(vlm.lm, vlm, tokenizer, undefined, caches);
      }
      return new VisionLanguageModel(loadLlamaGGUF(lm.file, lm.read?.bind(lm)), null, tokenizer, undefined, caches);
    } finally {
      lm.close();
      mm?.close();
    }
  }

  /** Image tokens one image occupies in the prompt (embeddings only, without wrapper tokens). */
  get imageTokensPerImage(): number {
    return this.vlm?.imageTokens ?? 0;
  }

  /** How an image becomes the tower's input (llama.cpp's policy per projector type). */
  get preprocess(): PreprocessOptions | null {
    if (!this.vlm) return null;
    const v = this.vlm.config.vision;
    const mlp = this.vlm.config.projector.projector_type === 'mlp';
    return {
      imageSize: v.image_size, mean: v.image_mean, std: v.image_std,
      // LLaVA: letterbox (bicubic) with CLIP's mean colour; SigLIP/idefics3 (and vista's own): stretch (bilinear)
      policy: mlp ? 'letterbox' : 'stretch', algo: mlp ? 'bicubic' : 'bilinear',
    };
  }

  /** Text placed before / after each image's embeddings (llama.cpp mtmd's wrappers, when the vocabulary has them). */
  imageWrapper(): { before: string; after: string } {
    if (this.vlm?.config.projector.projector_type === 'idefics3' && this.tokenizer.tokenId('<fake_token_around_image>') !== undefined
      && this.tokenizer.tokenId('<global-img>') !== undefined)
      return { before: '\n\n<fake_token_around_image><global-img>', after: '<fake_token_around_image>' };
    return { before: '', after: '' };
  }

  /** Decode every image of the conversation in order. */
  private async collectImages(messages: readonly Message[], opts: ChatOptions): Promise<RGBImage[]> {
    const out: RGBImage[] = [];
    const max = opts.maxImages ?? 16;
    for (const m of messages) {
      if (!Array.isArray(m.content)) continue;
      for (const part of m.content) {
        if (part.type !== 'image' && part.type !== 'image_url') continue;
        if (!this.vlm) throw new InputError('this model has no vision encoder (load it with an mmproj file) and cannot read images');
        if (out.length >= max) throw new InputError(`too many images: at most ${max} per request`);
        out.push(await loadImage(part, opts));
      }
    }
    return out;
  }

  /**
   * Render the conversation with the chat template and build its embedding sequence.
   * Images are encoded by the vision tower (or found in the image cache) and spliced in place.
   */
  async prepare(messages: readonly Message[], opts: ChatOptions = {}): Promise<PreparedPrompt> {
    const { conv, images } = await this.tokenize(messages, opts);
    const seen = this.seeImages(images);
    const p = this.embedFrom(conv, seen, 0);
    return { ...p, promptTokens: conv.ids.length, imageTokens: images.length * this.imageTokensPerImage, text: conv.text };
  }

  /** Free the kept KV cache and image embeddings (needed after the weights change). */
  clearCaches(): void {
    this.promptCache?.clear();
    this.imageCache?.clear();
  }

  /** Prompt positions held by the kept KV cache (0 when none is kept, or a call has it). */
  get cachedPromptTokens(): number {
    return this.promptCache?.length ?? 0;
  }

  private async tokenize(messages: readonly Message[], opts: ChatOptions): Promise<{ conv: TokenizedConversation; images: RGBImage[] }> {
    validateMessages(messages);
    const images = await this.collectImages(messages, opts);
    const conv = tokenizeConversation(messages.map(toConvMessage), this.promptFormat(opts.tools), { addGenerationPrompt: true });
    return { conv, images };
  }

  /** Images → the tower's input (1, 3, S, S) each, with their content keys when a cache needs them. */
  private seeImages(images: readonly RGBImage[]): Seen {
    const t0 = performance.now();
    const pixels = images.map((img) => preprocessForModel(img, this.preprocess!));
    const keys = this.promptCache || this.imageCache ? pixels.map(pixelKey) : [];
    return { pixels, keys, ms: performance.now() - t0 };
  }

  /**
   * Embeddings (1, T − from, E) of prompt positions from … T−1 (`from` is not inside an image). Images
   * before `from` are not needed and not encoded; the others come from the image cache or the tower.
   * Frees the pixels.
   */
  private embedFrom(conv: TokenizedConversation, seen: Seen, from: number): { embeddings: Tensor; imageEncodeMs: number; imagesEncoded: number } {
    const t0 = performance.now();
    const N = this.imageTokensPerImage;
    let imagesEncoded = 0;
    const embeddings = noGrad(() => tidy(() => {
      const emb = conv.imageStarts.map((start, k): Tensor | null => {
        if (start + N <= from) return null;
        const key = seen.keys[k];
        const hit = key !== undefined ? this.imageCache?.get(key) : undefined;
        if (hit) return Tensor.from(hit, [1, N, hit.length / N]);
        const e = this.vlm!.encodeImages(seen.pixels[k]!); // (1, N, E)
        imagesEncoded++;
        if (key !== undefined) this.imageCache?.set(key, e.toArray());
        return e;
      });
      return this.embedConversation(conv.ids, conv.imageStarts, emb, from);
    }));
    for (const px of seen.pixels) px.dispose();
    return { embeddings, imageEncodeMs: seen.ms + (imagesEncoded ? performance.now() - t0 : 0), imagesEncoded };
  }

  /** The prompt format (template, wrapper, image slots) of this model. */
  promptFormat(tools?: unknown[]): PromptFormat {
    return { tokenizer: this.tokenizer, template: this.template, wrapper: this.imageWrapper(), imageTokens: this.imageTokensPerImage, tools };
  }

  /**
   * Token ids with IMAGE_SLOT runs → (1, T − from, E) embeddings of positions from … T−1, with image k's
   * embeddings (1, N, E) at imageStarts[k] (null for images before `from`, which must not cut an image).
   */
  embedConversation(ids: readonly number[], imageStarts: readonly number[], images: readonly (Tensor | null)[], from = 0): Tensor {
    const parts: Tensor[] = [];
    const N = this.imageTokensPerImage;
    let at = from;
    imageStarts.forEach((start, k) => {
      if (start + N <= from) return;
      assert(start >= at, () => `embedConversation: position ${from} is inside image ${k} at ${start}…${start + N - 1}`);
      if (start > at) parts.push(this.lm.embed(ids.slice(at, start)));
      parts.push(images[k]!);
      at = start + N;
    });
    if (at < ids.length) parts.push(this.lm.embed(ids.slice(at)));
    return parts.length === 1 ? parts[0]! : concat(parts, 1);
  }

  /** Images → (n, N, E) embeddings. */
  encodeImages(images: readonly RGBImage[]): Tensor {
    const vlm = this.vlm!;
    const pp = this.preprocess!;
    return noGrad(() => tidy(() => concat(images.map((img) => vlm.encodeImages(preprocessForModel(img, pp))), 0)));
  }

  /**
   * Stream the assistant's answer to `messages`.
   * @example for await (const e of model.chat([{ role: 'user', content: [{ type: 'image', image: 'cat.png' }, { type: 'text', text: 'What is this?' }] }])) if (e.type === 'token') process.stdout.write(e.text);
   */
  async *chat(messages: readonly Message[], opts: ChatOptions = {}): AsyncGenerator<GenerationEvent, void, undefined> {
    const { conv, images } = await this.tokenize(messages, opts);
    const seen = this.seeImages(images);
    const genOpts = (p: { imageEncodeMs: number; imagesEncoded: number }): GenerateOptions =>
      ({ ...opts, tokenizer: this.tokenizer, imageEncodeMs: p.imageEncodeMs, imagesEncoded: p.imagesEncoded });
    if (!this.promptCache || opts.cachePrompt === false) {
      const prompt = this.embedFrom(conv, seen, 0);
      try {
        yield* generate(this.lm, { embeddings: prompt.embeddings }, genOpts(prompt));
      } finally {
        prompt.embeddings.dispose();
      }
      return;
    }
    // Take the kept cache (a call running meanwhile finds none), keep what this prompt shares with it, prefill
    // the rest, and put the cache back however generation ends, with the slots of exactly what it holds.
    const T = conv.ids.length;
    const slots = promptSlots(conv.ids, conv.imageStarts, seen.keys, this.imageTokensPerImage);
    const { cached, epoch } = this.promptCache.take();
    const dec = cached?.dec ?? new Decoder(this.lm);
    dec.truncate(cached ? reusablePrefix(cached.slots, slots, conv.imageStarts, this.imageTokensPerImage) : 0);
    const sampled: number[] = [];
    try {
      const prompt = this.embedFrom(conv, seen, dec.length);
      try {
        for await (const e of generateFrom(dec, { embeddings: prompt.embeddings }, genOpts(prompt))) {
          if (e.type === 'token') sampled.push(e.id);
          yield e;
        }
      } finally {
        prompt.embeddings.dispose();
      }
    } finally {
      const n = dec.length;
      assert(n <= T + sampled.length, () => `internal: ${n} cached positions for a ${T}-position prompt and ${sampled.length} sampled tokens`);
      const held: Slot[] = n <= T ? slots.slice(0, n) : [...slots, ...sampled.slice(0, n - T)];
      this.promptCache.put({ dec, slots: held }, epoch);
    }
  }

  /** The whole answer as a string, with the final stats. */
  async complete(messages: readonly Message[], opts: ChatOptions = {}): Promise<{ text: string; done: Extract<GenerationEvent, { type: 'done' }> }> {
    let text = '';
    for await (const e of this.chat(messages, opts)) {
      text += e.text;
      if (e.type === 'done') return { text, done: e };
    }
    throw new Error('internal: generation ended without a done event');
  }
}

/** A conversation's images as the tower's input, their content keys, and the time that took. */
interface Seen {
  pixels: Tensor[];
  keys: string[];
  ms: number;
}

function toConvMessage(m: Message): ConvMessage {
  return {
    ...m,
    content: Array.isArray(m.content) ? m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const })) : m.content,
  };
}

function validateMessages(messages: readonly Message[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new InputError('messages must be a non-empty array');
  messages.forEach((m, i) => {
    if (!m || typeof m !== 'object') throw new InputError(`messages[${i}] must be an object`);
    if (!['system', 'user', 'assistant', 'tool'].includes(m.role)) throw new InputError(`messages[${i}].role must be system, user, assistant or tool`);
    if (Array.isArray(m.content))
      (m.content as ContentPart[]).forEach((p: ContentPart, j: number) => {
        if (!p || typeof p !== 'object') throw new InputError(`messages[${i}].content[${j}] must be an object`);
        if (p.type === 'text') {
          if (typeof p.text !== 'string') throw new InputError(`messages[${i}].content[${j}].text must be a string`);
        } else if (p.type !== 'image' && p.type !== 'image_url')
          throw new InputError(`messages[${i}].content[${j}]: unknown content part type '${String((p as { type: unknown }).type)}'`);
      });
    else if (m.content !== null && m.content !== undefined && typeof m.content !== 'string')
      throw new InputError(`messages[${i}].content must be a string, an array of parts or null`);
  });
}

async function loadImage(part: Extract<ContentPart, { type: 'image' | 'image_url' }>, opts: ChatOptions): Promise<RGBImage> {
  if (part.type === 'image') {
    const img = part.image;
    if (img && typeof img === 'object' && 'width' in img && 'data' in img) return img;
    if (typeof img === 'string' && img.startsWith('data:')) return decodeImage(parseDataUrl(img).bytes);
    if (typeof img === 'string' || img instanceof Uint8Array) return decodeImage(img);
    throw new InputError('image part: expected a path, bytes, a data: URL or decoded pixels');
  }
  const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
  if (typeof url !== 'string') throw new InputError('image_url part: missing url');
  if (url.startsWith('data:')) return decodeImage(parseDataUrl(url).bytes);
  if (/^https?:\/\//i.test(url)) {
    if (!opts.fetchImage) throw new InputError('http(s) image URLs need a fetcher (the server provides one); pass the image bytes instead');
    return decodeImage(await opts.fetchImage(url));
  }
  throw new InputError(`image_url: unsupported URL scheme in '${url.slice(0, 40)}' (use data: or http(s):)`);
}
