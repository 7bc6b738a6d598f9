/**
 * Unicode helpers shared by the tokenizers: code point categories exactly as llama.cpp sees them
 * (src/unicode.h `unicode_cpt_flags`), UTF-8 encoding, and GPT-2's byte ↔ unicode alphabet.
 */
import { NEWER_THAN_LLAMA_CPP } from './unicode-compat.ts';

export const CPT_UNDEFINED = 0x0001;
export const CPT_NUMBER = 0x0002; // \p{N}
export const CPT_LETTER = 0x0004; // \p{L}
export const CPT_SEPARATOR = 0x0008; // \p{Z}
export const CPT_MARK = 0x0010; // \p{M}
export const CPT_PUNCTUATION = 0x0020; // \p{P}
export const CPT_SYMBOL = 0x0040; // \p{S}
export const CPT_CONTROL = 0x0080; // \p{C} except Cn
export const CPT_CATEGORIES = 0x00ff;
export const CPT_WHITESPACE = 0x0100; // llama.cpp's \s

// llama.cpp's `unicode_set_whitespace` (Python's str.isspace over UnicodeData).
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const CATEGORY_TESTS: ReadonlyArray<readonly [RegExp, number]> = [
  [/\p{L}/u, CPT_LETTER],
  [/\p{N}/u, CPT_NUMBER],
  [/\p{Z}/u, CPT_SEPARATOR],
  [/\p{M}/u, CPT_MARK],
  [/\p{P}/u, CPT_PUNCTUATION],
  [/\p{S}/u, CPT_SYMBOL],
  [/\p{Cn}/u, CPT_UNDEFINED],
];

const flagCache = new Uint16Array(0x110000); // 0 = not computed yet (every real value is non-zero)

function isNewerThanLlamaCpp(cpt: number): boolean {
  let lo = 0;
  let hi = NEWER_THAN_LLAMA_CPP.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = NEWER_THAN_LLAMA_CPP[mid]!;
    if (cpt < a) hi = mid - 1;
    else if (cpt > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** llama.cpp's category flags for a code point (one category bit, plus CPT_WHITESPACE). */
export function cptFlags(cpt: number): number {
  if (cpt < 0 || cpt >= 0x110000) return CPT_UNDEFINED;
  const cached = flagCache[cpt]!;
  if (cached) return cached;
  let flags = CPT_CONTROL;
  if (cpt >= 0xd800 && cpt <= 0xdfff) flags = CPT_CONTROL; // surrogates: Cs
  else if (isNewerThanLlamaCpp(cpt)) flags = CPT_UNDEFINED;
  else {
    const ch = String.fromCodePoint(cpt);
    for (const [re, f] of CATEGORY_TESTS) {
      if (re.test(ch)) {
        flags = f;
        break;
      }
    }
  }
  if (WHITESPACE.has(cpt)) flags |= CPT_WHITESPACE;
  flagCache[cpt] = flags;
  return flags;
}

/**
 * Code points of a JS string. Lone surrogates become U+FFFD, as they do when a JS string is converted
 * to UTF-8 for llama.cpp.
 */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out.push(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
        i++;
        continue;
      }
    }
    out.push(c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
  }
  return out;
}

/** `text` with lone surrogates replaced by U+FFFD. */
export function wellFormed(text: string): string {
  return /[\ud800-\udfff]/.test(text) ? String.fromCodePoint(...codePoints(text)) : text;
}

const encoder = new TextEncoder();
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Length in bytes of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes). */
export function utf8SeqLen(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc0) return 1;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  return 4;
}

// GPT-2 `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in order.
const BYTE_TO_CHAR: string[] = new Array(256);
const CHAR_TO_BYTE = new Map<string, number>();
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const ch = String.fromCodePoint(printable ? b : 256 + n++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}

/** GPT-2 alphabet character for one byte (`Ġ` for 0x20). */
export function byteToChar(b: number): string {
  return BYTE_TO_CHAR[b]!;
}

/** Inverse of byteToChar, or undefined for characters outside the 256-character alphabet. */
export function charToByte(ch: string): number | undefined {
  return CHAR_TO_BYTE.get(ch);
}

/** Maps text to the GPT-2 alphabet: UTF-8 bytes, one alphabet character per byte. */
export function bytesToGpt2(text: string): string {
  let s = '';
  for (const b of utf8Encode(text)) s += BYTE_TO_CHAR[b];
  return s;
}
