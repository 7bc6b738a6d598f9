// llama.cpp conformance on ../shared/fixtures/llama-tiny: logits per position and greedy continuation.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readGGUF } from '../../src/formats/gguf.ts';
import { loadLlamaGGUF } from '../../src/runtime/gguf-llama.ts';
import { noGrad, tidy, argmax } from '../../src/tensor/index.ts';
import { initBackend } from '../../src/backend/index.ts';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/llama-tiny');

interface Ref {
  tokens: number[];
  logits_first16_per_position: number[][];
  logits_last_position: number[];
  argmax_per_position: number[];
  greedy_continuation_32: number[];
}

for (const [file, tol] of [['tiny-f32', 1e-4], ['tiny-q8_0', 2e-3]] as const) {
  describe(`llama.cpp fixture ${file}`, () => {
    const ref = JSON.parse(readFileSync(path.join(FIX, `${file}.llama.json`), 'utf8')) as Ref;
    before(() => initBackend());
    test('logits of every position match llama.cpp', () => {
      const model = loadLlamaGGUF(readGGUF(readFileSync(path.join(FIX, `${file}.gguf`))));
      const V = model.config.vocab_size;
      const T = ref.tokens.length;
      const logits = noGrad(() => model.forward(ref.tokens)).toArray(); // (1, T, V)
      let worst = 0;
      for (let p = 0; p < T; p++)
        for (let i = 0; i < 16; i++) worst = Math.max(worst, Math.abs(logits[p * V + i]! - ref.logits_first16_per_position[p]![i]!));
      for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(logits[(T - 1) * V + i]! - ref.logits_last_position[i]!));
      assert.ok(worst < tol, `max |Δlogit| ${worst} ≥ ${tol}`);
      const am = Array.from(argmax(noGrad(() => model.forward(ref.tokens))));
      assert.deepEqual(am, ref.argmax_per_position);
    });
    test('greedy continuation with the KV cache matches token for token', () => {
      const model = loadLlamaGGUF(readGGUF(readFileSync(path.join(FIX, `${file}.gguf`))));
      const n = ref.greedy_continuation_32.length;
      const cache = model.newCache(1, ref.tokens.length + n);
      const out: number[] = [];
      noGrad(() => {
        let next = tidy(() => {
          const l = model.forward(ref.tokens, 1, { pos0: 0, cache });
          return argmax(l)[ref.tokens.length - 1]!;
        });
        let pos = ref.tokens.length;
        for (let i = 0; i < n; i++) {
          out.push(next);
          const id = next;
          next = tidy(() => argmax(model.forward([id], 1, { pos0: pos, cache }))[0]!);
          pos++;
        }
      });
      assert.deepEqual(out, ref.greedy_continuation_32);
    });
  });
}
