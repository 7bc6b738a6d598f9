/**
 * A loaded vision-language model ready to chat: LM + optional vision tower and projector, tokenizer,
 * chat template and the image wrapper its projector type expects. Turns OpenAI-style messages into one
 * embedding sequence — text token embeddings with image embeddings spliced in where images stand — and
 * streams the answer.
 *
 * Prompt safety: text written by the user (or by tools, or read from images) is tokenized with special-
 * token parsing OFF, so `<|im_start|>` typed into a message stays text; only the chat template's own
 * markup is parsed for control tokens.
 */
import { InputError } from '../errors.ts';
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
import { generate, type GenerateOptions, type GenerationEvent } from './generate.ts';
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

export interface ChatOptions extends Omit<GenerateOptions, 'tokenizer' | 'imageEncodeMs'> {
  /** OpenAI-style tool definitions, rendered by the chat template. */
  tools?: unknown[];
  /** Fetches http(s) image URLs (the server passes its SSRF-checked fetcher); without it they are refused. */
  fetchImage?: (url: string) => Promise<Uint8Array>;
  /** Most images per request (default 16). */
  maxImages?: number;
}

/** The embedding sequence for a conversation, and what it is made of. */
export interface PreparedPrompt {
  /** (1, T, E) */
  embeddings: Tensor;
  promptTokens: number;
  imageTokens: number;
  imageEncodeMs: number;
  /** the rendered template text (image positions marked with <image>) */
  text: string;
}

export class VisionLanguageModel {
  readonly template: string;

  constructor(
    readonly lm: Llama,
    readonly vlm: Llava | null,
    readonly tokenizer: Tokenizer,
    template?: string,
  ) {
    this.template = template ?? tokenizer.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
  }

  /**
   * Load from GGUF files (paths or bytes): an LM file and, for images, its mmproj file.
   * @example const m = await VisionLanguageModel.load({ model: 'lm.gguf', mmproj: 'mmproj.gguf' });
   */
  static async load(opts: { model: string | Uint8Array; mmproj?: string | Uint8Array | null }): Promise<VisionLanguageModel> {
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
        return new VisionLanguageModel(vlm.lm, vlm, tokenizer);
      }
      return new VisionLanguageModel(loadLlamaGGUF(lm.file, lm.read?.bind(lm)), null, tokenizer);
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
   * Images are encoded by the vision tower and spliced in place.
   */
  async prepare(messages: readonly Message[], opts: ChatOptions = {}): Promise<PreparedPrompt> {
    validateMessages(messages);
    const images = await this.collectImages(messages, opts);
    const conv = tokenizeConversation(messages.map(toConvMessage), this.promptFormat(opts.tools), { addGenerationPrompt: true });
    const t0 = performance.now();
    const imageEmb = images.length ? this.encodeImages(images) : null; // (nImages, N, E)
    const imageEncodeMs = performance.now() - t0;
    const embeddings = noGrad(() => tidy(() => this.embedConversation(conv.ids, conv.imageStarts, imageEmb)));
    imageEmb?.dispose();
    return { embeddings, promptTokens: conv.ids.length, imageTokens: images.length * this.imageTokensPerImage, imageEncodeMs, text: conv.text };
  }

  /** The prompt format (template, wrapper, image slots) of this model. */
  promptFormat(tools?: unknown[]): PromptFormat {
    return { tokenizer: this.tokenizer, template: this.template, wrapper: this.imageWrapper(), imageTokens: this.imageTokensPerImage, tools };
  }

  /** Token ids with IMAGE_SLOT runs → (1, T, E) embeddings with image k's embeddings at imageStarts[k]. */
  embedConversation(ids: readonly number[], imageStarts: readonly number[], imageEmb: Tensor | null): Tensor {
    const parts: Tensor[] = [];
    const N = this.imageTokensPerImage;
    let at = 0;
    imageStarts.forEach((start, k) => {
      if (start > at) parts.push(this.lm.embed(ids.slice(at, start)));
      parts.push(sliceImage(imageEmb!, k));
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
    const prompt = await this.prepare(messages, opts);
    try {
      yield* generate(this.lm, { embeddings: prompt.embeddings }, { ...opts, tokenizer: this.tokenizer, imageEncodeMs: prompt.imageEncodeMs });
    } finally {
      prompt.embeddings.dispose();
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

function toConvMessage(m: Message): ConvMessage {
  return {
    ...m,
    content: Array.isArray(m.content) ? m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const })) : m.content,
  };
}

function sliceImage(emb: Tensor, i: number): Tensor {
  const [, N, E] = emb.shape as [number, number, number];
  const out = Tensor.empty([1, N, E]);
  out.data.set(emb.data.subarray(emb.offset + i * N * E, emb.offset + (i + 1) * N * E));
  return out;
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
