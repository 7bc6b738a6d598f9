/**
 * Image bytes → RGB8. sharp (libvips) is the edge library that decodes; this file decides what reaches it
 * (signature sniffing, byte and pixel limits checked from the header before any pixel is decoded) and turns
 * every failure into an InputError a user can act on.
 */
import { stat } from 'node:fs/promises';
import sharp, { type SharpOptions } from 'sharp';
import { InputError } from '../errors.ts';
import { readFileChecked } from '../platform/fs.ts';
import type { RGBImage } from './image.ts';
import { pngHeaderSize, sniffFormat, SUPPORTED_HINT, type ImageFormat } from './sniff.ts';

export interface DecodeOptions {
  /** Refuse images with more pixels than this, judged from the header (default 40e6). */
  maxPixels?: number;
  /** Refuse inputs (files or buffers) larger than this many bytes (default 64 MiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_PIXELS = 40e6;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

const FORMAT_NAME: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', gif: 'GIF' };
const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Decode a PNG, JPEG, WebP or GIF (first frame) to 8-bit sRGB RGB: EXIF orientation applied, alpha
 * composited onto white, greyscale / CMYK / 16-bit converted. `input` is the encoded bytes or a file path.
 * Every failure a user can cause (missing file, empty, unsupported format, corrupt or truncated data, zero
 * size, too many pixels or bytes) is an InputError; oversize images are refused from the header alone.
 * @example const img = await decodeImage('cat.jpg'); // { width, height, data: Uint8Array(3·w·h) }
 */
export async function decodeImage(input: Uint8Array | string, opts: DecodeOptions = {}): Promise<RGBImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const from = typeof input === 'string' ? ` (${input})` : '';
  const bytes = typeof input === 'string' ? await readLimited(input, maxBytes) : input;
  if (bytes.length === 0) throw new InputError(`empty image input${from}`);
  if (bytes.length > maxBytes) throw new InputError(`image input is ${bytes.length} bytes, above the limit of ${maxBytes}${from}`);
  const format = sniffFormat(bytes);
  const name = FORMAT_NAME[format];

  const checkSize = (w: number, h: number): void => {
    if (w <= 0 || h <= 0) throw new InputError(`${name} image has zero size (${w}x${h})${from}`);
    if (w * h > maxPixels)
      throw new InputError(`${name} image is ${w}x${h} = ${w * h} pixels, above the limit of ${maxPixels}${from}`);
  };
  const declared = format === 'png' ? pngHeaderSize(bytes) : null;
  if (declared) checkSize(declared.width, declared.height);
  // Header only: libvips reads dimensions without decoding pixels, so a decompression bomb costs nothing here.
  const meta = await viaSharp(name, from, () => sharp(bytes, sharpOptions(false)).metadata());
  // metadata() reports stored dimensions; EXIF orientations 5–8 swap them, which does not change the area.
  checkSize(meta.width ?? 0, meta.height ?? 0);

  const { data, info } = await viaSharp(name, from, () =>
    sharp(bytes, sharpOptions(maxPixels))
      .rotate() // EXIF orientation
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }),
  );
  if (info.channels !== 3 || data.length !== 3 * info.width * info.height)
    throw new InputError(`${name} image decoded to ${info.channels} channels, expected RGB${from}`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

function sharpOptions(maxPixels: number | false): SharpOptions {
  return {
    // libvips also checks the header against this limit: a second line of defence behind our own check
    limitInputPixels: maxPixels === false ? false : Math.max(1, Math.floor(maxPixels)),
    failOn: 'error', // truncated and corrupt data fail; mere warnings (e.g. extraneous JPEG bytes) do not
    pages: 1, // GIF/WebP: first frame only
    page: 0,
    animated: false,
  };
}

/** Run a sharp call; any error it throws (sync or async) becomes an InputError naming the format. */
async function viaSharp<T>(name: string, from: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    const msg = e instanceof Error ? e.message.trim().replace(/\s+/g, ' ') : String(e);
    if (/exceeds pixel limit/i.test(msg)) throw new InputError(`${name} image exceeds the pixel limit${from}`);
    throw new InputError(`corrupt or truncated ${name} image${from}: ${msg}`);
  }
}

/** Read a file, refusing it from its size before reading when it exceeds `maxBytes`. */
async function readLimited(file: string, maxBytes: number): Promise<Uint8Array> {
  // a failed stat is left for readFileChecked, which words missing / directory / permission errors
  const size = await stat(file).then((s) => (s.isFile() ? s.size : -1), () => -1);
  if (size > maxBytes) throw new InputError(`image file is ${size} bytes, above the limit of ${maxBytes} (${file})`);
  return readFileChecked(file);
}

/** The decoded payload of a `data:` URL. */
export interface DataUrl {
  /** declared media type, lower-cased, e.g. `image/png` (the bytes are sniffed again when decoded) */
  mime: string;
  bytes: Uint8Array;
}

/**
 * Parse a base64 `data:image/…;base64,…` URL (as sent in OpenAI-style `image_url` parts). Throws an
 * InputError for anything else: not a data URL, a non-image media type, no `;base64`, bad base64, empty data.
 * @example parseDataUrl('data:image/png;base64,iVBORw0KGgo=') // { mime: 'image/png', bytes: Uint8Array(8) }
 */
export function parseDataUrl(url: string): DataUrl {
  const preview = url.length > 48 ? `${url.slice(0, 48)}…` : url;
  const m = /^data:([^,]*),(.*)$/s.exec(url.trim());
  if (!m) throw new InputError(`not a data URL: "${preview}"`);
  const [type, ...params] = m[1]!.split(';').map((s) => s.trim().toLowerCase());
  if (!type || !/^image\/[a-z0-9][a-z0-9.+-]*$/.test(type))
    throw new InputError(`data URL must have an image media type (${SUPPORTED_HINT}), got "${type ?? ''}"`);
  if (!params.includes('base64')) throw new InputError(`data URL for ${type} must be base64-encoded (";base64,")`);
  const payload = m[2]!.replace(/\s+/g, '');
  if (!payload) throw new InputError(`data URL for ${type} has no data`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload) || payload.length % 4 === 1)
    throw new InputError(`data URL for ${type} has invalid base64 data: "${preview}"`);
  const buf = Buffer.from(payload, 'base64');
  return { mime: type, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}
