/**
 * Image format detection from magic bytes, done before any decoder sees the data so that only the four
 * formats vista accepts reach sharp/libvips (which would otherwise happily parse SVG, TIFF, PDF, HEIF, …).
 */
import { InputError } from '../errors.ts';

/** The formats `decodeImage` accepts. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

export const SUPPORTED_HINT = 'use PNG, JPEG, WebP or GIF';

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean =>
  b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (b: Uint8Array, from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
const hex = (b: Uint8Array, n: number): string => [...b.subarray(0, n)].map((v) => v.toString(16).padStart(2, '0')).join(' ');

/** Name of a recognised but unsupported format, or null. */
function unsupportedName(b: Uint8Array): string | null {
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  if (startsWith(b, [0x49, 0x49, 0x2b, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2b])) return 'BigTIFF';
  if (ascii(b, 0, 2) === 'BM') return 'BMP';
  if (ascii(b, 0, 5) === '%PDF-') return 'PDF';
  if (ascii(b, 0, 4) === '8BPS') return 'PSD';
  if (ascii(b, 0, 4) === 'qoif') return 'QOI';
  if (startsWith(b, [0x76, 0x2f, 0x31, 0x01])) return 'OpenEXR';
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return 'ICO';
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'JPEG XL';
  if (startsWith(b, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(b, [0xff, 0x4f, 0xff, 0x51])) return 'JPEG 2000';
  if (startsWith(b, [0x1f, 0x8b])) return 'gzip-compressed (e.g. SVGZ)';
  if (ascii(b, 4, 8) === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'AVIF';
    if (/^(hei[cxms]|hev[cx]|mif1|msf1)$/.test(brand)) return 'HEIF';
    return `ISO media (brand "${brand.replace(/[^\x20-\x7e]/g, '?')}")`;
  }
  if (/^P[1-7]\s/.test(ascii(b, 0, 3))) return 'PNM';
  // text formats: skip a UTF-8 BOM and leading whitespace
  const head = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 4096)).replace(/^\uFEFF?\s*/, '');
  if (head.startsWith('<')) return /<svg[\s>]/i.test(head) ? 'SVG' : 'XML/HTML text';
  return null;
}

/**
 * The format of `bytes` judged by its signature. Throws an InputError naming the format for recognised
 * non-PNG/JPEG/WebP/GIF data (SVG, TIFF, AVIF/HEIF, PDF, BMP, …) and for unrecognisable bytes.
 * @example sniffFormat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) // 'png'
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  const name = unsupportedName(bytes);
  if (name) throw new InputError(`unsupported image format ${name}; ${SUPPORTED_HINT}`);
  throw new InputError(`unrecognised image data (first bytes: ${hex(bytes, 8)}); ${SUPPORTED_HINT}`);
}

/**
 * Dimensions declared by a PNG's IHDR chunk, read without any decoder (null when not a PNG with an IHDR first).
 * libpng rejects a 0×N header as merely "corrupt"; reading it here lets the error say what is wrong.
 */
export function pngHeaderSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24 || ascii(bytes, 12, 16) !== 'IHDR') return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}
