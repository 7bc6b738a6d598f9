// generate() on the llama.cpp tiny fixture (../shared/fixtures/llama-tiny) and on a small random Llama:
// greedy continuation token for token, stop tokens and strings, limits, aborts, UTF-8-safe deltas.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readGGUF } from '../../src/formats/gguf.ts';
import { loadLlamaGGUF } from '../../src/runtime/gguf-llama.ts';
import { generate, greedyTokens, type GenerateOptions, type GenerationEvent, type Prompt } from '../../src/runtime/generate.ts';
import { StopStrings } from '../../src/runtime/stop.ts';
import type { LogitsHook } from '../../src/runtime/sampler.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { Llama } from '../../src/models/llama.ts';
import type { KVCache } from '../../src/nn/attention.ts';
import { noGrad } from '../../src/tensor/index.ts';
import { InputError } from '../../src/errors.ts';
import { initBackend, type BackendName } from '../../src/backend/index.ts';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/llama-tiny');
const ref = JSON.parse(readFileSync(path.join(FIX, 'tiny-f32.llama.json'), 'utf8')) as { tokens: number[]; greedy_continuation_32: number[] };

async function run(model: Llama, prompt: Prompt, opts: GenerateOptions) {
  const events: GenerationEvent[] = [];
  for await (const ev of generate(model, prompt, opts)) events.push(ev);
  const done = events.at(-1)!;
  assert.equal(done.type, 'done');
  assert.equal(events.filter((e) => e.type === 'done').length, 1);
  const tokens = events.flatMap((e) => (e.type === 'token' ? [e] : []));
  return {
    ids: tokens.map((e) => e.id),
    deltas: tokens.map((e) => e.text),
    text: events.map((e) => e.text).join(''),
    done: done as Extract<GenerationEvent, { type: 'done' }>,
  };
}

/** A mask that forces the given tokens, one per step (greedy sampling then picks them). */
function script(ids: readonly number[]): LogitsHook {
  let i = 0;
  return (logits) => {
    const want = ids[Math.min(i++, ids.length - 1)]!;
    logits.fill(-Infinity);
    logits[want] = 0;
  };
}

/** Records the caches `newCache` hands out, to check they are freed. */
function spyCaches(model: Llama): KVCache[] {
  const made: KVCache[] = [];
  const orig = model.newCache.bind(model);
  model.newCache = (B, capacity) => {
    const c = orig(B, capacity);
    made.push(c);
    return c;
  };
  return made;
}
const freed = (c: KVCache) => c.layers.every((l) => l.k.storage.freed && l.v.storage.freed);

before(() => initBackend({ name: (process.env.VISTA_BACKEND as BackendName | undefined) ?? 'ref' }));

describe('generate on the llama.cpp tiny fixture', () => {
  const file = readGGUF(readFileSync(path.join(FIX, 'tiny-f32.gguf')));
  const model = loadLlamaGGUF(file);
  const tok = Tokenizer.fromGGUFMetadata(file.metadata);
  const greedy = { temperature: 0 } as const;
  const bytes = (s: string) => Array.from(new TextEncoder().encode(s), (b) => tok.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!);

  test('greedy continuation equals llama.cpp token for token', async (t) => {
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: greedy, maxTokens: 32 });
    assert.deepEqual(r.ids, ref.greedy_continuation_32);
    assert.equal(r.done.finishReason, 'length');
    assert.equal(r.text, tok.decode(ref.greedy_continuation_32));
    const s = r.done.stats;
    assert.equal(s.promptTokens, ref.tokens.length);
    assert.equal(s.completionTokens, 32);
    for (const k of ['prefillMs', 'prefillTokensPerS', 'decodeTokensPerS', 'timeToFirstTokenMs'] as const)
      assert.ok(Number.isFinite(s[k]) && s[k] > 0, `${k} = ${s[k]}`);
    t.diagnostic(`prefill ${s.prefillTokensPerS.toFixed(0)} tok/s, decode ${s.decodeTokensPerS.toFixed(1)} tok/s, ttft ${s.timeToFirstTokenMs.toFixed(1)} ms`);
    assert.deepEqual(greedyTokens(model, ref.tokens, 32), ref.greedy_continuation_32);
  });

  test('chunked prefill and an embeddings prompt give the same continuation', async () => {
    const chunked = await run(model, { ids: ref.tokens }, { sampler: greedy, maxTokens: 8, batchSize: 3 });
    assert.deepEqual(chunked.ids, ref.greedy_continuation_32.slice(0, 8));
    const embeddings = noGrad(() => model.embed(ref.tokens)); // (1, T, E)
    const viaEmb = await run(model, { embeddings }, { sampler: greedy, maxTokens: 8, batchSize: 7, imageEncodeMs: 12.5 });
    assert.deepEqual(viaEmb.ids, ref.greedy_continuation_32.slice(0, 8));
    assert.equal(viaEmb.done.stats.imageEncodeMs, 12.5);
  });

  test('maxTokens ends with length', async () => {
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: greedy, maxTokens: 5 });
    assert.deepEqual(r.ids, ref.greedy_continuation_32.slice(0, 5));
    assert.equal(r.done.finishReason, 'length');
    assert.equal(r.done.stats.completionTokens, 5);
  });

  test('a stop string split across tokens is never emitted', async () => {
    // the continuation reads 'p' ' br' '#' ' gp' …: 'r# g' spans three tokens
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: greedy, maxTokens: 32, stopStrings: ['zzz', 'r# g'] });
    assert.deepEqual(r.deltas, ['p', ' b', '', '']);
    assert.equal(r.text, 'p b');
    assert.equal(r.done.finishReason, 'stop');
    assert.deepEqual(r.done.stoppedBy, { string: 'r# g' });
    assert.deepEqual(r.ids, ref.greedy_continuation_32.slice(0, 4));
  });

  test('held-back text is released when generation ends otherwise', async () => {
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: greedy, maxTokens: 2, stopStrings: ['r!'] });
    assert.deepEqual(r.deltas, ['p', ' b']);
    assert.equal(r.done.text, 'r');
    assert.equal(r.text, 'p br');
  });

  test('stop tokens: EOS ends with stop and is not emitted; ignoreEos and stopTokens', async () => {
    const forced = [...tok.encode('ab'), tok.eosId, ...tok.encode('cd')];
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: { temperature: 0, mask: script(forced) }, maxTokens: 10 });
    assert.equal(r.done.finishReason, 'stop');
    assert.deepEqual(r.done.stoppedBy, { token: tok.eosId });
    assert.deepEqual(r.ids, tok.encode('ab'));
    assert.equal(r.text, ' ab');
    assert.equal(r.done.stats.completionTokens, r.ids.length + 1);
    const ign = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: { temperature: 0, mask: script(forced) }, maxTokens: forced.length, ignoreEos: true });
    assert.deepEqual(ign.ids, forced);
    assert.equal(ign.done.finishReason, 'length');
    const st = await run(model, { ids: ref.tokens }, { sampler: greedy, maxTokens: 32, stopTokens: [ref.greedy_continuation_32[3]!] });
    assert.deepEqual(st.ids, ref.greedy_continuation_32.slice(0, 3));
    assert.deepEqual(st.done.stoppedBy, { token: ref.greedy_continuation_32[3] });
  });

  test('deltas never split a UTF-8 character, even with a stop string inside one', async () => {
    const forced = bytes('é€😀');
    assert.ok(forced.every((id) => id !== undefined));
    const r = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: { temperature: 0, mask: script(forced) }, maxTokens: forced.length });
    assert.deepEqual(r.deltas, ['', 'é', '', '', '€', '', '', '', '😀']);
    assert.equal(r.text, 'é€😀');
    const s = await run(model, { ids: ref.tokens }, { tokenizer: tok, sampler: { temperature: 0, mask: script(forced) }, maxTokens: 20, stopStrings: ['€'] });
    assert.equal(s.text, 'é');
    assert.equal(s.done.finishReason, 'stop');
    assert.equal(s.ids.length, 5);
  });

  test('abort mid-generation ends with abort and frees the cache', async () => {
    const caches = spyCaches(model);
    const ac = new AbortController();
    const events: GenerationEvent[] = [];
    for await (const ev of generate(model, { ids: ref.tokens }, { sampler: greedy, maxTokens: 32, signal: ac.signal })) {
      events.push(ev);
      if (events.length === 3) ac.abort();
    }
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && done.finishReason === 'abort');
    assert.equal(events.length, 4);
    assert.equal(caches.length, 1);
    assert.ok(freed(caches[0]!), 'KV cache freed');
    // breaking out of the loop frees it too
    for await (const ev of generate(model, { ids: ref.tokens }, { sampler: greedy, maxTokens: 32 })) if (ev.type === 'token') break;
    assert.equal(caches.length, 2);
    assert.ok(freed(caches[1]!));
  });

  test('an already aborted signal stops before the prefill', async () => {
    const r = await run(model, { ids: ref.tokens }, { sampler: greedy, signal: AbortSignal.abort() });
    assert.equal(r.done.finishReason, 'abort');
    assert.deepEqual(r.ids, []);
  });
});

describe('generate limits on a small random Llama', () => {
  const config = {
    vocab_size: 40, context_length: 16, embedding_length: 16, block_count: 1, feed_forward_length: 32,
    'attention.head_count': 2, 'attention.head_count_kv': 1, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000,
  };
  const model = new Llama(config, 3);
  const ids = (n: number) => Array.from({ length: n }, (_, i) => (i * 7) % 40);

  test('capacity is capped by the context length', async () => {
    const r = await run(model, { ids: ids(12) }, { sampler: { temperature: 0.9, seed: 1 }, maxTokens: 100 });
    assert.equal(r.ids.length, 16 - 12 + 1); // the last token is sampled from position 15's logits
    assert.equal(r.done.finishReason, 'length');
    const full = await run(model, { ids: ids(16) }, { sampler: { temperature: 0 }, maxTokens: 3 });
    assert.equal(full.ids.length, 1);
  });

  test('prompt errors are InputErrors with the numbers', async () => {
    await assert.rejects(run(model, { ids: ids(17) }, {}), (e: Error) => e instanceof InputError && /17 tokens exceeds .* 16/.test(e.message));
    await assert.rejects(run(model, { ids: [] }, {}), InputError);
    await assert.rejects(run(model, { ids: [1, 40] }, {}), InputError);
    await assert.rejects(run(model, { ids: [1] }, { stopStrings: ['x'] }), InputError);
  });

  test('an abort from a timer lands between steps (the loop yields to the event loop)', async () => {
    const m = new Llama({ ...config, context_length: 100000 }, 3);
    const caches = spyCaches(m);
    const signal = AbortSignal.timeout(30);
    const r = await run(m, { ids: ids(4) }, { sampler: { temperature: 1, seed: 2 }, maxTokens: 100000, signal });
    assert.equal(r.done.finishReason, 'abort');
    assert.ok(r.ids.length < 100000);
    assert.ok(freed(caches[0]!));
  });

  test('sampling with a seed is reproducible', async () => {
    const opts = { sampler: { temperature: 1.5, topK: 0, topP: 1, minP: 0, seed: 9 }, maxTokens: 4 };
    const a = await run(model, { ids: ids(3) }, opts);
    const b = await run(model, { ids: ids(3) }, opts);
    assert.deepEqual(a.ids, b.ids);
  });
});

describe('StopStrings', () => {
  test('holds back possible prefixes, picks the earliest stop, releases on flush', () => {
    const s = new StopStrings(['\nUser:', 'END']);
    assert.deepEqual(s.push('Hi!\nUs'), { text: 'Hi!', stop: null });
    assert.deepEqual(s.push('e'), { text: '', stop: null });
    assert.deepEqual(s.push('d it'), { text: '\nUsed it', stop: null });
    assert.deepEqual(s.push(' EN'), { text: ' ', stop: null });
    assert.equal(s.flush(), 'EN');
    const t = new StopStrings(['bc', 'abcd']);
    assert.deepEqual(t.push('xabcd'), { text: 'x', stop: 'abcd' }); // earliest start wins
    assert.deepEqual(t.push('more'), { text: '', stop: null });
    assert.equal(t.flush(), '');
    assert.throws(() => new StopStrings(['']), InputError);
  });
});
