/**
 * Request images → decoded pixels, under the server's limits: count, bytes, pixels (checked from the header
 * before decoding, so decompression bombs cost nothing), and for URLs the SSRF-checked fetcher. Messages
 * come back with every image part replaced by `{ type: 'image', image: RGBImage }`.
 */
import { InputError } from '../errors.ts';
import { decodeImage, parseDataUrl, type RGBImage } from '../image/index.ts';
import type { ContentPart, Message } from '../runtime/vlm.ts';
import { fetchChecked, type Connector, type Resolver } from './net.ts';

export interface ImageLimits {
  readonly maxImages: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly fetchTimeoutMs: number;
  readonly allowPrivateUrls: boolean;
  readonly resolve?: Resolver;
  readonly connect?: Connector;
}

/** An image part as the routes accept it: an OpenAI image_url (data: or http(s)) or raw base64 (Ollama). */
export type WireImage = { url: string } | { base64: string };

export async function loadWireImage(img: WireImage, limits: ImageLimits, signal: AbortSignal): Promise<RGBImage> {
  let bytes: Uint8Array;
  if ('base64' in img) {
    if (img.base64.length > (limits.maxImageBytes * 4) / 3 + 4) throw new InputError(`image is above the limit of ${limits.maxImageBytes} bytes`);
    bytes = parseDataUrl(`data:image/unknown;base64,${img.base64}`).bytes;
  } else if (img.url.startsWith('data:')) {
    if (img.url.length > (limits.maxImageBytes * 4) / 3 + 256) throw new InputError(`image is above the limit of ${limits.maxImageBytes} bytes`);
    bytes = parseDataUrl(img.url).bytes;
  } else if (/^https?:\/\//i.test(img.url)) {
    bytes = await fetchChecked(img.url, {
      maxBytes: limits.maxImageBytes, timeoutMs: limits.fetchTimeoutMs, maxRedirects: 3, allowPrivate: limits.allowPrivateUrls,
      resolve: limits.resolve, connect: limits.connect, signal,
    });
  } else throw new InputError(`image_url: unsupported URL '${img.url.slice(0, 40)}' (use a data: or http(s): URL)`);
  return decodeImage(bytes, { maxBytes: limits.maxImageBytes, maxPixels: limits.maxImagePixels });
}

/** Messages in the server's wire form: content parts may carry `image` as a WireImage. */
export type WirePart = { type: 'text'; text: string } | { type: 'image'; image: WireImage };
export interface WireMessage extends Omit<Message, 'content'> {
  content: string | WirePart[] | null;
}

/** Decode every image (in order, counting against maxImages) and return model-ready messages. */
export async function resolveImages(messages: readonly WireMessage[], limits: ImageLimits, signal: AbortSignal): Promise<{ messages: Message[]; images: number }> {
  const total = messages.reduce((n, m) => n + (Array.isArray(m.content) ? m.content.filter((p) => p.type === 'image').length : 0), 0);
  if (total > limits.maxImages) throw new InputError(`too many images: ${total}, at most ${limits.maxImages} per request`);
  const out: Message[] = [];
  for (const m of messages) {
    if (!Array.isArray(m.content)) {
      out.push(m as Message);
      continue;
    }
    const parts: ContentPart[] = [];
    for (const p of m.content) parts.push(p.type === 'text' ? p : { type: 'image', image: await loadWireImage(p.image, limits, signal) });
    out.push({ ...m, content: parts });
  }
  return { messages: out, images: total };
}
