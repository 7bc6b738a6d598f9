/**
 * A small, deterministic byte-level BPE trainer for vista's own models. It produces GGUF tokenizer metadata
 * (`tokenizer.ggml.model = gpt2`) that llama.cpp and `Tokenizer.fromGGUFMetadata` both load.
 *
 * Layout: special tokens first (ids 0..S-1, type CONTROL), then the 256 byte tokens in byte order (GPT-2
 * alphabet, type NORMAL), then one token per learned merge.
 *
 * @example
 * const meta = trainBPE(corpus, { vocabSize: 1024, specialTokens: ['<s>', '</s>', '<image>'] });
 * const tok = Tokenizer.fromGGUFMetadata(meta);
 */
import { ConfigError, InputError } from '../errors.ts';
import { preTokenize, preTokenizerFor } from './pretokenize.ts';
import { byteToChar, bytesToGpt2 } from './unicode.ts';
import { TokenType } from './vocab.ts';
import { DEFAULT_CHAT_TEMPLATE } from './chat-template.ts';

export interface TrainBPEOptions {
  /** Total number of tokens including specials and the 256 bytes. */
  vocabSize: number;
  /** Special tokens, CONTROL type, in id order. Default `['<s>', '</s>', '<unk>', '<image>', '<|im_start|>', '<|im_end|>']`. */
  specialTokens?: string[];
  /** `tokenizer.ggml.pre` value; default `smollm` (digits split, GPT-2 words). */
  pre?: string;
  /** Stop when the best pair occurs fewer times. Default 2. */
  minFrequency?: number;
  /** Chat template stored as `tokenizer.chat_template`; default vista's ChatML template. */
  chatTemplate?: string;
}

export const DEFAULT_SPECIAL_TOKENS = ['<s>', '</s>', '<unk>', '<image>', '<|im_start|>', '<|im_end|>'];

/** Trains merges on `texts`; returns GGUF tokenizer metadata. Same inputs → same output. */
export function trainBPE(texts: string[], opts: TrainBPEOptions): Record<string, string | number | boolean | string[] | number[]> {
  const specials = opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  const preName = opts.pre ?? 'smollm';
  const pre = preTokenizerFor(preName);
  const minFrequency = opts.minFrequency ?? 2;
  if (new Set(specials).size !== specials.length) throw new ConfigError(`trainBPE: duplicate special tokens in ${JSON.stringify(specials)}`);
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < specials.length + 256) {
    throw new ConfigError(`trainBPE: vocabSize ${opts.vocabSize} must be an integer ≥ ${specials.length + 256} (specials + 256 bytes)`);
  }
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) throw new InputError('trainBPE: texts must be an array of strings');

  // Word frequencies over pre-tokens (special-token text is not learned from).
  const counts = new Map<string, number>();
  for (const text of texts) {
    let pieces = [text];
    for (const s of specials) pieces = pieces.flatMap((p) => p.split(s));
    for (const p of pieces) {
      for (const w of preTokenize(p, pre.regexes)) {
        const g = bytesToGpt2(w);
        counts.set(g, (counts.get(g) ?? 0) + 1);
      }
    }
  }
  const words = [...counts.keys()].sort();
  const freq = words.map((w) => counts.get(w)!);
  const syms: string[][] = words.map((w) => [...w]);

  const tokens = [...specials];
  for (let b = 0; b < 256; b++) tokens.push(byteToChar(b));
  const known = new Set(tokens);
  const merges: string[] = [];

  while (tokens.length < opts.vocabSize) {
    const pairCount = new Map<string, number>();
    for (let w = 0; w < syms.length; w++) {
      const s = syms[w]!;
      for (let i = 0; i + 1 < s.length; i++) {
        const key = `${s[i]}\0${s[i + 1]}`;
        pairCount.set(key, (pairCount.get(key) ?? 0) + freq[w]!);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, c] of pairCount) {
      if (c > bestCount || (c === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [l, r] = best.split('\0') as [string, string];
    const merged = l + r;
    merges.push(`${l} ${r}`);
    if (!known.has(merged)) {
      known.add(merged);
      tokens.push(merged);
    }
    for (const s of syms) {
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === l && s[i + 1] === r) s.splice(i, 2, merged);
      }
    }
  }

  const id = (t: string) => specials.indexOf(t);
  const meta: Record<string, string | number | boolean | string[] | number[]> = {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': preName,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': tokens.map((_, i) => (i < specials.length ? TokenType.CONTROL : TokenType.NORMAL)),
    'tokenizer.ggml.merges': merges,
  };
  if (id('<s>') >= 0) meta['tokenizer.ggml.bos_token_id'] = id('<s>');
  if (id('</s>') >= 0) meta['tokenizer.ggml.eos_token_id'] = id('</s>');
  if (id('<unk>') >= 0) meta['tokenizer.ggml.unknown_token_id'] = id('<unk>');
  if (id('<pad>') >= 0) meta['tokenizer.ggml.padding_token_id'] = id('<pad>');
  meta['tokenizer.ggml.add_bos_token'] = id('<s>') >= 0;
  meta['tokenizer.ggml.add_eos_token'] = false;
  meta['tokenizer.chat_template'] = opts.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
  return meta;
}
