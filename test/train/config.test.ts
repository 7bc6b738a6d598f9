// Training config validation: every bad field is named; defaults and derived model widths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig, stageGroups, vlmConfigOf } from '../../src/train/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { TINY_MODEL } from './helpers.ts';

const base = () => ({
  data: { train: 'd/train', val: 'd/val' },
  model: structuredClone(TINY_MODEL),
  tokenizer: { train: { vocabSize: 512 } },
  stages: [{ name: 'instruct', steps: 10, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 } }],
  checkpoint: { dir: 'ck' },
  output: { dir: 'out', name: 'm' },
});

const fails = (raw: unknown, re: RegExp) => assert.throws(() => parseTrainConfig(raw, '/base'), (e) => e instanceof ConfigError && re.test(e.message), String(re));

test('a valid config gets defaults, absolute paths, and is frozen', () => {
  const c = parseTrainConfig(base(), '/base');
  assert.equal(c.seed, 0);
  assert.equal(c.data.train, '/base/d/train');
  assert.equal(c.stages[0]!.gradAccum, 1);
  assert.equal(c.stages[0]!.clip, 1);
  assert.equal(c.output.type, 'f32');
  assert.ok(Object.isFrozen(c.stages[0]));
  const m = vlmConfigOf(c, 300);
  assert.equal(m.lm.vocab_size, 300);
  assert.equal(m.projector.input_dim, 32);
  assert.equal(m.projector.output_dim, 32);
});

test('bad fields are named with their path', () => {
  const c1 = base();
  (c1.stages[0] as Record<string, unknown>).steps = 0;
  fails(c1, /stages\[0\]\.steps/);
  const c2 = base();
  (c2.stages[0]!.lr as Record<string, unknown>).lm = 'fast';
  fails(c2, /stages\[0\]\.lr\.lm/);
  const c3 = base();
  (c3.model.vision as Record<string, unknown>).patch_size = 5;
  fails(c3, /model\.vision\.image_size: 16 is not a multiple of patch_size 5/);
  fails({ ...base(), output: { dir: 'o', name: 'm', type: 'q4_k' } }, /output\.type/);
  fails({ ...base(), extra: 1 }, /extra|unrecognized/i);
  fails({ ...base(), stages: [{ ...base().stages[0], name: 'finetune' }] }, /stages\[0\]\.name/);
});

test('learning rates must match the groups a stage trains', () => {
  fails({ ...base(), stages: [{ name: 'align', steps: 1, batchSize: 2, lr: {} }] }, /stages\[0\]\.lr\.projector: stage 'align' trains the projector group/);
  fails({ ...base(), stages: [{ name: 'align', steps: 1, batchSize: 2, lr: { projector: 1e-3, lm: 1e-3 } }] }, /stages\[0\]\.lr\.lm: stage 'align' does not train/);
  fails({ ...base(), stages: [{ name: 'instruct', steps: 1, batchSize: 2, lr: { projector: 1e-3, lm: 1e-3 }, lora: { rank: 4, alpha: 8 } }] }, /lr\.lora/);
  // instruct unfreezes the vision tower only when it is given a learning rate
  const st = (lr: Record<string, number>, lora?: object) => parseTrainConfig({ ...base(), stages: [{ name: 'instruct', steps: 1, batchSize: 2, lr, lora }] }, '/b').stages[0]!;
  assert.deepEqual(stageGroups(st({ projector: 1e-3, lm: 1e-3 })), ['projector', 'lm']);
  assert.deepEqual(stageGroups(st({ vision: 1e-4, projector: 1e-3, lm: 1e-3 })), ['vision', 'projector', 'lm']);
  assert.deepEqual(stageGroups(st({ vision: 1e-4, projector: 1e-3, lora: 1e-3 }, { rank: 2, alpha: 2 })), ['vision', 'projector', 'lora']);
  fails({ ...base(), stages: [{ name: 'instruct', steps: 5, batchSize: 2, lr: { projector: 1e-3, lm: 1e-3 }, minLr: 1e-2 }] }, /stages\[0\]\.minLr: 0\.01 exceeds lr/);
  fails({ ...base(), stages: [{ name: 'vision', steps: 5, batchSize: 1, lr: { vision: 1e-3 } }] }, /stages\[0\]\.batchSize: contrastive/);
  fails({ ...base(), stages: [{ name: 'align', steps: 5, batchSize: 2, lr: { projector: 1e-3 }, lora: { rank: 2, alpha: 2 } }] }, /stages\[0\]\.lora/);
});

test('model and tokenizer sources', () => {
  const { model: _m, ...noModel } = base();
  fails(noModel, /^training config: model: give a model config or an init/);
  const { tokenizer: _t, ...noTok } = base();
  fails(noTok, /tokenizer: needed unless an init \(GGUF pair or checkpoint\) brings its own/);
  assert.deepEqual(parseTrainConfig({ ...noTok, init: { checkpoint: 'run/ckpt/checkpoint.safetensors' } }, '/x').init,
    { checkpoint: '/x/run/ckpt/checkpoint.safetensors' });
  // a checkpoint holds weights, not the architecture they belong to
  fails({ ...noModel, init: { checkpoint: 'run/ckpt' } }, /^training config: model: a checkpoint init holds the weights only/);
  const c = parseTrainConfig({ ...noModel, init: { model: 'a.gguf', mmproj: 'b.gguf' }, tokenizer: undefined }, '/x');
  assert.deepEqual(c.init, { model: '/x/a.gguf', mmproj: '/x/b.gguf' });
  fails({ ...base(), eval: { every: 5 }, data: { train: 'd' } }, /eval\.every: evaluation needs data\.val/);
});

/** A config of one instruct stage training all three groups, with these extra stage options. */
const instruct = (extra: Record<string, unknown>) => {
  const c = base();
  c.stages = [{ name: 'instruct', steps: 10, batchSize: 4, lr: { vision: 1e-4, projector: 1e-3, lm: 1e-3 }, ...extra } as never];
  return c;
};

test('dense supervision only where the stage trains the vision tower', () => {
  const ok = base();
  ok.stages = [{ name: 'instruct', steps: 10, batchSize: 4, lr: { vision: 1e-4, projector: 1e-3, lm: 1e-3 }, dense: 0.5 } as never];
  assert.equal(parseTrainConfig(ok, '/base').stages[0]!.dense, 0.5);
  const bad = base();
  (bad.stages[0] as Record<string, unknown>).dense = 1;
  fails(bad, /stages\[0\]\.dense: stage 'instruct' does not train the vision tower/);
  const neg = base();
  (neg.stages[0] as Record<string, unknown>).dense = -1;
  fails(neg, /stages\[0\]\.dense/);
});

test('denseScene, densePosition and denseObjectWeight are part of the dense loss: refused without dense, absent unless given (old checkpoints keep their config key)', () => {
  for (const [k, v, why] of [['denseScene', 0.2, 'the scene summary'], ['densePosition', 2, 'the position head'], ['denseObjectWeight', 5, 'the object weight']] as const) {
    assert.equal(parseTrainConfig(instruct({ dense: 0.5, [k]: v }), '/base').stages[0]![k], v);
    fails(instruct({ [k]: v }), new RegExp(`stages\\[0\\]\\.${k}: ${why} is part of the dense loss`));
    assert.ok(!(k in parseTrainConfig(base(), '/base').stages[0]!));
  }
});

test('attend: instruct stages only, a layer of the LM, absent unless given (old checkpoints keep their config key)', () => {
  const ok = base();
  ok.stages = [{ name: 'instruct', steps: 10, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 }, attend: 0.5, attendLayer: 1 } as never];
  const st = parseTrainConfig(ok, '/base').stages[0]!;
  assert.equal(st.attend, 0.5);
  assert.equal(st.attendLayer, 1);
  const align = base();
  align.stages = [{ name: 'align', steps: 10, batchSize: 4, lr: { projector: 1e-3 }, attend: 1 } as never];
  fails(align, /stages\[0\]\.attend: attention supervision needs question–answer turns/);
  const deep = base();
  deep.stages = [{ name: 'instruct', steps: 10, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 }, attend: 1, attendLayer: 9 } as never];
  fails(deep, /stages\[0\]\.attendLayer: 9 is not a layer of the \d+-layer LM/);
  assert.ok(!('attend' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('followUpWeight: positive, absent unless given (old checkpoints keep their config key)', () => {
  assert.equal(parseTrainConfig(instruct({ followUpWeight: 2 }), '/base').stages[0]!.followUpWeight, 2);
  fails(instruct({ followUpWeight: -1 }), /stages\[0\]\.followUpWeight/);
  assert.ok(!('followUpWeight' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('orderSeed: a non-negative integer, absent unless given (old checkpoints keep their config key)', () => {
  assert.equal(parseTrainConfig(instruct({ orderSeed: 7 }), '/base').stages[0]!.orderSeed, 7);
  fails(instruct({ orderSeed: -1 }), /stages\[0\]\.orderSeed/);
  fails(instruct({ orderSeed: 0.5 }), /stages\[0\]\.orderSeed/);
  assert.ok(!('orderSeed' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('train: the split of a stage resolves against the config like data.train, absent unless given (old checkpoints keep their config key)', () => {
  const c = parseTrainConfig(instruct({ train: 'more/train' }), '/base');
  assert.equal(c.stages[0]!.train, '/base/more/train');
  assert.equal(c.data.train, '/base/d/train');
  fails(instruct({ train: '' }), /stages\[0\]\.train/);
  assert.ok(!('train' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('singles: instruct stages reading dialogues only, known tasks, absent unless given (old checkpoints keep their config key)', () => {
  assert.deepEqual(parseTrainConfig(instruct({ singles: ['ground', 'click'] }), '/base').stages[0]!.singles, ['ground', 'click']);
  fails(instruct({ singles: ['ground', 'juggle'] }), /stages\[0\]\.singles/);
  fails(instruct({ singles: ['click'], singleTurns: true }), /stages\[0\]\.singles: with singleTurns every question is already its own sample/);
  fails(instruct({ singles: ['click'], data: ['captions'] }), /stages\[0\]\.singles: single questions are cut from the dialogues/);
  const align = base();
  align.stages = [{ name: 'align', steps: 10, batchSize: 4, lr: { projector: 1e-3 }, data: ['instruct'], singles: ['click'] } as never];
  fails(align, /stages\[0\]\.singles: single questions are cut from the dialogues/);
  assert.ok(!('singles' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('inPlace: instruct stages reading dialogues only, known tasks, not with the other cuts, absent unless given', () => {
  assert.deepEqual(parseTrainConfig(instruct({ inPlace: ['ground', 'click'] }), '/base').stages[0]!.inPlace, ['ground', 'click']);
  fails(instruct({ inPlace: ['juggle'] }), /stages\[0\]\.inPlace/);
  fails(instruct({ inPlace: [] }), /stages\[0\]\.inPlace/);
  fails(instruct({ inPlace: ['ground'], data: ['captions'] }), /stages\[0\]\.inPlace: questions are cut from the dialogues/);
  for (const other of [{ singleTurns: true }, { turns: 2 }, { tasks: ['ground'] }])
    fails(instruct({ inPlace: ['ground'], ...other }), /stages\[0\]\.inPlace: inPlace picks its own questions and cuts/);
  assert.ok(!('inPlace' in parseTrainConfig(base(), '/base').stages[0]!));
});

test('singleTurns: not on the vision stage, not with turns, absent unless given (old checkpoints keep their config key)', () => {
  assert.equal(parseTrainConfig(instruct({ singleTurns: true }), '/base').stages[0]!.singleTurns, true);
  fails(instruct({ singleTurns: true, turns: 1 }), /stages\[0\]\.singleTurns: single-question samples already keep one turn each/);
  const vision = base();
  vision.stages = [{ name: 'vision', steps: 10, batchSize: 4, lr: { vision: 1e-3 }, singleTurns: true } as never];
  fails(vision, /stages\[0\]\.singleTurns: the vision stage trains on captions/);
  assert.ok(!('singleTurns' in parseTrainConfig(base(), '/base').stages[0]!));
});
