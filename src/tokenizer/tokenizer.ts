/**
 * Text ↔ token ids with llama.cpp's exact behaviour for SentencePiece-style (`llama`) and byte-level BPE
 * (`gpt2`) vocabularies (src/llama-vocab.cpp `tokenize`, `tokenizer_st_partition`, `token_to_piece`,
 * `detokenize`).
 *
 * @example
 * const tok = Tokenizer.fromGGUFMetadata(readGGUF(bytes).metadata);
 * const ids = tok.encode('Hello <image>', { addBos: true, parseSpecial: true });
 * tok.decode(ids, { skipSpecial: true }); // 'Hello '
 */
import { InputError } from '../errors.ts';
import { bpeTokenize } from './bpe.ts';
import { spmTokenize } from './spm.ts';
import { charToByte, utf8Decode, utf8Encode, wellFormed } from './unicode.ts';
import { Attr, vocabFromMetadata, type Vocab } from './vocab.ts';
import { StreamDecoder } from './stream.ts';

export interface EncodeOptions {
  /** Prepend BOS (and append EOS) when the vocabulary asks for them (`add_bos_token`/`add_eos_token`). Default false. */
  addBos?: boolean;
  /** Match CONTROL tokens such as `<|im_start|>` in the text. USER_DEFINED tokens always match. Default false. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render CONTROL/UNKNOWN tokens as nothing instead of their text. Default false (llama.cpp `special = true`). */
  skipSpecial?: boolean;
}

type Fragment = { token: number } | { text: string };

export class Tokenizer {
  private readonly pieceCache: (Uint8Array | undefined)[];

  constructor(readonly vocab: Vocab) {
    this.pieceCache = new Array(vocab.tokens.length);
  }

  /** From a plain object of GGUF tokenizer keys (`tokenizer.ggml.*`). Throws ModelFormatError on bad metadata. */
  static fromGGUFMetadata(meta: Record<string, unknown>): Tokenizer {
    return new Tokenizer(vocabFromMetadata(meta));
  }

  get vocabSize(): number {
    return this.vocab.tokens.length;
  }
  /** -1 when the vocabulary has none. */
  get bosId(): number {
    return this.vocab.bosId;
  }
  get eosId(): number {
    return this.vocab.eosId;
  }
  /** EOS, EOT and every other end-of-generation token llama.cpp recognises. */
  get eogIds(): ReadonlySet<number> {
    return this.vocab.eogIds;
  }
  get chatTemplate(): string | undefined {
    return this.vocab.chatTemplate;
  }

  /** Id of a token by its exact vocabulary text, or undefined. */
  tokenId(piece: string): number | undefined {
    return this.vocab.tokenToId.get(piece);
  }

  /** Vocabulary text of a token (`▁hello`, `Ġhello`, `<0x0A>`, `<s>`). */
  tokenText(id: number): string {
    this.checkId(id);
    return this.vocab.tokens[id]!;
  }

  isSpecial(id: number): boolean {
    this.checkId(id);
    return (this.vocab.attrs[id]! & (Attr.CONTROL | Attr.UNKNOWN)) !== 0;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InputError(`encode: expected a string, got ${typeof text}`);
    return this.encodeSegments([{ text, parseSpecial: opts.parseSpecial ?? false }], opts);
  }

  /**
   * Encode text made of segments with their own special-token parsing, as if it were one string: a chat
   * prompt whose template parts may contain control tokens (`<|im_start|>`) while the user's text must
   * never turn into one. Adjacent raw text of different segments is tokenized together, so the ids equal
   * `encode(whole, { parseSpecial: true })` whenever the user text holds no special-token text.
   */
  encodeSegments(segments: readonly { text: string; parseSpecial: boolean }[], opts: Pick<EncodeOptions, 'addBos'> = {}): number[] {
    const v = this.vocab;
    const out: number[] = [];
    const fragments: Fragment[] = [];
    for (const seg of segments) {
      if (typeof seg.text !== 'string') throw new InputError(`encode: expected a string, got ${typeof seg.text}`);
      if (seg.text === '') continue;
      for (const f of this.partition(wellFormed(seg.text), seg.parseSpecial)) {
        const last = fragments[fragments.length - 1];
        if ('text' in f && last && 'text' in last) fragments[fragments.length - 1] = { text: last.text + f.text };
        else fragments.push(f);
      }
    }
    if (opts.addBos && v.addBos) {
      if (v.bosId < 0) throw new InputError('encode: addBos requested but the vocabulary has no BOS token');
      out.push(v.bosId);
    }
    let prevSpecial = true; // SPM: the first fragment gets the space prefix too
    for (const f of fragments) {
      if ('token' in f) {
        out.push(f.token);
        prevSpecial = true;
      } else if (v.model === 'llama') {
        const t = v.addSpacePrefix && prevSpecial ? ' ' + f.text : f.text;
        spmTokenize(v, t.replaceAll(' ', '\u2581'), out);
        prevSpecial = false;
      } else {
        bpeTokenize(v, f.text, out);
      }
    }
    if (opts.addBos && v.addEos && v.eosId >= 0) out.push(v.eosId);
    return out;
  }

  /**
   * Splits text around special tokens, longest token first, each token splitting every remaining raw
   * fragment at its leftmost non-overlapping occurrences (llama.cpp `tokenizer_st_partition`).
   */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    const v = this.vocab;
    let frags: Fragment[] = [{ text }];
    for (const id of v.specialTokens) {
      if (!parseSpecial && v.attrs[id]! & (Attr.CONTROL | Attr.UNKNOWN)) continue;
      const tok = v.tokens[id]!;
      const next: Fragment[] = [];
      for (const f of frags) {
        if (!('text' in f) || !f.text.includes(tok)) {
          next.push(f);
          continue;
        }
        let from = 0;
        for (let at = f.text.indexOf(tok); at >= 0; at = f.text.indexOf(tok, from)) {
          if (at > from) next.push({ text: f.text.slice(from, at) });
          next.push({ token: id });
          from = at + tok.length;
        }
        if (from < f.text.length) next.push({ text: f.text.slice(from) });
      }
      frags = next;
    }
    return frags;
  }

  /** Raw bytes of one token as llama.cpp's `token_to_piece` (byte tokens are single raw bytes). */
  tokenBytes(id: number, special = true): Uint8Array {
    this.checkId(id);
    const attr = this.vocab.attrs[id]!;
    if (!special && attr & (Attr.CONTROL | Attr.UNKNOWN)) return EMPTY;
    return (this.pieceCache[id] ??= this.computePiece(id, attr));
  }

  /** Text of one token; may be an incomplete UTF-8 fragment for byte tokens (then it holds U+FFFD). */
  tokenToPiece(id: number, special = true): string {
    return utf8Decode(this.tokenBytes(id, special));
  }

  private computePiece(id: number, attr: number): Uint8Array {
    const text = this.vocab.tokens[id]!;
    if (attr & (Attr.CONTROL | Attr.UNKNOWN | Attr.USER_DEFINED)) return utf8Encode(text);
    if (attr & Attr.NORMAL) {
      if (this.vocab.model === 'llama') return utf8Encode(text.replaceAll('\u2581', ' '));
      return gpt2DecodeText(text);
    }
    if (attr & Attr.BYTE) {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      if (m) return Uint8Array.of(parseInt(m[1]!, 16));
      const b = charToByte(text);
      return b === undefined ? utf8Encode(text) : Uint8Array.of(b);
    }
    return EMPTY; // UNUSED / UNDEFINED render as nothing
  }

  /**
   * Ids → text, as llama.cpp's `detokenize(remove_special = false, unparse_special = !skipSpecial)`:
   * the first token loses one leading space when the vocabulary adds a space prefix, and byte tokens are
   * reassembled into UTF-8 (invalid sequences become U+FFFD).
   */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const special = !(opts.skipSpecial ?? false);
    const parts: Uint8Array[] = [];
    let total = 0;
    ids.forEach((id, i) => {
      let b = this.tokenBytes(id, special);
      if (i === 0 && this.vocab.addSpacePrefix && b[0] === 0x20) b = b.subarray(1);
      parts.push(b);
      total += b.length;
    });
    let bytes: Uint8Array = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.length;
    }
    if (this.vocab.cleanSpaces) bytes = cleanSpaces(bytes);
    return utf8Decode(bytes);
  }

  /** A decoder that turns ids into text deltas without ever splitting a UTF-8 character. */
  streamDecoder(opts: DecodeOptions & { first?: boolean } = {}): StreamDecoder {
    return new StreamDecoder(this, opts);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.tokens.length) {
      throw new InputError(`token id ${id} out of range [0, ${this.vocab.tokens.length})`);
    }
  }
}

const EMPTY = new Uint8Array(0);

/** GPT-2 alphabet → bytes (llama.cpp `llama_decode_text`, including its `[UNK_BYTE_…]` marker). */
function gpt2DecodeText(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = charToByte(ch);
    if (b !== undefined) out.push(b);
    else {
      const hex = [...utf8Encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('');
      out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
    }
  }
  return Uint8Array.from(out);
}

/** llama.cpp's `clean_spaces` passes over the detokenized bytes (tokenizers' clean_up_tokenization). */
function cleanSpaces(t: Uint8Array): Uint8Array {
  const SP = 0x20;
  const Q = 0x27;
  let a = Array.from(t);
  // " ?", " !", " .", " ," → drop the space
  let r: number[] = a.length ? [a[0]!] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    if (a[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) r.pop();
    r.push(x);
  }
  // " ' " → "'"
  a = r;
  r = a.length ? [a[0]!] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    if (x === Q && i + 1 < a.length && a[i - 1] === SP && a[i + 1] === SP) {
      r.pop();
      r.push(x);
      a[++i] = 0; // and the space after it (llama.cpp NULs it, so it no longer counts as a space)
      continue;
    }
    r.push(x);
  }
  // " 's", " 'm", " 're", " 've" → drop the space
  a = r;
  r = a.length ? [a[0]!] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    if (a[i - 1] === SP && x === Q && i + 1 < a.length) {
      const x1 = a[i + 1]!;
      const x2 = i + 2 < a.length ? a[i + 2] : undefined;
      if (x1 === 0x73 || x1 === 0x6d || (x2 !== undefined && ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)))) {
        r.pop();
      }
    }
    r.push(x);
  }
  return Uint8Array.from(r);
}
