// Token-exact conformance with llama.cpp: the shared llama-tiny fixture, and committed snapshots of
// llama.cpp's output (test/fixtures/tokenizer/make-oracle.ts) for an SPM and a byte-level BPE vocabulary.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { makeBpeGGUF } from '../fixtures/tokenizer/make-bpe-gguf.ts';
import type { Snapshot } from '../fixtures/tokenizer/make-oracle.ts';
import { BPE_MODEL, SPM_MODEL, diffs, ggufMeta, loadTokenizer, readJSON } from './helpers.ts';

const fixture = (name: string) => new URL(`../fixtures/tokenizer/${name}`, import.meta.url);

describe('llama-tiny fixture (strings.json vs tiny-f32.llama.json)', () => {
  const tok = loadTokenizer(SPM_MODEL);
  const strings = readJSON<string[]>('/work/shared/fixtures/llama-tiny/strings.json');
  const ref = readJSON<{ tokenization: { ids: number[]; ids_special: number[] }[] }>(
    '/work/shared/fixtures/llama-tiny/tiny-f32.llama.json',
  );
  it('ids with special parsing off', () => {
    assert.equal(strings.length, ref.tokenization.length);
    const bad = diffs(strings.length, (i) => tok.encode(strings[i]!), (i) => ref.tokenization[i]!.ids, (i) => JSON.stringify(strings[i]));
    assert.deepEqual(bad, []);
  });
  it('ids with special parsing on', () => {
    const bad = diffs(
      strings.length,
      (i) => tok.encode(strings[i]!, { parseSpecial: true }),
      (i) => ref.tokenization[i]!.ids_special,
      (i) => JSON.stringify(strings[i]),
    );
    assert.deepEqual(bad, []);
  });
});

function checkSnapshot(tok: Tokenizer, snap: Snapshot) {
  const n = snap.strings.length;
  const label = (i: number) => JSON.stringify(snap.strings[i]);
  it(`encode, special parsing off (${n} strings)`, () => {
    assert.ok(n >= 1000);
    assert.deepEqual(diffs(n, (i) => tok.encode(snap.strings[i]!), (i) => snap.ids[i], label), []);
  });
  it(`encode, special parsing on (${n} strings)`, () => {
    assert.deepEqual(diffs(n, (i) => tok.encode(snap.strings[i]!, { parseSpecial: true }), (i) => snap.ids_special[i], label), []);
  });
  it('decode of those ids (special tokens skipped / rendered)', () => {
    assert.deepEqual(diffs(n, (i) => tok.decode(snap.ids[i]!, { skipSpecial: true }), (i) => snap.text[i], label), []);
    assert.deepEqual(diffs(n, (i) => tok.decode(snap.ids_special[i]!), (i) => snap.text_special[i], label), []);
  });
  it(`decode of ${snap.random_ids.length} random id sequences (split UTF-8, control tokens)`, () => {
    const m = snap.random_ids.length;
    const rl = (i: number) => JSON.stringify(snap.random_ids[i]);
    assert.deepEqual(diffs(m, (i) => tok.decode(snap.random_ids[i]!, { skipSpecial: true }), (i) => snap.random_text[i], rl), []);
    assert.deepEqual(diffs(m, (i) => tok.decode(snap.random_ids[i]!), (i) => snap.random_text_special[i], rl), []);
  });
}

describe('SPM snapshot (llama-tiny vocabulary, seeded strings)', () => {
  checkSnapshot(loadTokenizer(SPM_MODEL), readJSON<Snapshot>(fixture('oracle-spm.json')));
});

describe('byte-level BPE snapshot (trained vocabulary, pre = smollm)', () => {
  checkSnapshot(loadTokenizer(BPE_MODEL), readJSON<Snapshot>(fixture('oracle-bpe.json')));
});

describe('byte-level BPE under other pre-tokenizers', () => {
  const meta = ggufMeta(BPE_MODEL);
  const snap = readJSON<{
    strings: string[];
    variants: Record<string, { ids: number[][]; ids_special: number[][]; text: string[] }>;
  }>(fixture('oracle-bpe-pre.json'));
  for (const [pre, v] of Object.entries(snap.variants)) {
    it(`pre = ${pre}: encode (both modes) and decode`, () => {
      const tok = Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.pre': pre });
      const n = snap.strings.length;
      const label = (i: number) => JSON.stringify(snap.strings[i]);
      assert.deepEqual(diffs(n, (i) => tok.encode(snap.strings[i]!), (i) => v.ids[i], label), []);
      assert.deepEqual(diffs(n, (i) => tok.encode(snap.strings[i]!, { parseSpecial: true }), (i) => v.ids_special[i], label), []);
      assert.deepEqual(diffs(n, (i) => tok.decode(v.ids[i]!, { skipSpecial: true }), (i) => v.text[i], label), []);
    });
  }
});

describe('BPE fixture file', () => {
  it('is reproduced byte for byte by make-bpe-gguf.ts (trainer and writer are deterministic)', () => {
    assert.deepEqual(makeBpeGGUF(), new Uint8Array(readFileSync(BPE_MODEL)));
  });
});
