/**
 * Byte-level BPE, as llama.cpp's `llm_tokenizer_bpe_session`: pre-tokenize, map each piece's UTF-8 bytes to
 * the GPT-2 alphabet, repeatedly apply the lowest-rank merge (ties → leftmost), then look the symbols up.
 */
import { Heap } from './heap.ts';
import { preTokenize } from './pretokenize.ts';
import { bytesToGpt2, utf8Encode } from './unicode.ts';
import type { Vocab } from './vocab.ts';

interface Bigram {
  left: number;
  right: number;
  text: string;
  rank: number;
}

/** Token ids of recently seen words, per vocabulary (words repeat endlessly in real text). */
const wordCache = new WeakMap<Vocab, Map<string, readonly number[]>>();
const WORD_CACHE_MAX = 1 << 16;

/** Tokenizes one raw-text fragment. Appends to `out`. */
export function bpeTokenize(vocab: Vocab, text: string, out: number[]): void {
  const pre = vocab.pre!;
  let cache = wordCache.get(vocab);
  if (!cache) wordCache.set(vocab, (cache = new Map()));
  for (const raw of preTokenize(text, pre.regexes)) {
    const hit = cache.get(raw);
    if (hit) {
      for (const id of hit) out.push(id);
      continue;
    }
    const ids = wordIds(vocab, bytesToGpt2(raw));
    if (cache.size >= WORD_CACHE_MAX) cache.clear();
    cache.set(raw, ids);
    for (const id of ids) out.push(id);
  }
}

function wordIds(vocab: Vocab, word: string): number[] {
  const out: number[] = [];
  if (vocab.pre!.ignoreMerges && vocab.tokenToId.has(word)) return [vocab.tokenToId.get(word)!];
  for (const piece of mergeWord(vocab, word)) {
    const id = vocab.tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    // llama.cpp looks each UTF-8 byte of the symbol up as a one-byte string; only ASCII can match.
    for (const b of utf8Encode(piece)) {
      const bt = b < 0x80 ? vocab.tokenToId.get(String.fromCharCode(b)) : undefined;
      if (bt !== undefined) out.push(bt);
    }
  }
  return out;
}

/** The symbols of one GPT-2-alphabet word after all merges (every character is in the BMP here). */
export function mergeWord(vocab: Vocab, word: string): string[] {
  const n = word.length;
  const start = Array.from({ length: n }, (_, i) => i);
  const len = new Array<number>(n).fill(1);
  const prev = start.map((i) => i - 1);
  const next = start.map((i) => (i + 1 < n ? i + 1 : -1));
  const sym = (i: number) => word.slice(start[i]!, start[i]! + len[i]!);
  const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
  const tryAdd = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const l = sym(left);
    const r = sym(right);
    const rank = vocab.mergeRanks.get(`${l}\0${r}`);
    if (rank !== undefined) queue.push({ left, right, text: l + r, rank });
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  for (let bg = queue.pop(); bg; bg = queue.pop()) {
    if (len[bg.left] === 0 || len[bg.right] === 0) continue;
    if (sym(bg.left) + sym(bg.right) !== bg.text) continue; // outdated
    len[bg.left]! += len[bg.right]!;
    len[bg.right] = 0;
    next[bg.left] = next[bg.right]!;
    if (next[bg.right]! >= 0) prev[next[bg.right]!] = bg.left;
    tryAdd(prev[bg.left]!, bg.left);
    tryAdd(bg.left, next[bg.left]!);
  }
  const pieces: string[] = [];
  for (let i = 0; i < n; i++) if (len[i]! > 0) pieces.push(sym(i));
  return pieces;
}
