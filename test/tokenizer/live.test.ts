// Live comparison with llama.cpp through node-llama-cpp, on fresh seeded strings (different seeds from the
// committed snapshots). Skips when the native addon does not load.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Tokenizer } from '../../src/tokenizer/index.ts';
import { conformanceStrings } from '../fixtures/tokenizer/gen-strings.ts';
import { makeBpeGGUF } from '../fixtures/tokenizer/make-bpe-gguf.ts';
import { loadOracle, type Oracle } from '../fixtures/tokenizer/oracle.ts';
import { BPE_MODEL, SPM_MODEL, diffs, loadTokenizer } from './helpers.ts';

const probe = await loadOracle(SPM_MODEL);
const skip = probe ? false : 'node-llama-cpp native addon not available';
await probe?.dispose();

function compare(name: string, model: string, tok: () => Tokenizer, seed: number, count: number) {
  it(`${name}: ${count} fresh strings, encode both modes + decode`, { skip }, async () => {
    const oracle = (await loadOracle(model)) as Oracle;
    try {
      const t = tok();
      const strings = conformanceStrings(seed, count);
      const label = (i: number) => JSON.stringify(strings[i]);
      const want = strings.map((s) => oracle.tokenize(s, false));
      assert.deepEqual(diffs(count, (i) => t.encode(strings[i]!), (i) => want[i], label), []);
      assert.deepEqual(diffs(count, (i) => t.encode(strings[i]!, { parseSpecial: true }), (i) => oracle.tokenize(strings[i]!, true), label), []);
      assert.deepEqual(diffs(count, (i) => t.decode(want[i]!, { skipSpecial: true }), (i) => oracle.detokenize(want[i]!, false), label), []);
    } finally {
      await oracle.dispose();
    }
  });
}

describe('live llama.cpp comparison', () => {
  compare('SPM (llama-tiny)', SPM_MODEL, () => loadTokenizer(SPM_MODEL), 7, 1000);
  compare('BPE (smollm)', BPE_MODEL, () => loadTokenizer(BPE_MODEL), 8, 1000);
  const dir = mkdtempSync(path.join(tmpdir(), 'vista-tok-live-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const pre of ['llama-bpe', 'qwen2', 'default']) {
    const file = path.join(dir, `bpe-${pre}.gguf`);
    writeFileSync(file, makeBpeGGUF(pre));
    compare(`BPE (${pre})`, file, () => loadTokenizer(file), 9, 400);
  }
});
