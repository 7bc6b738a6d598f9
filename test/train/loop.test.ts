// The training loop on a tiny model and a tiny generated dataset: loss falls, overfitting, exact resume,
// atomic checkpoints, stage freezing, padding invariance, export → reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { train, lmLoss, followUpWeights } from '../../src/train/loop.ts';
import { CHECKPOINT_FILE, readCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.ts';
import { collate, encodeSamples, loadLlava } from '../../src/train/data.ts';
import { answerLast } from '../../src/train/evaluate.ts';
import { VisionLanguageModel } from '../../src/runtime/vlm.ts';
import { Tensor, noGrad } from '../../src/tensor/tensor.ts';
import { ImageCache } from '../../src/train/data.ts';
import { squaresDataset, tinyConfig } from './helpers.ts';
import { tempDir } from '../helpers/tmp.ts';

const snapshot = (m: Map<string, Tensor>) => new Map([...m].map(([k, t]) => [k, t.toArray()]));
const changed = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => [...a.keys()].filter((k) => b.has(k) && !a.get(k)!.every((v, i) => v === b.get(k)![i]));

test('micro training run: instruct loss falls from ~ln V (5.8) below a pinned 3.2 (mean of the last 10) in 40 steps', async () => {
  const data = await squaresDataset();
  const r = await train(tinyConfig(data, { stages: [{ name: 'instruct', steps: 40, batchSize: 8, lr: { projector: 5e-3, lm: 5e-3 }, warmup: 4 }] }), { progress: false });
  const h = r.state.history.map((e) => e.loss);
  assert.equal(h.length, 40);
  assert.ok(Math.abs(h[0]! - Math.log(r.tokenizer.vocabSize)) < 1, `first loss ${h[0]}`);
  // batches are length-bucketed (colour answers vs long tool calls), so judge the mean of the last 10 steps
  const last10 = h.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last10 < 3.2, `mean of the last 10 losses ${last10}: ${h.map((x) => x.toFixed(2)).join(' ')}`);
  assert.ok(r.outputs && existsSync(r.outputs.curve) && existsSync(r.outputs.summary));
});

test('overfits four samples: loss → ~0 and the greedy answers are the trained colours', async () => {
  const data = await squaresDataset();
  const cfg = tinyConfig(data, { stages: [{ name: 'instruct', steps: 60, batchSize: 4, lr: { projector: 1e-2, lm: 1e-2 }, warmup: 3, data: ['instruct'] }] });
  // four colour questions only: a data dir view with the first four colour samples
  const { writeFileSync, symlinkSync } = await import('node:fs');
  const dir = tempDir('vista-overfit-');
  const src = path.join(data, 'train');
  symlinkSync(path.join(src, 'images'), path.join(dir, 'images'));
  const { readFileSync } = await import('node:fs');
  const four = (JSON.parse(readFileSync(path.join(src, 'instruct.json'), 'utf8')) as { task: string }[]).filter((s) => s.task === 'colour').slice(0, 4);
  writeFileSync(path.join(dir, 'instruct.json'), JSON.stringify(four));
  writeFileSync(path.join(dir, 'captions.json'), '[]');
  const r = await train({ ...cfg, data: { train: dir } }, { progress: false });
  const last = r.state.history.at(-1)!.loss;
  assert.ok(last < 0.05, `final loss ${last}`);
  const vlm = new VisionLanguageModel(r.vlm.lm, r.vlm, r.tokenizer);
  for (const s of await loadLlava(dir, 'instruct')) assert.equal(await answerLast(vlm, s, 8), s.messages[1]!.content);
});

test('resume: interrupted runs continue bit-identically (losses and final parameters), across stages, LoRA and the CLIP head', async () => {
  const data = await squaresDataset();
  const stages = [
    { name: 'vision', steps: 4, batchSize: 6, lr: { vision: 2e-3 } },
    { name: 'instruct', steps: 6, batchSize: 4, gradAccum: 2, lr: { projector: 3e-3, lora: 3e-3 }, warmup: 2, lora: { rank: 2, alpha: 4 } },
  ];
  const a = tinyConfig(data, { stages });
  const full = await train(a, { progress: false });
  const b = tinyConfig(data, { stages });
  const r1 = await train(b, { progress: false, maxSteps: 3 }); // inside the vision stage
  assert.equal(r1.outputs, null);
  assert.equal(r1.state.step, 3);
  const r2 = await train(b, { progress: false, resume: true, maxSteps: 7 }); // inside the LoRA stage
  assert.equal(r2.state.step, 7);
  const r3 = await train(b, { progress: false, resume: true });
  assert.deepEqual(r3.state.history.map((h) => h.loss), full.state.history.map((h) => h.loss));
  const pa = full.vlm.namedParameters(), pb = r3.vlm.namedParameters();
  assert.deepEqual([...pa.keys()], [...pb.keys()]);
  for (const [k, t] of pa) assert.deepEqual(t.toArray(), pb.get(k)!.toArray(), k);
  // the exported files are the same bytes
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(full.outputs!.model).equals(readFileSync(r3.outputs!.model)));
});

test('keepStages: the model after each stage but the last is kept, and a run branched from it starts where that stage ended', async () => {
  const data = await squaresDataset();
  const s = { name: 'instruct', steps: 2, batchSize: 4, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1 };
  const two = tinyConfig(data, { stages: [s, { ...s, lr: { projector: 1e-3, lm: 1e-3 } }] });
  await train({ ...two, checkpoint: { ...two.checkpoint, keepStages: true } }, { progress: false });
  const kept = path.join(two.checkpoint.dir, 'stage-0-instruct.safetensors');
  assert.ok(existsSync(kept));
  assert.deepEqual(readdirSync(two.checkpoint.dir).filter((f) => f.startsWith('stage-')), ['stage-0-instruct.safetensors']);
  const first = await train(tinyConfig(data, { stages: [s] }), { progress: false });
  const branched = await train(tinyConfig(data, { stages: [s], init: { checkpoint: kept }, tokenizer: undefined }), { progress: false, maxSteps: 0 });
  for (const [k, t] of first.vlm.namedParameters()) assert.deepEqual(branched.vlm.namedParameters().get(k)!.toArray(), t.toArray(), k);
});

test('resume: a finished run continues a config that appends a stage, as if it had run all stages at once; other changes are refused', async () => {
  const data = await squaresDataset();
  // both stages read the same files, so the first run trains the same tokenizer as the two-stage run
  const s1 = { name: 'instruct', steps: 3, batchSize: 4, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1 };
  const s2 = { name: 'instruct', steps: 3, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 } };
  const full = await train(tinyConfig(data, { stages: [s1, s2] }), { progress: false });
  const first = tinyConfig(data, { stages: [s1] });
  await train(first, { progress: false });
  const more = { ...tinyConfig(data, { stages: [s1, s2] }), checkpoint: first.checkpoint, output: first.output };
  const changed = { ...tinyConfig(data, { stages: [{ ...s1, steps: 4 }, s2] }), checkpoint: first.checkpoint, output: first.output };
  await assert.rejects(train(changed, { progress: false, resume: true }), /different config/);
  const r = await train(more, { progress: false, resume: true });
  assert.deepEqual(r.state.history.map((h) => h.loss), full.state.history.map((h) => h.loss));
  for (const [k, t] of full.vlm.namedParameters()) assert.deepEqual(t.toArray(), r.vlm.namedParameters().get(k)!.toArray(), k);
});

test('resume: from a stage boundary the stages still to come may change, as if the new config had run from the start; a changed finished stage is refused', async () => {
  const data = await squaresDataset();
  const { writeFile } = await import('node:fs/promises');
  const s1 = { name: 'instruct', steps: 3, batchSize: 4, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1 };
  const s2 = { name: 'instruct', steps: 3, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 } };
  const s2b = { ...s2, steps: 2, lr: { projector: 2e-3, lm: 5e-4 } };
  const losses = (r: { state: { history: { loss: number }[] } }) => r.state.history.map((h) => h.loss);
  const full = await train(tinyConfig(data, { stages: [s1, s2b] }), { progress: false });
  // the first run checkpoints only at its stage boundary (every 1000 steps otherwise) and dies at its final save
  const base = tinyConfig(data, { stages: [s1, s2] });
  const a = { ...base, checkpoint: { ...base.checkpoint, every: 1000 } };
  let writes = 0;
  const dies = async (file: string, bytes: Uint8Array): Promise<void> => {
    if (++writes === 2) throw new Error('killed');
    await writeFile(file, bytes);
  };
  await assert.rejects(train(a, { progress: false, write: dies }), /killed/);
  const boundary = await readCheckpoint(path.join(a.checkpoint.dir, CHECKPOINT_FILE));
  assert.deepEqual([boundary.state.stage, boundary.state.stageStep, boundary.state.step], [1, 0, 3]);
  const at = (stages: object[]) => ({ ...tinyConfig(data, { stages }), checkpoint: a.checkpoint, output: a.output });
  await assert.rejects(train(at([{ ...s1, steps: 4 }, s2b]), { progress: false, resume: true }), /different config/);
  const r = await train(at([s1, s2b]), { progress: false, resume: true });
  assert.deepEqual(losses(r), losses(full));
  for (const [k, t] of full.vlm.namedParameters()) assert.deepEqual(t.toArray(), r.vlm.namedParameters().get(k)!.toArray(), k);
  // the unchanged config resumes from the same boundary too, and equals its own uninterrupted run
  const same = await train(tinyConfig(data, { stages: [s1, s2] }), { progress: false });
  await assert.rejects(train(a, { progress: false, write: (writes = 0, dies) }), /killed/);
  const again = await train(a, { progress: false, resume: true });
  assert.deepEqual(losses(again), losses(same));
  // the stage after the boundary may add LoRA adapters (the boundary holds the merged model; adapters are seeded)
  const lora = { ...s2, lr: { projector: 1e-3, lora: 3e-3 }, lora: { rank: 2, alpha: 4 } };
  const fullLora = await train(tinyConfig(data, { stages: [s1, lora] }), { progress: false });
  await assert.rejects(train(a, { progress: false, write: (writes = 0, dies) }), /killed/);
  const withLora = await train(at([s1, lora]), { progress: false, resume: true });
  assert.deepEqual(losses(withLora), losses(fullLora));
});

test('atomic checkpoint: a crash mid-write leaves the previous checkpoint readable', async () => {
  const data = await squaresDataset();
  const cfg = tinyConfig(data, { stages: [{ name: 'align', steps: 3, batchSize: 4, lr: { projector: 1e-3 } }] });
  const dir = cfg.checkpoint.dir;
  const r = await train(cfg, { progress: false, maxSteps: 2 });
  const before = await readCheckpoint(path.join(dir, CHECKPOINT_FILE));
  assert.equal(before.state.step, 2);
  // the next save dies after writing half of the temporary file (as a killed process would)
  const { open } = await import('node:fs/promises');
  const crash = async (file: string, bytes: Uint8Array): Promise<void> => {
    const fh = await open(path.join(path.dirname(file), `.${path.basename(file)}.crash.tmp`), 'w');
    await fh.write(bytes.subarray(0, bytes.length >> 1));
    await fh.close();
    throw new Error('killed');
  };
  await assert.rejects(train(cfg, { progress: false, resume: true, write: crash }), /killed/);
  const after = await readCheckpoint(path.join(dir, CHECKPOINT_FILE));
  assert.equal(after.state.step, 2);
  assert.deepEqual(after.state.history, before.state.history);
  assert.ok(readdirSync(dir).some((f) => f.endsWith('.tmp')));
  // and training resumes from it
  const done = await train(cfg, { progress: false, resume: true });
  assert.equal(done.state.step, 3);
  assert.equal(r.state.history[1]!.loss, done.state.history[1]!.loss);
  // a direct save/load round trip keeps the state
  await saveCheckpoint(path.join(dir, 'x'), { model: new Map([['w', Tensor.from([1, 2])]]), heads: null, opt: { step: 0, tensors: {} } }, { ...after.state, step: 99 });
  assert.equal((await readCheckpoint(path.join(dir, 'x', CHECKPOINT_FILE))).state.step, 99);
  assert.ok(statSync(path.join(dir, 'checkpoint.json')).size > 0);
});

test('stage freezing: align changes only mm.*; instruct with LoRA leaves every base weight untouched', async () => {
  const data = await squaresDataset();
  const cfg = tinyConfig(data, {
    stages: [
      { name: 'align', steps: 3, batchSize: 4, lr: { projector: 5e-3 } },
      { name: 'instruct', steps: 4, batchSize: 4, lr: { projector: 5e-3, lora: 5e-3 }, lora: { rank: 2, alpha: 4 } },
    ],
  });
  const init = await train(cfg, { progress: false, maxSteps: 0 });
  const p0 = snapshot(init.vlm.namedParameters());
  const a = await train(cfg, { progress: false, resume: true, maxSteps: 3 });
  const p1 = snapshot(a.vlm.namedParameters());
  const c1 = changed(p0, p1);
  assert.ok(c1.length > 0 && c1.every((k) => k.startsWith('mm.')), c1.join());
  assert.deepEqual(c1.sort(), [...p0.keys()].filter((k) => k.startsWith('mm.')).sort());
  // stopped inside the LoRA stage: adapters exist and only they (and the projector) moved
  const b = await train(cfg, { progress: false, resume: true, maxSteps: 6 });
  const p2 = snapshot(b.vlm.namedParameters());
  const c2 = changed(p1, p2).filter((k) => !k.includes('.lora_'));
  assert.ok(c2.length > 0 && c2.every((k) => k.startsWith('mm.')), `base weights changed: ${c2.filter((k) => !k.startsWith('mm.'))}`);
  const loraB = [...p2.keys()].filter((k) => k.endsWith('lora_b'));
  assert.ok(loraB.length > 0 && loraB.some((k) => p2.get(k)!.some((v) => v !== 0)), 'LoRA B moved');
  // at the end the adapters are merged: plain parameter names, LM weights changed
  const done = await train(cfg, { progress: false, resume: true });
  const p3 = snapshot(done.vlm.namedParameters());
  assert.ok(![...p3.keys()].some((k) => k.includes('lora')));
  assert.ok(changed(p1, p3).some((k) => k.startsWith('lm.blk.0.attn_q')));
  assert.ok(!changed(p1, p3).some((k) => k.startsWith('v.')));
});

test('stage freezing: instruct with lr.vision trains the vision tower too', async () => {
  const data = await squaresDataset();
  const cfg = tinyConfig(data, { stages: [{ name: 'instruct', steps: 2, batchSize: 4, lr: { vision: 5e-3, projector: 5e-3, lm: 5e-3 } }] });
  const init = await train(cfg, { progress: false, maxSteps: 0 });
  const p0 = snapshot(init.vlm.namedParameters());
  const done = await train(cfg, { progress: false, resume: true, maxSteps: 2 });
  const c = changed(p0, snapshot(done.vlm.namedParameters()));
  for (const prefix of ['v.patch_embd', 'v.blk.0.attn_q', 'mm.', 'lm.blk.0.attn_q']) assert.ok(c.some((k) => k.startsWith(prefix)), `${prefix} moved`);
});

test('onStep: called once per optimizer step with its stage, loss, wall time and real tokens', async () => {
  const data = await squaresDataset();
  const seen: { step: number; stage: string; loss: number; ms: number; tokens: number }[] = [];
  const r = await train(tinyConfig(data, { stages: [{ name: 'instruct', steps: 3, batchSize: 4, gradAccum: 2, lr: { projector: 1e-3, lm: 1e-3 } }] }),
    { progress: false, onStep: (s) => seen.push(s) });
  assert.deepEqual(seen.map((s) => s.step), [1, 2, 3]);
  assert.deepEqual(seen.map((s) => s.loss), r.state.history.map((h) => h.loss));
  assert.ok(seen.every((s) => s.stage === 'instruct' && s.ms > 0 && s.tokens > 0));
  assert.equal(seen.reduce((a, s) => a + s.tokens, 0), r.state.tokens);
});

test('right padding: a batch loss equals the token-weighted losses of its samples alone', async () => {
  const data = await squaresDataset();
  const r = await train(tinyConfig(data, { stages: [{ name: 'instruct', steps: 1, batchSize: 4, lr: { projector: 1e-3, lm: 1e-3 } }] }), { progress: false });
  const vlm = new VisionLanguageModel(r.vlm.lm, r.vlm, r.tokenizer);
  const samples = (await loadLlava(path.join(data, 'val'), 'instruct')).slice(0, 4);
  const enc = encodeSamples(samples, vlm.promptFormat(), { maxLen: 256 });
  assert.ok(new Set(enc.map((e) => e.ids.length)).size > 1, 'samples of different lengths');
  const cache = new ImageCache(vlm.preprocess!, 1e8);
  const lossOf = async (xs: typeof enc) => {
    const b = collate(xs, r.vlm.imageTokens);
    const px = await cache.batch(b.images);
    return { loss: noGrad(() => lmLoss(r.vlm, b, px, r.vlm.imageTokens).item()), n: b.scored.length };
  };
  const whole = await lossOf(enc);
  let sum = 0;
  for (const e of enc) {
    const one = await lossOf([e]);
    sum += one.loss * one.n;
  }
  assert.ok(Math.abs(whole.loss - sum / whole.n) < 1e-4, `${whole.loss} vs ${sum / whole.n}`);
});

test('export → reload via VisionLanguageModel.load gives the same greedy answers', async () => {
  const data = await squaresDataset();
  const r = await train(tinyConfig(data, { stages: [{ name: 'instruct', steps: 15, batchSize: 8, lr: { projector: 5e-3, lm: 5e-3 } }] }), { progress: false });
  const mem = new VisionLanguageModel(r.vlm.lm, r.vlm, r.tokenizer);
  const file = await VisionLanguageModel.load({ model: r.outputs!.model, mmproj: r.outputs!.mmproj });
  assert.equal(file.template, mem.template);
  for (const s of (await loadLlava(path.join(data, 'val'), 'instruct')).slice(0, 4)) {
    const a = await answerLast(mem, s, 24);
    assert.equal(await answerLast(file, s, 24), a, s.id);
  }
});

test('curriculum filters: maxObjects (scene size), turns (first turns), singleTurns, singles (mixed in), inPlace, tasks (opening task); val stays whole; typed errors', async () => {
  const { rmSync } = await import('node:fs');
  const { train } = await import('../../src/train/loop.ts');
  const { tinyConfig, squaresDataset, shapesWorld, dialogueStage, TINY_DIALOGUE_MODEL: model } = await import('./helpers.ts');
  const { ConfigError, InputError } = await import('../../src/errors.ts');
  const root = await shapesWorld('vista-curriculum-', 30, 3);
  const stage = (extra: Record<string, unknown> = {}) => dialogueStage(4, 4, extra);
  const run = async (extra?: Record<string, unknown>) => (await train(tinyConfig(root, stage(extra)), { progress: false })).state;
  const losses = (st: { history: { loss: number }[] }) => st.history.map((e) => e.loss);
  const all = await run();

  // maxObjects: 5 is the most a scene holds, so the filter keeps everything and the run is the same run
  const five = await run({ maxObjects: 5 }), one = await run({ maxObjects: 1 });
  assert.deepEqual(losses(five), losses(all));
  assert.equal(five.tokens, all.tokens);
  // one-object scenes make shorter dialogues (fewer objects to ask about, shorter captions): fewer tokens seen
  assert.notDeepEqual(losses(one), losses(all));
  assert.ok(one.tokens < all.tokens, `maxObjects 1 saw ${one.tokens} tokens, all scenes ${all.tokens}`);
  assert.throws(() => tinyConfig(root, { model, stages: [{ name: 'vision', steps: 2, batchSize: 4, lr: { vision: 1e-3 }, maxObjects: 1 }] }), /stages\[0\]\.maxObjects/);
  await assert.rejects(train(tinyConfig(await squaresDataset(), stage({ maxObjects: 2 })), { progress: false }), InputError);

  // turns: no generated dialogue has 50 turns, so the cut keeps everything and the run is the same run
  const many = await run({ turns: 50 }), first = await run({ turns: 1 });
  assert.deepEqual(losses(many), losses(all));
  assert.equal(many.tokens, all.tokens);
  // single questions are shorter samples
  assert.ok(first.tokens < all.tokens * 0.8, `turns 1 saw ${first.tokens} tokens, whole dialogues ${all.tokens}`);
  assert.notDeepEqual(losses(first), losses(all));
  assert.throws(() => tinyConfig(root, { model, stages: [{ name: 'vision', steps: 2, batchSize: 4, lr: { vision: 1e-3 }, turns: 1 }] }), /stages\[0\]\.turns/);
  // singleTurns: one question per sample, so its batches are short like first turns' (a click question also
  // carries its tool declaration, which no opening question does); with the tasks filter it keeps the colour
  // questions from anywhere in a dialogue, not only openers
  const single = await run({ singleTurns: true });
  assert.ok(single.tokens < all.tokens * 0.8, `singleTurns saw ${single.tokens} tokens, whole dialogues ${all.tokens}`);
  assert.notDeepEqual(losses(single), losses(first));
  const singleColour = await run({ singleTurns: true, tasks: ['colour'] });
  assert.notDeepEqual(losses(singleColour), losses(single));

  // singles: the stage's dialogues plus every self-contained turn of the named tasks as its own sample — the
  // data position after the run pins the pool's size: 30 dialogues + one sample per such turn
  const { readFileSync } = await import('node:fs');
  const recs = JSON.parse(readFileSync(path.join(root, 'train', 'instruct.json'), 'utf8')) as { tasks: { task: string; followUp?: boolean }[] }[];
  const pos = ['relation', 'ground', 'click'];
  const nSingles = recs.reduce((a, r) => a + r.tasks.filter((t, k) => (k === 0 || t.followUp === false) && pos.includes(t.task)).length, 0);
  assert.ok(nSingles > 10, `only ${nSingles} position questions in 30 dialogues`);
  const mixed = (await train(tinyConfig(root, dialogueStage(30, 4, { singles: pos })), { progress: false, maxSteps: 25 })).state;
  const n = recs.length + nSingles;
  assert.equal(recs.length, 30);
  assert.ok(100 > n && 100 < 2 * n, `pool ${n}`);
  assert.deepEqual(mixed.pos, { epoch: 1, cursor: 100 - n });
  assert.throws(() => tinyConfig(root, stage({ singles: ['colour', 'juggle'] })), /stages\[0\]\.singles/);

  // inPlace: one sample per self-standing position question, cut after its answer (no dialogues besides) — the
  // pool's size again pinned by the data position
  const nPlace = recs.reduce((a, r) => a + r.tasks.filter((t) => t.followUp === false && pos.includes(t.task)).length, 0);
  const placed = (await train(tinyConfig(root, dialogueStage(30, 4, { inPlace: pos })), { progress: false, maxSteps: 25 })).state;
  assert.ok(nPlace > 10 && nPlace < 100, `pool ${nPlace}`);
  // 25 steps × 4 samples: whole epochs of the pool and then the cursor (an epoch rolls over lazily: cursor n, not 0)
  assert.equal(placed.pos.epoch * nPlace + placed.pos.cursor, 100, `pool ${nPlace}, position ${JSON.stringify(placed.pos)}`);
  assert.ok(placed.pos.cursor > 0 && placed.pos.cursor <= nPlace);

  // followUpWeight: follow-up answers count more — a different run on generated dialogues (which have follow-ups),
  // and every sample's answers line up with its task metadata (else the run would stop with an InputError)
  const recsF = JSON.parse(readFileSync(path.join(root, 'train', 'instruct.json'), 'utf8')) as { tasks: { followUp?: boolean }[] }[];
  assert.ok(recsF.some((r) => r.tasks.some((t) => t.followUp)), 'no follow-up turn in the generated dialogues');
  const heavy = await run({ followUpWeight: 3 }), unit = await run({ followUpWeight: 1 });
  assert.deepEqual(losses(unit), losses(all));
  assert.notDeepEqual(losses(heavy), losses(all));
  assert.throws(() => tinyConfig(root, stage({ followUpWeight: 0 })), /stages\[0\]\.followUpWeight/);

  // orderSeed: the run's own seed (tinyConfig's 3) gives the same run; another the same data in another order
  const sameOrder = await run({ orderSeed: 3 }), otherOrder = await run({ orderSeed: 4 });
  assert.deepEqual(losses(sameOrder), losses(all));
  assert.notDeepEqual(losses(otherOrder), losses(all));
  assert.throws(() => tinyConfig(root, stage({ orderSeed: 1.5 })), /stages\[0\]\.orderSeed/);

  // tasks: only dialogues that open with these tasks; the rest of the split is not trained on
  const colour = await run({ tasks: ['colour', 'shape'] });
  assert.notDeepEqual(losses(colour), losses(all));
  assert.throws(() => tinyConfig(root, stage({ tasks: ['colour', 'juggle'] })), /stages\[0\]\.tasks/);
  assert.throws(() => tinyConfig(root, { model, stages: [{ name: 'vision', steps: 2, batchSize: 4, lr: { vision: 1e-3 }, tasks: ['colour'] }] }), /stages\[0\]\.tasks/);
  // data without task metadata has no dialogue that opens with a colour question: a typed error, not an empty run
  await assert.rejects(train(tinyConfig(await squaresDataset(), { stages: [{ name: 'instruct', steps: 2, batchSize: 2, lr: { projector: 1e-3, lm: 1e-3 }, tasks: ['colour'] }] }), { progress: false }),
    (e: Error) => e instanceof ConfigError && /no training dialogue fits/.test(e.message));
  rmSync(root, { recursive: true, force: true });
});

test('a stage with its own train split trains on it, with the scene metadata of its images; earlier stages and the tokenizer stay those of data.train', async () => {
  const { cpSync, rmSync } = await import('node:fs');
  const { shapesWorld, TINY_DIALOGUE_MODEL: model } = await import('./helpers.ts');
  const { InputError } = await import('../../src/errors.ts');
  const root = await shapesWorld('vista-stage-split-', 12, 3), more = await shapesWorld('vista-stage-split-more-', 20, 4);
  const first = { name: 'instruct', steps: 2, batchSize: 4, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1, data: ['instruct'] };
  // the second stage trains the tower with the dense loss, so it needs the scene metadata of the split it reads
  const second = { name: 'instruct', steps: 10, batchSize: 4, lr: { vision: 1e-3, projector: 3e-3, lm: 3e-3 }, warmup: 1, data: ['instruct'], dense: 0.5 };
  // stopped after 7 steps of the second stage, where the data position is still the stage's
  const run = async (stage2: Record<string, unknown>) => (await train(tinyConfig(root, { model, stages: [first, stage2] }), { progress: false, maxSteps: 9 })).state;
  const own = await run({ ...second, train: path.join(more, 'train') }), onRun = await run(second);
  const named = await run({ ...second, train: path.join(root, 'train') });
  const losses = (st: { history: { loss: number }[] }) => st.history.map((e) => e.loss);
  // 7 steps × 4 dialogues: the data position pins the pool — 20 dialogues of its own split against data.train's 12
  // (an epoch rolls over lazily, so count the samples seen)
  assert.equal(own.pos.epoch * 20 + own.pos.cursor, 28, JSON.stringify(own.pos));
  assert.equal(onRun.pos.epoch * 12 + onRun.pos.cursor, 28, JSON.stringify(onRun.pos));
  assert.ok(own.pos.cursor <= 20 && onRun.pos.cursor <= 12);
  assert.deepEqual(own.tokenizer, onRun.tokenizer);
  assert.deepEqual(losses(own).slice(0, 2), losses(onRun).slice(0, 2));
  assert.notDeepEqual(losses(own).slice(2), losses(onRun).slice(2));
  // naming data.train's own directory is the same run as leaving it out
  assert.deepEqual(losses(named), losses(onRun));
  // a stage without scene supervision may read plain LLaVA data (no metadata.jsonl), even where another stage has it
  const plainDir = path.join(more, 'plain');
  cpSync(path.join(more, 'train'), plainDir, { recursive: true, filter: (f) => !f.endsWith('metadata.jsonl') });
  const firstDense = { ...first, lr: { vision: 1e-3, ...first.lr }, dense: 0.5 };
  const plainStage = { ...first, steps: 10, train: plainDir };
  const mixed = (await train(tinyConfig(root, { model, stages: [firstDense, plainStage] }), { progress: false, maxSteps: 9 })).state;
  assert.equal(mixed.pos.epoch * 20 + mixed.pos.cursor, 28);
  // and a stage that does use scenes on such a split is a typed error naming the missing file
  await assert.rejects(run({ ...second, train: plainDir }), (e: Error) => e instanceof InputError && /plain.metadata\.jsonl/.test(e.message));
  // a split that is not there is a typed error naming its file
  await assert.rejects(run({ ...second, train: path.join(more, 'nowhere') }), (e: Error) => e instanceof InputError && /nowhere.instruct\.json/.test(e.message));
  rmSync(root, { recursive: true, force: true });
  rmSync(more, { recursive: true, force: true });
});

test('wordAlign: the loss term joins the instruct objective (a different run), and is refused where the projector is frozen', async () => {
  const { rmSync } = await import('node:fs');
  const { tinyConfig, shapesWorld, dialogueStage } = await import('./helpers.ts');
  const root = await shapesWorld('vista-wordalign-', 24, 4);
  const stage = (extra: Record<string, number> = {}) => dialogueStage(3, 4, extra);
  const plain = (await train(tinyConfig(root, stage()), { progress: false })).state;
  const aligned = (await train(tinyConfig(root, stage({ wordAlign: 1 })), { progress: false })).state;
  // the same batches (same tokens), but the first step's loss carries the alignment term (≈ ln V at a fresh projector)
  assert.equal(aligned.tokens, plain.tokens);
  assert.ok(aligned.history[0]!.loss > plain.history[0]!.loss + 3, `first loss ${aligned.history[0]!.loss} vs ${plain.history[0]!.loss}`);
  assert.throws(() => tinyConfig(root, { stages: [{ name: 'lm', steps: 2, batchSize: 4, lr: { lm: 1e-3 }, wordAlign: 1 }] }), /stages\[0\]\.wordAlign/);
  rmSync(root, { recursive: true, force: true });
});

test('init from a checkpoint: its tokenizer is used when the config names none; a different configured tokenizer is refused', async () => {
  const data = await squaresDataset();
  const s = { name: 'instruct', steps: 2, batchSize: 4, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1 };
  const firstConfig = tinyConfig(data, { stages: [s] });
  const first = await train(firstConfig, { progress: false });
  const init = { checkpoint: path.join(firstConfig.checkpoint.dir, CHECKPOINT_FILE) };
  const tokens = (t: typeof first.tokenizer) => Array.from({ length: t.vocabSize }, (_, i) => t.tokenText(i));
  const own = await train(tinyConfig(data, { stages: [s], init, tokenizer: undefined }), { progress: false, maxSteps: 0 });
  assert.deepEqual(tokens(own.tokenizer), tokens(first.tokenizer));
  for (const [k, t] of first.vlm.namedParameters()) assert.deepEqual(own.vlm.namedParameters().get(k)!.toArray(), t.toArray(), k);
  // the run's checkpoint directory, or its JSON sidecar, name the same checkpoint
  for (const other of [firstConfig.checkpoint.dir, path.join(firstConfig.checkpoint.dir, 'checkpoint.json')]) {
    const via = await train(tinyConfig(data, { stages: [s], init: { checkpoint: other }, tokenizer: undefined }), { progress: false, maxSteps: 0 });
    for (const [k, t] of first.vlm.namedParameters()) assert.deepEqual(via.vlm.namedParameters().get(k)!.toArray(), t.toArray(), `${other}: ${k}`);
  }
  // the same training data and vocabulary size train the same tokenizer: accepted
  await train(tinyConfig(data, { stages: [s], init }), { progress: false, maxSteps: 0 });
  await assert.rejects(train(tinyConfig(data, { stages: [s], init, tokenizer: { train: { vocabSize: 300 } } }), { progress: false, maxSteps: 0 }),
    /tokenizer: differs from the tokenizer of init .*checkpoint\.safetensors/);
});

test('the dense head lives for the whole run: boundaries keep it, a later dense stage continues it, resume stays exact', async () => {
  const { shapesWorld, TINY_DIALOGUE_MODEL } = await import('./helpers.ts');
  const { DenseHead, denseLoss, denseTargets, loadDenseIndex } = await import('../../src/train/dense.ts');
  const root = await shapesWorld('vista-dense-carry-', 24, 2);
  const stages = [
    { name: 'vision', steps: 6, batchSize: 8, lr: { vision: 3e-3 }, warmup: 1, dense: 1 },
    { name: 'align', steps: 2, batchSize: 4, lr: { projector: 2e-3 }, data: ['captions'] },
    { name: 'instruct', steps: 3, batchSize: 4, lr: { vision: 1e-3, projector: 2e-3, lm: 2e-3 }, warmup: 1, data: ['instruct'], dense: 1 },
  ];
  const cfg = (every = 0) => {
    const c = tinyConfig(root, { model: TINY_DIALOGUE_MODEL, stages });
    return { ...c, checkpoint: { ...c.checkpoint, every, keepStages: true } };
  };
  const c0 = cfg();
  const full = await train(c0, { progress: false });
  // both boundaries hold the dense head (not the contrastive one), and align, which has no dense loss, leaves it as it was
  const kept = (name: string) => readCheckpoint(path.join(c0.checkpoint.dir, `${name}.safetensors`));
  const v = await kept('stage-0-vision'), a = await kept('stage-1-align');
  assert.ok(v.headNames().length > 0 && v.headNames().every((n) => n.startsWith('dense.')), v.headNames().join(' '));
  const hv = new DenseHead(32, 9), ha = new DenseHead(32, 9);
  v.loadHeads(hv.namedParameters('dense'));
  a.loadHeads(ha.namedParameters('dense'));
  for (const [k, t] of hv.namedParameters()) assert.deepEqual(ha.namedParameters().get(k)!.toArray(), t.toArray(), k);
  // the kept head is the trained one: on the tower it was trained with, its dense loss is far below a fresh head's
  const model = new (await import('../../src/models/llava.ts')).Llava(full.vlm.config);
  v.loadModel(model.namedParameters());
  const index = await loadDenseIndex(path.join(root, 'train'));
  const files = [...index.keys()].slice(0, 8);
  const cache = new ImageCache(new VisionLanguageModel(full.vlm.lm, full.vlm, full.tokenizer).preprocess!, 1 << 24);
  const px = Tensor.from(await cache.batch(files), [8, 3, 16, 16]);
  const t = denseTargets(files.map((f) => index.get(f)!), 4);
  const [trained, fresh] = noGrad(() => [hv, new DenseHead(32, 5)].map((h) => denseLoss(h, model.v.forward(px), t).item()));
  assert.ok(trained! < fresh! - 1, `kept head ${trained}, fresh head ${fresh}`);
  // and the instruct stage continued it: after 3 AdamW steps at lr ≤ 1e-3 (each moves a weight by about lr at most)
  // the run's final head is within 1e-2 of the kept one everywhere; a new seeded head would be ~0.2 away
  const end = await readCheckpoint(path.join(c0.checkpoint.dir, CHECKPOINT_FILE));
  const hEnd = new DenseHead(32, 9);
  end.loadHeads(hEnd.namedParameters('dense'));
  let far = 0;
  for (const [k, t] of hEnd.namedParameters()) {
    const before = ha.namedParameters().get(k)!.toArray();
    t.toArray().forEach((x, i) => (far = Math.max(far, Math.abs(x - before[i]!))));
  }
  assert.ok(far > 0 && far < 1e-2, `the instruct stage moved the kept head by up to ${far}`);
  // resume is exact across it: stopped inside align (the head only in the checkpoint), then at the instruct boundary
  const b = cfg(1);
  await train(b, { progress: false, maxSteps: 7 });
  await train(b, { progress: false, resume: true, maxSteps: 8 });
  const r = await train(b, { progress: false, resume: true });
  assert.deepEqual(r.state.history.map((h) => h.loss), full.state.history.map((h) => h.loss));
  for (const [k, p] of full.vlm.namedParameters()) assert.deepEqual(r.vlm.namedParameters().get(k)!.toArray(), p.toArray(), k);
});

for (const [option, head] of [['denseScene', 'scene'], ['densePosition', 'position']] as const)
  test(`a later stage that adds ${option} gives the kept dense head a ${head} head; resume inside it stays exact`, async () => {
    const { shapesWorld, TINY_DIALOGUE_MODEL } = await import('./helpers.ts');
    const root = await shapesWorld(`vista-dense-${head}-`, 16, 3);
    const s = { name: 'instruct', steps: 2, batchSize: 4, lr: { vision: 1e-3, projector: 2e-3, lm: 2e-3 }, warmup: 1, data: ['instruct'], dense: 1 };
    const stages = [s, { ...s, steps: 3, [option]: 1 }];
    const cfg = () => {
      const c = tinyConfig(root, { model: TINY_DIALOGUE_MODEL, stages });
      return { ...c, checkpoint: { ...c.checkpoint, every: 1 } };
    };
    const full = await train(cfg(), { progress: false });
    const b = cfg();
    const first = await train(b, { progress: false, maxSteps: 2 }); // at the boundary: the head without that part
    assert.deepEqual((await readCheckpoint(path.join(b.checkpoint.dir, CHECKPOINT_FILE))).headNames().filter((n) => n.includes(head)), []);
    assert.equal(first.state.step, 2);
    await train(b, { progress: false, resume: true, maxSteps: 4 }); // inside the stage that adds it
    const names = (await readCheckpoint(path.join(b.checkpoint.dir, CHECKPOINT_FILE))).headNames();
    assert.ok(names.includes(`dense.${head}.weight`) && names.includes('dense.colour.weight'), names.join(' '));
    const r = await train(b, { progress: false, resume: true });
    assert.deepEqual(r.state.history.map((h) => h.loss), full.state.history.map((h) => h.loss));
    for (const [k, p] of full.vlm.namedParameters()) assert.deepEqual(r.vlm.namedParameters().get(k)!.toArray(), p.toArray(), k);
  });

test('followUpWeights: each answer run of a sample is matched, in order, with its turn metadata; captions weigh 1; a mismatch names the sample', () => {
  // three rows of T = 10: row 0 answers at t 1–3 and 6–7, row 1 at t 2–3 and 5; row 2 (a caption) at t 4–6
  const enc = (id: string, scoredAt: number[]) => {
    const learn = new Uint8Array(10);
    for (const t of scoredAt) learn[t + 1] = 1;
    return { id, ids: Int32Array.from({ length: 10 }, (_, i) => i + 1), imageStarts: [], learn, images: [] };
  };
  const b = collate([enc('a', [1, 2, 3, 6, 7]), enc('b', [2, 3, 5]), enc('cap', [4, 5, 6])], 4);
  assert.deepEqual([...b.scored], [1, 2, 3, 6, 7, 12, 13, 15, 24, 25, 26]);
  const sample = (id: string, tasks?: { followUp?: boolean }[]) => ({ id, record: tasks ? { tasks } : {} }) as unknown as Parameters<typeof followUpWeights>[1][number];
  const rows = [sample('a', [{ followUp: false }, { followUp: true }]), sample('b', [{}, { followUp: true }]), sample('cap')];
  assert.deepEqual([...followUpWeights(b, rows, 2.5)], [1, 1, 1, 2.5, 2.5, 1, 1, 2.5, 1, 1, 1]);
  assert.throws(() => followUpWeights(b, [rows[0]!, sample('b3', [{}, {}, { followUp: true }]), rows[2]!], 2), /sample b3: 2 answers for 3 turns/);
});
