import { readFileSync } from 'node:fs';
import { readGGUF } from '../../src/formats/gguf.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';

export const SPM_MODEL = '/work/shared/fixtures/llama-tiny/tiny-f32.gguf';
export const BPE_MODEL = new URL('../fixtures/tokenizer/bpe-smollm.gguf', import.meta.url).pathname;

export function ggufMeta(path: string): Record<string, unknown> {
  return readGGUF(new Uint8Array(readFileSync(path))).metadata as Record<string, unknown>;
}

export function loadTokenizer(path: string): Tokenizer {
  return Tokenizer.fromGGUFMetadata(ggufMeta(path));
}

export function readJSON<T>(url: URL | string): T {
  return JSON.parse(readFileSync(url, 'utf8')) as T;
}

/** Indices where `got` differs from `want`, with a short description of the first few. */
export function diffs<T>(n: number, got: (i: number) => T, want: (i: number) => T, label: (i: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const g = JSON.stringify(got(i));
    const w = JSON.stringify(want(i));
    if (g !== w) out.push(`${label(i)}: got ${g.slice(0, 200)} want ${w.slice(0, 200)}`);
  }
  return out;
}
