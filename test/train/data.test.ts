// Data pipeline: LLaVA → conversations, tokenize once with labels, right-padded batches with shifted targets, resumable order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Tokenizer, trainBPE } from '../../src/tokenizer/index.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChatTemplate } from '../../src/tokenizer/chat-template.ts';
import { IMAGE_SLOT, type PromptFormat } from '../../src/runtime/conversation.ts';
import { EpochOrder, ImageCache, collate, encodeSamples, firstTurns, llavaToSample, loadLlava, questionsInPlace, singleTurns, textOnly, toolCallText } from '../../src/train/data.ts';
import { VISTA_SPECIAL_TOKENS } from '../../src/train/loop.ts';
import { InputError } from '../../src/errors.ts';
import { initBackend } from '../../src/backend/index.ts';
import { squaresDataset } from './helpers.ts';

const tok = Tokenizer.fromGGUFMetadata(trainBPE(
  ['What color is it? red green', 'Describe the image. A large red square.', 'Click the square. <tool_call>{"name": "click", "arguments": {"x": 500, "y": 250}}</tool_call>'],
  { vocabSize: 340, pre: 'smollm', specialTokens: VISTA_SPECIAL_TOKENS }));
const fmt: PromptFormat = { tokenizer: tok, template: DEFAULT_CHAT_TEMPLATE, wrapper: { before: '<fake_token_around_image>', after: '<fake_token_around_image>' }, imageTokens: 4 };

const colourRec = (id: string, answer: string) => ({ id, image: 'a.png', conversations: [{ from: 'human', value: '<image>\nWhat color is it?' }, { from: 'gpt', value: answer }] });

test('LLaVA records become template messages: image parts, tool calls as the template writes them', () => {
  const s = llavaToSample(colourRec('c1', 'red'), '/d');
  assert.deepEqual(s.messages[0], { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What color is it?' }] });
  assert.deepEqual(s.images, ['/d/a.png']);
  const tools = [{ type: 'function', function: { name: 'click' } }];
  const c = llavaToSample({ id: 7, image: 'b.png', tools, conversations: [{ from: 'human', value: '<image>\nClick the square.' }, { from: 'gpt', value: '', tool_call: { name: 'click', arguments: { x: 500, y: 250 } } }] }, '/d');
  const text = c.messages[1]!.content as string;
  assert.equal(text, '<tool_call>{"name": "click", "arguments": {"x": 500, "y": 250}}</tool_call>');
  // identical to the default template's rendering of a real tool call
  const viaTemplate = renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'click', arguments: { x: 500, y: 250 } } }] }]);
  assert.ok(viaTemplate.includes(toolCallText('click', { x: 500, y: 250 })));
  assert.equal(c.tools, tools);
  assert.throws(() => llavaToSample({ id: 'z', image: 'a.png', conversations: [{ from: 'robot', value: 'x' }] }, '/d'), /sample z: turn 0 has unknown speaker 'robot'/);
  assert.throws(() => llavaToSample({ id: 'q', images: ['a.png', 'b.png'], conversations: [{ from: 'human', value: '<image>\nhi' }] }, '/d'), /sample q: 1 <image> markers for 2 images/);
});

test('tokenized once: labels only on the assistant answer; text-only LM mode labels every token', () => {
  const [e] = encodeSamples([llavaToSample(colourRec('c1', 'red'), '/d')], fmt, { maxLen: 200 });
  const learned = [...e!.ids].filter((_, i) => e!.learn[i]);
  assert.equal(tok.decode(learned), 'red<|im_end|>');
  assert.equal([...e!.ids].filter((i) => i === IMAGE_SLOT).length, 4);
  const [t] = encodeSamples([textOnly(llavaToSample(colourRec('c1', 'red'), '/d'))], fmt, { maxLen: 200, all: true });
  assert.ok(!t!.ids.includes(IMAGE_SLOT));
  assert.equal(t!.learn.reduce((a, b) => a + b, 0), t!.ids.length - 1);
  assert.throws(() => encodeSamples([llavaToSample(colourRec('long-1', 'red'), '/d')], fmt, { maxLen: 10 }), /sample long-1: \d+ tokens exceed the context length 10/);
});

test('singleTurns: every self-standing question becomes a one-turn sample with the image; follow-ups are dropped', () => {
  const tools = [{ type: 'function', function: { name: 'click' } }];
  const tasks = [{ task: 'colour', followUp: false }, { task: 'ground', followUp: true }, { task: 'click', followUp: false }, { task: 'exists', followUp: false }];
  const rec = {
    id: 'd2', image: 'a.png', tools, tasks, conversations: [
      { from: 'human', value: '<image>\nWhat color is the square?' }, { from: 'gpt', value: 'red' },
      { from: 'human', value: 'Where is it?' }, { from: 'gpt', value: '[1, 2, 3, 4]' },
      { from: 'human', value: 'Click the circle.' }, { from: 'gpt', value: '', tool_call: { name: 'click', arguments: { x: 500, y: 250 } } },
      { from: 'human', value: 'Is there a star?' }, { from: 'gpt', value: 'no' },
    ],
  };
  const s = llavaToSample(rec, '/d');
  const out = singleTurns(s);
  assert.deepEqual(out.map((x) => x.id), ['d2#0', 'd2#2', 'd2#3'], 'the follow-up "Where is it?" leans on turn 0: dropped');
  assert.deepEqual(out[0]!.messages, s.messages.slice(0, 2));
  assert.deepEqual(out[1]!.messages, [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Click the circle.' }] }, s.messages[5]]);
  assert.deepEqual(out.map((x) => x.tools), [undefined, tools, undefined], 'the declaration goes with the question that calls it');
  assert.deepEqual(out.map((x) => (x.record.tasks as { task: string }[])[0]!.task), ['colour', 'click', 'exists'], 'each record holds its own turn\'s task as turn 0');
  assert.equal(s.record.tasks, tasks, 'the source record is not touched');
  out.forEach((x) => assert.deepEqual(x.images, s.images));
  // each sample is one scored answer after one image
  const enc = encodeSamples(out, fmt, { maxLen: 400 });
  assert.deepEqual(enc.map((e) => tok.decode([...e.ids].filter((_, i) => e.learn[i]))),
    ['red<|im_end|>', '<tool_call>{"name": "click", "arguments": {"x": 500, "y": 250}}</tool_call><|im_end|>', 'no<|im_end|>']);
  enc.forEach((e) => assert.equal([...e.ids].filter((i) => i === IMAGE_SLOT).length, 4));
  // without task metadata only the first question is known to stand alone; a declaration nobody calls is
  // left to whole-dialogue stages (it would be most of a single question's tokens)
  const bare = llavaToSample({ id: 'd3', image: 'a.png', tools, conversations: [rec.conversations[0]!, rec.conversations[1]!, rec.conversations[6]!, rec.conversations[7]!] }, '/d');
  const [only, ...none] = singleTurns(bare);
  assert.equal(none.length, 0);
  assert.deepEqual(only!.messages, bare.messages.slice(0, 2));
  assert.equal(only!.tools, undefined);
  assert.equal(firstTurns(bare, 1).tools, tools);
});

test('questionsInPlace: each self-standing question of the asked tasks, with the dialogue before it; follow-ups and other tasks are not cut at', () => {
  const tools = [{ type: 'function', function: { name: 'click' } }];
  const tasks = [{ task: 'ground', followUp: false }, { task: 'ground', followUp: true }, { task: 'click', followUp: false }, { task: 'exists', followUp: false }, { task: 'ground', followUp: false }];
  const rec = {
    id: 'd4', image: 'a.png', tools, tasks, conversations: [
      { from: 'human', value: '<image>\nWhere is the square?' }, { from: 'gpt', value: '[1, 2, 3, 4]' },
      { from: 'human', value: 'Where is it?' }, { from: 'gpt', value: '[1, 2, 3, 4]' },
      { from: 'human', value: 'Click the circle.' }, { from: 'gpt', value: '', tool_call: { name: 'click', arguments: { x: 500, y: 250 } } },
      { from: 'human', value: 'Is there a star?' }, { from: 'gpt', value: 'no' },
      { from: 'human', value: 'Locate the circle.' }, { from: 'gpt', value: '[5, 6, 7, 8]' },
    ],
  };
  const s = llavaToSample(rec, '/d');
  const out = questionsInPlace(s, ['ground', 'click']);
  assert.deepEqual(out.map((x) => x.id), ['d4@0', 'd4@2', 'd4@4'], 'the follow-up (turn 1) and the exists question (turn 3) are not cut at');
  assert.deepEqual(out.map((x) => x.messages), [s.messages.slice(0, 2), s.messages.slice(0, 6), s.messages]);
  assert.deepEqual(out.map((x) => x.tools), [undefined, tools, tools], 'the declaration goes where a kept turn calls it');
  out.forEach((x) => { assert.equal(x.record.tasks, tasks, 'turn-indexed readers see the same turns'); assert.deepEqual(x.images, s.images); });
  // the image stays where the dialogue put it, so the last question is asked after every turn before it
  const enc = encodeSamples(out, fmt, { maxLen: 800 });
  assert.deepEqual(enc.map((e) => [...e.ids].filter((i) => i === IMAGE_SLOT).length), [4, 4, 4]);
  assert.ok(tok.decode([...enc[2]!.ids].filter((_, i) => enc[2]!.learn[i])).endsWith('no<|im_end|>[5, 6, 7, 8]<|im_end|>'));
  assert.deepEqual(questionsInPlace(s, ['read']), []);
  // without task metadata nothing says which task a question is: none
  assert.deepEqual(questionsInPlace(llavaToSample({ ...rec, tasks: undefined }, '/d'), ['ground']), []);
});

test('firstTurns: the first k question–answer turns; tool declarations only where a kept turn calls a tool', () => {
  const tools = [{ type: 'function', function: { name: 'click' } }];
  const rec = {
    id: 'd1', image: 'a.png', tools, conversations: [
      { from: 'human', value: '<image>\nWhat color is the square?' }, { from: 'gpt', value: 'red' },
      { from: 'human', value: 'Click it.' }, { from: 'gpt', value: '', tool_call: { name: 'click', arguments: { x: 500, y: 250 } } },
      { from: 'human', value: 'Is it above the circle?' }, { from: 'gpt', value: 'no' },
    ],
  };
  const s = llavaToSample(rec, '/d');
  const one = firstTurns(s, 1);
  assert.deepEqual(one.messages, s.messages.slice(0, 2));
  assert.equal(one.tools, undefined, 'the click was cut: its declaration goes');
  assert.deepEqual(one.images, s.images);
  assert.equal(one.record, s.record);
  const two = firstTurns(s, 2);
  assert.deepEqual(two.messages, s.messages.slice(0, 4));
  assert.equal(two.tools, tools, 'the kept click keeps its declaration');
  assert.deepEqual(firstTurns(s, 3).messages, s.messages);
  assert.deepEqual(firstTurns(s, 9).messages, s.messages);
  // a declaration the dialogue never uses is there on purpose (answer without calling): it stays
  const quiet = llavaToSample({ ...rec, conversations: rec.conversations.slice(0, 2) }, '/d');
  assert.equal(firstTurns(quiet, 1).tools, tools);
  // one turn is one scored answer
  const [e] = encodeSamples([one], fmt, { maxLen: 300 });
  assert.equal(tok.decode([...e!.ids].filter((_, i) => e!.learn[i])), 'red<|im_end|>');
});

test('a sample whose tokens do not line up with its labels is an error naming it', () => {
  const glued: PromptFormat = { ...fmt, template: "{% for m in messages %}{{ m.role == 'assistant' and ' re' or '' }}{{ m.content }}{% endfor %}" };
  const bad = llavaToSample({ id: 'sample-42', conversations: [{ from: 'human', value: 'What' }, { from: 'gpt', value: 'd' }] }, '/d');
  assert.throws(() => encodeSamples([bad], glued, { maxLen: 100 }), (e) => e instanceof InputError && /sample sample-42/.test(e.message));
});

test('collate: right padding, targets shifted by one, image rows after the text rows', () => {
  const enc = encodeSamples([llavaToSample(colourRec('a', 'red'), '/d'), llavaToSample({ ...colourRec('b', 'green'), image: 'b.png' }, '/d')], fmt, { maxLen: 200 });
  const b = collate(enc, 4);
  const T = Math.max(enc[0]!.ids.length, enc[1]!.ids.length);
  assert.equal(b.T, T);
  assert.deepEqual(b.images, ['/d/a.png', '/d/b.png']);
  for (const [j, p] of b.scored.entries()) {
    const s = Math.floor(p / T), t = p % T;
    assert.ok(t + 1 < enc[s]!.ids.length, 'never scores a pad');
    assert.equal(b.targets[j], enc[s]!.ids[t + 1]);
    assert.equal(enc[s]!.learn[t + 1], 1);
  }
  assert.equal(b.scored.length, enc[0]!.learn.reduce((x, y) => x + y, 0) + enc[1]!.learn.reduce((x, y) => x + y, 0));
  // each scored position knows the length of its answer: 'red<|im_end|>' is one answer of its tokens
  const ans0 = enc[0]!.learn.reduce((x, y) => x + y, 0);
  assert.ok(ans0 >= 2);
  assert.deepEqual([...b.answerLen.slice(0, ans0)], Array(ans0).fill(ans0));
  assert.equal(b.answerLen.length, b.scored.length);
  // image slots of sample 1 point at image 1's rows
  const s1 = enc[1]!.imageStarts[0]!;
  assert.deepEqual([...b.rows.slice(T + s1, T + s1 + 4)], [2 * T + 4, 2 * T + 5, 2 * T + 6, 2 * T + 7]);
  assert.ok(![...b.ids].includes(IMAGE_SLOT));
  // packed rows: the real tokens in order, each grid position's row (pads → -1), scored positions among them
  const L0 = enc[0]!.ids.length, L1 = enc[1]!.ids.length;
  assert.notEqual(L0, L1, 'one sample is padded');
  assert.equal(b.packed.real.length, b.tokens);
  assert.deepEqual([...b.packed.real], [...Array.from({ length: L0 }, (_, t) => t), ...Array.from({ length: L1 }, (_, t) => T + t)]);
  for (let p = 0; p < 2 * T; p++) assert.equal(b.packed.slot[p], p % T < (p < T ? L0 : L1) ? b.packed.real.indexOf(p) : -1);
  assert.deepEqual([...b.scoredReal].map((r) => b.packed.real[r]), [...b.scored]);
});

test('epoch order: seeded, a permutation per epoch, resumable from its position', () => {
  const a = new EpochOrder(10, 5, 1);
  const first = a.next(10);
  assert.deepEqual([...first].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const run = a.next(7);
  const b = new EpochOrder(10, 5, 1);
  b.next(13);
  const c = new EpochOrder(10, 5, 1);
  c.pos = { ...b.pos };
  assert.deepEqual(c.next(4), run.slice(3));
  assert.notDeepEqual(new EpochOrder(10, 6, 1).next(10), first);
});

test('image cache: preprocessed planar floats, LRU-bounded, and loading real LLaVA files', async () => {
  initBackend();
  const root = await squaresDataset();
  const samples = await loadLlava(path.join(root, 'train'), 'instruct');
  assert.equal(samples.length, 48);
  const pp = { imageSize: 16, policy: 'stretch', algo: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;
  const cache = new ImageCache(pp, 3 * 16 * 16 * 4 * 2);
  const px = await cache.batch([samples[0]!.images[0]!, samples[1]!.images[0]!, samples[0]!.images[0]!]);
  assert.equal(px.length, 3 * 3 * 16 * 16);
  assert.deepEqual(px.subarray(0, 768), px.subarray(1536, 2304));
  assert.ok(px.every((v) => v >= -1 && v <= 1));
  await assert.rejects(cache.get('/nonexistent.png'), /image \/nonexistent\.png/);
});

test('length-bucketed order: still a permutation per epoch, batches of similar lengths', () => {
  const lengths = Array.from({ length: 64 }, (_, i) => (i * 37) % 100);
  const o = new EpochOrder(64, 1, 0, { lengths, batchSize: 4 });
  const epoch = o.next(64);
  assert.deepEqual([...epoch].sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i));
  let spread = 0;
  for (let i = 0; i < 64; i += 4) {
    const ls = epoch.slice(i, i + 4).map((j) => lengths[j]!);
    spread += Math.max(...ls) - Math.min(...ls);
  }
  assert.ok(spread / 16 < 15, `mean spread ${spread / 16}`);
  const again = new EpochOrder(64, 1, 0, { lengths, batchSize: 4 });
  assert.deepEqual(again.next(64), epoch);
});
