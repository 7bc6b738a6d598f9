// The prompt cache and image-embedding cache of VisionLanguageModel: every call with the caches on gives
// the same logits (bit for bit on the ref backend; within float tolerance on wasm, whose kernels group rows
// differently for 1 and T positions) and the same answers as a model without them, whatever the previous
// call left behind: a growing dialogue, an earlier divergence, another image, a shorter prompt, aborts in
// prefill and in decoding, and overlapping calls.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readGGUF } from '../../src/formats/gguf.ts';
import { loadVlmGGUF } from '../../src/runtime/gguf-vlm.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { VisionLanguageModel, type ChatOptions, type Message, type RuntimeCacheOptions } from '../../src/runtime/vlm.ts';
import type { GenerationEvent, GenerationStats } from '../../src/runtime/generate.ts';
import { ImageEmbeddingCache, reusablePrefix } from '../../src/runtime/prompt-cache.ts';
import { tokenizeConversation } from '../../src/runtime/conversation.ts';
import type { RGBImage } from '../../src/image/index.ts';
import { initBackend, type BackendName } from '../../src/backend/index.ts';
import { writeTinyVlm } from '../helpers/tiny-vlm.ts';
import { assertClose } from '../helpers/backends.ts';

const BACKEND = (process.env.VISTA_BACKEND as BackendName | undefined) ?? 'ref';
/** ref runs the same arithmetic whatever the chunking; wasm's matmul tiles differ for 1 row and many. */
const ATOL = BACKEND === 'ref' ? 0 : 1e-5;

let cached: VisionLanguageModel; // caches on
let plain: VisionLanguageModel; // caches off: every call from scratch
let N: number;

before(async () => {
  const files = await writeTinyVlm();
  initBackend({ name: BACKEND, threads: 1 });
  const load = (caches: RuntimeCacheOptions) => {
    const lm = readGGUF(readFileSync(files.model));
    const vlm = loadVlmGGUF(lm, readGGUF(readFileSync(files.mmproj)));
    return new VisionLanguageModel(vlm.lm, vlm, Tokenizer.fromGGUFMetadata(lm.metadata), undefined, caches);
  };
  cached = load({ cachePrompt: true, imageCache: {} });
  plain = load({});
  N = cached.imageTokensPerImage;
});

/** A 40×30 image with a colour and a pattern (so different seeds give different pixels). */
function image(r: number, g: number, b: number, seed = 0): RGBImage {
  return { width: 40, height: 30, data: Uint8Array.from({ length: 40 * 30 * 3 }, (_, i) => [r, g, b][i % 3]! ^ ((i + seed) % 7)) };
}
const RED = image(220, 40, 40);
const BLUE = image(40, 40, 220);
const GREEN = image(40, 200, 40, 3);

interface Answer {
  text: string;
  ids: number[];
  logits: Float32Array[];
  stats: GenerationStats;
  finish: string;
}

async function answer(m: VisionLanguageModel, messages: readonly Message[], opts: ChatOptions = {}): Promise<Answer> {
  const logits: Float32Array[] = [];
  const ids: number[] = [];
  let text = '';
  let done: Extract<GenerationEvent, { type: 'done' }> | null = null;
  const sampler = { temperature: 0, mask: (l: Float32Array) => void logits.push(l.slice()) };
  for await (const e of m.chat(messages, { maxTokens: 6, sampler, ...opts })) {
    text += e.text;
    if (e.type === 'token') ids.push(e.id);
    else done = e;
  }
  return { text, ids, logits, stats: done!.stats, finish: done!.finishReason };
}

function assertSame(a: Answer, b: Answer, what: string): void {
  assert.equal(a.text, b.text, `${what}: text`);
  assert.deepEqual(a.ids, b.ids, `${what}: ids`);
  assert.equal(a.logits.length, b.logits.length, `${what}: steps`);
  a.logits.forEach((l, i) => assertClose(l, b.logits[i]!, ATOL, 0, `${what}: logits of step ${i}`));
}

/** Answer with both models and check they agree; returns the cached model's answer. */
async function both(messages: readonly Message[], what: string, opts: ChatOptions = {}): Promise<Answer> {
  const ref = await answer(plain, messages, opts);
  const got = await answer(cached, messages, opts);
  assertSame(got, ref, what);
  assert.equal(got.stats.promptTokens, ref.stats.promptTokens);
  assert.equal(ref.stats.cachedTokens, 0);
  return got;
}

const user = (text: string, img?: RGBImage): Message =>
  ({ role: 'user', content: img ? [{ type: 'image', image: img }, { type: 'text', text }] : text });

/** Where the image of a one-message conversation `text` + image starts in the prompt. */
function imageStart(text: string): number {
  const conv = tokenizeConversation([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text }] }], plain.promptFormat(), { addGenerationPrompt: true });
  return conv.imageStarts[0]!;
}

describe(`prompt cache (${BACKEND})`, () => {
  test('a 4-turn dialogue with two images: each turn == from scratch; it reuses the turns before and encodes each image once', async () => {
    cached.clearCaches();
    const turns = [user('What color is the circle?', RED), user('How many objects are there?'), user('Describe the image.', BLUE), user('Is there a green star?')];
    const history: Message[] = [];
    let prevPrompt = 0;
    for (const [i, t] of turns.entries()) {
      history.push(t);
      const a = await both(history, `turn ${i + 1}`);
      const s = a.stats;
      if (i === 0) assert.equal(s.cachedTokens, 0);
      else {
        // the whole previous prompt and (at least) the answer's first fed tokens minus re-tokenisation
        assert.ok(s.cachedTokens! >= prevPrompt, `turn ${i + 1}: ${s.cachedTokens} cached of ${s.promptTokens}, previous prompt ${prevPrompt}`);
        assert.ok(s.cachedTokens! < s.promptTokens);
      }
      assert.equal(s.imagesEncoded, i === 0 || i === 2 ? 1 : 0, `turn ${i + 1}: images encoded`);
      assert.ok(s.prefillTokensPerS > 0);
      prevPrompt = s.promptTokens;
      history.push({ role: 'assistant', content: a.text });
    }
    assert.ok(cached.cachedPromptTokens > prevPrompt, 'the last conversation stays cached');
  });

  test('a conversation that diverges early reuses only the shared prefix', async () => {
    cached.clearCaches();
    const h = [user('What color is the circle?', RED), { role: 'assistant' as const, content: 'red' }, user('How many objects are there?')];
    const first = await both(h, 'first');
    const other = await both([user('Where is the small blue square?'), ...h.slice(1)], 'diverged');
    assert.ok(other.stats.cachedTokens! < first.stats.promptTokens / 2, `${other.stats.cachedTokens} cached`);
    assert.equal(other.stats.imagesEncoded, 0, 'no image in the new prompt');
  });

  test('another image at the same position: the prefix stops before that image; images already seen come from the image cache', async () => {
    cached.clearCaches();
    const q = 'What color is the circle?';
    const red = await both([user(q, RED)], 'red');
    const start = imageStart(q);
    const blue = await both([user(q, BLUE)], 'blue at the same place');
    assert.equal(blue.stats.cachedTokens, start, 'everything before the image');
    assert.equal(blue.stats.imagesEncoded, 1);
    assert.notEqual(red.logits[0]![0], blue.logits[0]![0]);
    const again = await both([user(q, RED)], 'red again');
    assert.equal(again.stats.imagesEncoded, 0, 'red is in the image cache');
    assert.equal(again.stats.cachedTokens, start);
  });

  test('a shorter prompt, and the same prompt twice: all but the last position is reused', async () => {
    cached.clearCaches();
    const one = [user('What color is the circle?', GREEN)];
    const a = await both(one, 'first');
    const h = [...one, { role: 'assistant' as const, content: a.text }, user('Is there a green star?')];
    await both(h, 'longer');
    const short = await both(one, 'shorter again');
    assert.equal(short.stats.cachedTokens, short.stats.promptTokens - 1);
    const same = await both(one, 'same again');
    assert.equal(same.stats.cachedTokens, same.stats.promptTokens - 1);
    assert.equal(same.stats.imagesEncoded, 0, 'the image is inside the reused prefix: not even looked up');
  });

  test('an abort while decoding leaves a consistent cache (prompt + fed tokens)', async () => {
    cached.clearCaches();
    const h = [user('Describe the image.', RED)];
    const ac = new AbortController();
    let got = 0;
    let done: Extract<GenerationEvent, { type: 'done' }> | null = null;
    for await (const e of cached.chat(h, { maxTokens: 20, sampler: { temperature: 0 }, ignoreEos: true, signal: ac.signal })) {
      if (e.type === 'token' && ++got === 3) ac.abort();
      if (e.type === 'done') done = e;
    }
    assert.equal(done!.finishReason, 'abort');
    assert.equal(cached.cachedPromptTokens, done!.stats.promptTokens + 2, 'tokens 1 and 2 were fed back, token 3 was not');
    const next = await both([...h, { role: 'assistant', content: 'red' }, user('How many objects are there?')], 'after abort');
    assert.ok(next.stats.cachedTokens! > 0);
  });

  test('an abort in the middle of prefill, inside an image: the partial image is not reused', async () => {
    cached.clearCaches();
    const q = 'Describe the image.';
    const h = [user(q, BLUE)];
    const start = imageStart(q);
    assert.ok(N >= 2);
    let checks = 0;
    // aborted from the second check on: the first prefill chunk ran, and it ends inside the image
    const signal = { get aborted() { return ++checks > 1; } } as unknown as AbortSignal;
    const a = await answer(cached, h, { signal, batchSize: start + 1 });
    assert.equal(a.finish, 'abort');
    assert.equal(a.ids.length, 0);
    assert.equal(a.stats.completionTokens, 0);
    assert.equal(cached.cachedPromptTokens, start + 1);
    const again = await both(h, 'after an abort inside the image');
    assert.equal(again.stats.cachedTokens, start, 'backed off to the image start');
    assert.equal(again.stats.imagesEncoded, 0, 'the image cache has it');
  });

  test('overlapping calls never share a cache, and each equals its uncached answer', async () => {
    cached.clearCaches();
    const a = [user('What color is the circle?', RED)];
    const b = [user('Describe the image.', BLUE), { role: 'assistant' as const, content: 'blue' }, user('Is there a green star?')];
    await answer(cached, a); // something to reuse for the first of the two
    const refA = await answer(plain, a);
    const refB = await answer(plain, b);
    const collect = async (g: AsyncGenerator<GenerationEvent>, out: { ids: number[]; stats?: GenerationStats }) => {
      const r = await g.next();
      if (r.done) return true;
      if (r.value.type === 'token') out.ids.push(r.value.id);
      else out.stats = r.value.stats;
      return false;
    };
    const ga = cached.chat(a, { maxTokens: 6, sampler: { temperature: 0 } });
    const gb = cached.chat(b, { maxTokens: 6, sampler: { temperature: 0 } });
    const oa = { ids: [] as number[] } as { ids: number[]; stats?: GenerationStats };
    const ob = { ids: [] as number[] } as { ids: number[]; stats?: GenerationStats };
    let endA = false;
    let endB = false;
    while (!endA || !endB) {
      if (!endA) endA = await collect(ga, oa);
      if (!endB) endB = await collect(gb, ob);
    }
    assert.deepEqual(oa.ids, refA.ids);
    assert.deepEqual(ob.ids, refB.ids);
    assert.equal(oa.stats!.cachedTokens, refA.stats.promptTokens - 1, 'the first call took the cache');
    assert.equal(ob.stats!.cachedTokens, 0, 'the second found none');
    // the last to finish is kept, and stays correct
    await both(b, 'after the overlap');
    await both(a, 'after the overlap');
  });

  test('cachePrompt: false runs from scratch and leaves the kept cache alone; clearCaches frees it', async () => {
    cached.clearCaches();
    const h = [user('What color is the circle?', RED)];
    await answer(cached, h);
    const kept = cached.cachedPromptTokens;
    assert.ok(kept > 0);
    const off = await answer(cached, [user('How many objects are there?')], { cachePrompt: false });
    assert.equal(off.stats.cachedTokens, 0);
    assert.equal(cached.cachedPromptTokens, kept);
    cached.clearCaches();
    assert.equal(cached.cachedPromptTokens, 0);
    const again = await both(h, 'after clear');
    assert.equal(again.stats.cachedTokens, 0);
    assert.equal(again.stats.imagesEncoded, 1);
  });

  test('a model built with `new` keeps nothing unless asked (its weights may be training)', async () => {
    await answer(plain, [user('What color is the circle?', RED)]);
    assert.equal(plain.cachedPromptTokens, 0);
    const again = await answer(plain, [user('What color is the circle?', RED)]);
    assert.equal(again.stats.imagesEncoded, 1);
    assert.equal(again.stats.cachedTokens, 0);
  });
});

describe('reusablePrefix', () => {
  test('longest common prefix, at most all but the last position, backed off to the start of a cut image', () => {
    assert.equal(reusablePrefix([1, 2, 3], [1, 2, 4, 5], [], 0), 2);
    assert.equal(reusablePrefix([1, 2, 3, 4], [1, 2, 3], [], 0), 2, 'the last position is always run');
    assert.equal(reusablePrefix([], [1, 2], [], 0), 0);
    assert.equal(reusablePrefix([1, 'a', 'a', 'a'], [1, 'a', 'a', 'a', 2], [1], 3), 4);
    assert.equal(reusablePrefix([1, 'a', 'a'], [1, 'a', 'a', 'a', 2], [1], 3), 1, 'a cache ending inside the image');
    assert.equal(reusablePrefix([1, 'a', 'a', 'a', 2], [1, 'b', 'b', 'b', 2], [1], 3), 1, 'another image');
    assert.equal(reusablePrefix([1, 'a', 'a', 'a', 'a', 'a', 'a', 9], [1, 'a', 'a', 'a', 'a', 'a', 'a', 2], [1, 4], 3), 7, 'the same image twice');
    assert.equal(reusablePrefix([1, 'a', 'a', 'a', 'a', 'a', 'a'], [1, 'a', 'a', 'a', 'a', 'a'], [1, 4], 3), 4, 'the second copy would be cut (last position)');
  });
});

describe('ImageEmbeddingCache', () => {
  test('least recently used entries go first, within the count and byte bounds', () => {
    const c = new ImageEmbeddingCache({ maxEntries: 2, maxBytes: 1000 });
    const v = (n: number) => new Float32Array(n);
    c.set('a', v(10));
    c.set('b', v(10));
    assert.ok(c.get('a'));
    c.set('c', v(10)); // evicts b, the least recently used
    assert.equal(c.get('b'), undefined);
    assert.ok(c.get('a') && c.get('c'));
    assert.equal(c.bytes, 80);
    c.set('d', v(245)); // 980 bytes: only d fits
    assert.equal(c.size, 1);
    assert.equal(c.bytes, 980);
    c.set('e', v(1000)); // larger than the bound: not kept, nothing evicted
    assert.equal(c.get('e'), undefined);
    assert.ok(c.get('d'));
    c.clear();
    assert.equal(c.size + c.bytes, 0);
  });
});
