/**
 * SentencePiece-style BPE over a scored vocabulary, as llama.cpp's `llm_tokenizer_spm_session`:
 * split into characters, repeatedly merge the adjacent pair whose concatenation is a token with the highest
 * score (ties → leftmost), then emit ids, falling back to `<0xXX>` byte tokens for unknown pieces.
 */
import { Heap } from './heap.ts';
import { utf8Encode } from './unicode.ts';
import type { Vocab } from './vocab.ts';

interface Sym {
  start: number; // UTF-16 offset into the text
  n: number; // UTF-16 length; 0 once merged into its left neighbour
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** Id of the byte-fallback token for `b`, or -1 (llama.cpp would throw; we let the caller use UNK). */
export function spmByteToken(vocab: Vocab, b: number): number {
  const hex = b.toString(16).toUpperCase().padStart(2, '0');
  return vocab.tokenToId.get(`<0x${hex}>`) ?? (b < 0x80 ? (vocab.tokenToId.get(String.fromCharCode(b)) ?? -1) : -1);
}

/** Tokenizes one raw-text fragment whose spaces are already escaped to U+2581. Appends to `out`. */
export function spmTokenize(vocab: Vocab, text: string, out: number[]): void {
  const syms: Sym[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    const len = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
    syms.push({ start: i, n: len, prev: syms.length - 1, next: i + len >= text.length ? -1 : syms.length + 1 });
    i += len;
  }
  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const tryAdd = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const l = syms[left]!;
    const piece = text.slice(l.start, l.start + l.n + syms[right]!.n);
    const id = vocab.tokenToId.get(piece);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id]!, size: piece.length });
  };
  for (let i = 1; i < syms.length; i++) tryAdd(i - 1, i);

  for (let bg = queue.pop(); bg; bg = queue.pop()) {
    const l = syms[bg.left]!;
    const r = syms[bg.right]!;
    if (l.n === 0 || r.n === 0 || l.n + r.n !== bg.size) continue; // stale: one side already merged
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next]!.prev = bg.left;
    tryAdd(l.prev, bg.left);
    tryAdd(bg.left, l.next);
  }

  for (let i = syms.length ? 0 : -1; i !== -1; i = syms[i]!.next) {
    const s = syms[i]!;
    const piece = text.slice(s.start, s.start + s.n);
    const id = vocab.tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    // Every merged piece is a token, so only single characters get here: emit their UTF-8 bytes.
    for (const b of utf8Encode(piece)) {
      const bt = spmByteToken(vocab, b);
      out.push(bt >= 0 ? bt : vocab.unkId); // llama.cpp aborts here; SentencePiece's answer is UNK (always set for SPM)
    }
  }
}
