/**
 * Incremental detokenization: feed ids one at a time, get text deltas. Incomplete UTF-8 sequences (byte
 * tokens, or BPE tokens that cut a character) are held back until they complete, so a delta never ends in
 * half a character. Matches llama.cpp's per-token `token_to_piece`, plus its first-token space strip.
 */
import { utf8Decode } from './unicode.ts';
import type { DecodeOptions, Tokenizer } from './tokenizer.ts';

export class StreamDecoder {
  private pending = new Uint8Array(0);
  private first: boolean;
  private readonly special: boolean;

  /** `first: false` when continuing text that already started (no leading-space strip). */
  constructor(
    private readonly tok: Tokenizer,
    opts: DecodeOptions & { first?: boolean } = {},
  ) {
    this.special = !(opts.skipSpecial ?? false);
    this.first = opts.first ?? true;
  }

  /** Adds one token; returns the text that became complete (possibly ''). */
  push(id: number): string {
    let b = this.tok.tokenBytes(id, this.special);
    if (this.first && this.tok.vocab.addSpacePrefix && b[0] === 0x20) b = b.subarray(1);
    this.first = false;
    const buf = new Uint8Array(this.pending.length + b.length);
    buf.set(this.pending);
    buf.set(b, this.pending.length);
    const cut = completePrefix(buf);
    this.pending = buf.slice(cut);
    return cut ? utf8Decode(buf.subarray(0, cut)) : '';
  }

  /** Text of everything still held back (incomplete sequences decode to U+FFFD). */
  flush(): string {
    const rest = this.pending.length ? utf8Decode(this.pending) : '';
    this.pending = new Uint8Array(0);
    return rest;
  }
}

/** Length of the longest prefix that does not end inside an incomplete (but so far valid) UTF-8 sequence. */
function completePrefix(b: Uint8Array): number {
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const c = b[b.length - back]!;
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;
    return need > back ? b.length - back : b.length;
  }
  return b.length;
}
