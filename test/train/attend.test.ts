// Grounded attention supervision (src/train/attend.ts): which turns are about which objects, which image tokens
// cover a box, the query/key bookkeeping of a batch, the loss against a hand computation and its gradient, and
// that a head trained with it learns to look where it is told.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attendLoss, attendTargets, boxCells, imageKeys, questionKeys, turnBoxes, turnWords } from '../../src/train/attend.ts';
import { collate, type Encoded } from '../../src/train/data.ts';
import { IMAGE_SLOT } from '../../src/runtime/conversation.ts';
import { Tensor, Rng, randn, AdamW, backward, linear, reshape, tidy } from '../../src/tensor/index.ts';
import { ConfigError } from '../../src/errors.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { initBackend } from '../../src/backend/index.ts';

initBackend();

type Box = [number, number, number, number];
const obj = (shape: string, colour: string, box1000: Box) => ({ shape, colour, box1000 });

test('turnBoxes: each task names its objects; nothing for captions, zero counts, "no" and a missing digit', () => {
  const objs = [obj('circle', 'red', [0, 0, 100, 100]), obj('star', 'red', [500, 500, 700, 700]), obj('digit', 'black', [800, 100, 900, 300])];
  const tasks = [
    { task: 'colour', object: 1 }, { task: 'relation', relation: 'left', a: 0, b: 2 }, { task: 'count', colour: 'red' },
    { task: 'count', shape: 'square' }, { task: 'count' }, { task: 'exists', colour: 'red', shape: 'star' },
    { task: 'exists', colour: 'blue', shape: 'star' }, { task: 'read' }, { task: 'caption' }, { task: 'click', object: 0 },
  ];
  assert.deepEqual(turnBoxes(tasks, objs), [
    [objs[1]!.box1000], [objs[0]!.box1000, objs[2]!.box1000], [objs[0]!.box1000, objs[1]!.box1000],
    [], objs.map((o) => o.box1000), [objs[1]!.box1000], [], [objs[2]!.box1000], [], [objs[0]!.box1000],
  ]);
  assert.deepEqual(turnBoxes([{ task: 'read' }], objs.slice(0, 2)), [[]]);
  assert.equal(turnBoxes(undefined, objs), null);
});

test('boxCells: cells overlapping a quarter of the cell (or of the box), plus the centre cell', () => {
  // n = 6: cells are 166.7 wide
  assert.deepEqual(boxCells([0, 0, 100, 100], 6), [0]);
  assert.deepEqual(boxCells([150, 150, 350, 350], 6), [7]); // slivers of 16.7 into the neighbours do not count
  assert.deepEqual(boxCells([100, 100, 400, 250], 6), [1, 7]); // 66.7-wide edges into cells 0, 2, 6, 8 are too little
  assert.deepEqual(boxCells([100, 100, 400, 400], 6), [1, 6, 7, 8, 13]); // a plus: the corner cells get 66.7²
  assert.deepEqual(boxCells([900, 900, 1000, 1000], 6), [35]);
  // a thin digit lying on a cell border still gets its centre cell
  assert.deepEqual(boxCells([330, 0, 340, 160], 6), [1, 2]);
});

test('attendTargets: one query per answer token but the closing one, keys = the box cells of its own sample', () => {
  // sample 0: [bos, img×4, q, q, a, a, end, q, a, end]; sample 1: captions (not supervised)
  const I = IMAGE_SLOT;
  const e0: Encoded = { id: 'a', ids: Int32Array.from([1, I, I, I, I, 5, 6, 7, 8, 9, 5, 7, 9]), imageStarts: [1],
    learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1]), images: ['a.png'] };
  const e1: Encoded = { id: 'b', ids: Int32Array.from([1, I, I, I, I, 5, 7, 9]), imageStarts: [1],
    learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1]), images: ['b.png'] };
  const b = collate([e0, e1], 4);
  const T = b.T;
  assert.equal(T, 13);
  const boxes = new Map<Encoded, Box[][] | null>([[e0, [[[0, 0, 400, 400]], [[600, 600, 900, 900]]]], [e1, null]]);
  const t = attendTargets(b, [e0, e1], imageKeys(4, (e) => boxes.get(e) ?? null))!;
  // turn 0 learns tokens 7, 8, 9 (9 closes it): queries at 6, 7; turn 1 learns 11, 12: query at 10
  assert.deepEqual([...t.queries], [6, 7, 10]);
  const BT = 2 * T;
  const row = (q: number, a: Float32Array) => [...a.subarray(q * BT, (q + 1) * BT)];
  // 2×2 grid: the first box covers cell 0 (token 1), the second cell 3 (token 4)
  assert.deepEqual(row(0, t.target).flatMap((v, j) => (v ? [j] : [])), [1]);
  assert.deepEqual(row(2, t.target).flatMap((v, j) => (v ? [j] : [])), [4]);
  // allowed: own sample, up to and including the query position
  assert.deepEqual(row(1, t.allowed).flatMap((v, j) => (v === 0 ? [j] : [])), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(attendTargets(b, [e0, e1], imageKeys(4, () => null)), null);
  assert.throws(() => attendTargets(b, [e0, e1], imageKeys(3, (e) => boxes.get(e) ?? null)), ConfigError);
});

test('turnWords: the words a question may name its objects by (never the answer itself)', () => {
  const objs = [{ ...obj('circle', 'red', [0, 0, 100, 100]), size: 'small' }, { ...obj('star', 'blue', [500, 500, 700, 700]), size: 'large' },
    { ...obj('digit', 'black', [800, 100, 900, 300]), size: null }];
  assert.deepEqual(turnWords([
    { task: 'colour', object: 1 }, { task: 'shape', object: 0 }, { task: 'ground', object: 2 }, { task: 'relation', a: 0, b: 1 },
    { task: 'count', colour: 'green' }, { task: 'exists', colour: 'red', shape: 'star' }, { task: 'read' }, { task: 'caption' },
  ], objs), [
    ['large', 'star'], ['small', 'red'], ['black', 'digit'], ['small', 'red', 'circle', 'large', 'blue', 'star'],
    ['green'], ['red', 'star'], [], [],
  ]);
  assert.equal(turnWords(undefined, objs), null);
});

test('questionKeys: the tokens of the current user turn that name the object, plurals too; not earlier turns', () => {
  const text: Record<number, string> = { 10: 'What', 11: ' color', 12: ' is', 13: ' the', 14: ' star', 15: '?', 16: ' red', 17: ' Stars', 9: '<end>' };
  const I = IMAGE_SLOT;
  // [bos, img×4, What color is the star ?, red <end>, What Stars ?, red <end>]
  const e: Encoded = { id: 'q', ids: Int32Array.from([1, I, I, I, I, 10, 11, 12, 13, 14, 15, 16, 9, 10, 17, 15, 16, 9]), imageStarts: [1],
    learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1]), images: ['q.png'] };
  const b = collate([e], 4);
  const t = attendTargets(b, [e], questionKeys(() => [['star'], ['star']], (id) => text[id] ?? ''))!;
  assert.deepEqual([...t.queries], [10, 15]);
  const keys = (i: number) => [...t.target.subarray(i * b.T, (i + 1) * b.T)].flatMap((v, j) => (v ? [j] : []));
  assert.deepEqual(keys(0), [9]);
  assert.deepEqual(keys(1), [14]); // " Stars" of this turn, not " star" of the first
  assert.equal(attendTargets(b, [e], questionKeys(() => [['circle'], []], (id) => text[id] ?? '')), null);
  // a word split over two tokens ("st" + "ar") gives both; "starry" is not "star"
  const split: Record<number, string> = { ...text, 14: ' st', 18: 'ar', 19: ' starry' };
  const e2: Encoded = { ...e, ids: Int32Array.from([1, I, I, I, I, 10, 19, 12, 13, 14, 18, 16, 9]), learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]) };
  const t2 = attendTargets(collate([e2], 4), [e2], questionKeys(() => [['star']], (id) => split[id] ?? ''))!;
  assert.deepEqual([...t2.target.subarray(0, 13)].flatMap((v, j) => (v ? [j] : [])), [9, 10]);
});

/** The loss by hand: per query, softmax over allowed keys of q·k/√D for the head, −log of the target mass. */
function naive(q: Float32Array, k: Float32Array, dims: number[], head: number, t: ReturnType<typeof attendTargets> & object): number {
  const [B, T, H, Hkv, D] = dims as [number, number, number, number, number];
  const kvh = Math.floor(head / (H / Hkv));
  let total = 0;
  t.queries.forEach((p, i) => {
    const logits: number[] = [];
    for (let j = 0; j < B * T; j++) {
      let d = 0;
      for (let c = 0; c < D; c++) d += q[(p * H + head) * D + c]! * k[(j * Hkv + kvh) * D + c]!;
      logits.push(t.allowed[i * B * T + j]! < 0 ? -Infinity : d / Math.sqrt(D));
    }
    const m = Math.max(...logits);
    const z = logits.reduce((s, x) => s + Math.exp(x - m), 0);
    const mass = logits.reduce((s, x, j) => s + (t.target[i * B * T + j] ? Math.exp(x - m) / z : 0), 0);
    total += -Math.log(mass + 1e-6);
  });
  return total / t.queries.length;
}

test('attendLoss equals the hand computation (GQA head → its kv head) and its gradient matches finite differences', () => {
  const B = 2, T = 13, H = 4, Hkv = 2, D = 8;
  const I = IMAGE_SLOT;
  const e: Encoded = { id: 'a', ids: Int32Array.from([1, I, I, I, I, 5, 6, 7, 8, 9, 5, 7, 9]), imageStarts: [1],
    learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1]), images: ['a.png'] };
  const e2: Encoded = { ...e, id: 'b', images: ['b.png'] };
  const b = collate([e, e2], 4);
  const t = attendTargets(b, [e, e2], imageKeys(4, (s) => (s === e ? [[[0, 0, 1000, 400]], [[600, 600, 900, 900]]] : [[[0, 500, 400, 900]], []])))!;
  assert.equal(t.queries.length, 5); // 3 of the first sample, 2 of the second's first turn
  const rng = new Rng(3);
  const q = randn([B, T, H, D], rng), k = randn([B, T, Hkv, D], rng);
  for (const head of [0, 3]) {
    const got = attendLoss(q, k, head, t).item();
    assert.ok(Math.abs(got - naive(q.toArray() as Float32Array, k.toArray() as Float32Array, [B, T, H, Hkv, D], head, t)) < 1e-4, `head ${head}`);
  }
  gradcheck((qq, kk) => attendLoss(qq!, kk!, 1, t), [q, k]);
});

test('a head trained with the loss learns to look at the named token: mass on the target goes from ~1/len to > 0.9', () => {
  // queries see a "question" embedding naming one of 4 image tokens; keys are the image tokens' own embeddings
  const rng = new Rng(9);
  const T = 8, D = 16, B = 8;
  const I = IMAGE_SLOT;
  const wq = randn([D, D], rng, 0.3).param(), wk = randn([D, D], rng, 0.3).param();
  const opt = new AdamW([wq, wk], { lr: 0.05, weightDecay: 0 });
  const tokens = randn([4, D], rng).toArray() as Float32Array; // what each of the 4 image cells "looks like"
  const words = randn([4, D], rng).toArray() as Float32Array; // the question's word for each cell
  const mass = (it: number): number => {
    const named = Array.from({ length: B }, (_, s) => (s + it) % 4);
    const es: Encoded[] = named.map((_, s) => ({ id: `${s}`, ids: Int32Array.from([1, I, I, I, I, 5, 7, 9]), imageStarts: [1],
      learn: Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1]), images: [`${s}.png`] }));
    const b = collate(es, 4);
    const cellBox = (c: number): Box => [(c % 2) * 500 + 100, Math.floor(c / 2) * 500 + 100, (c % 2) * 500 + 400, Math.floor(c / 2) * 500 + 400];
    const t = attendTargets(b, es, imageKeys(4, (e) => [[cellBox(named[+e.id]!)]]))!;
    const x = new Float32Array(B * T * D);
    named.forEach((c, s) => {
      for (let j = 0; j < 4; j++) x.set(tokens.subarray(j * D, (j + 1) * D), (s * T + 1 + j) * D);
      x.set(words.subarray(c * D, (c + 1) * D), (s * T + 5) * D); // the question names cell c
    });
    const l = tidy(() => {
      const xt = Tensor.from(x, [B * T, D]);
      const l = attendLoss(reshape(linear(xt, wq), [B, T, 1, D]), reshape(linear(xt, wk), [B, T, 1, D]), 0, t);
      backward(l);
      return l.item();
    });
    opt.step();
    opt.zeroGrad();
    return Math.exp(-l);
  };
  const first = mass(0);
  let last = 0;
  for (let it = 1; it <= 150; it++) last = mass(it);
  assert.ok(first < 0.5, `untrained mass ${first}`);
  assert.ok(last > 0.9, `trained mass ${last}`);
});

test('in the training loop: the instruct stage adds the term (same first batch, higher logged loss), and needs scene metadata', async () => {
  const { rmSync } = await import('node:fs');
  const { train } = await import('../../src/train/loop.ts');
  const { tinyConfig, squaresDataset, shapesWorld, dialogueStage } = await import('./helpers.ts');
  const { InputError } = await import('../../src/errors.ts');
  const root = await shapesWorld('vista-attend-', 24, 1);
  const stage = (extra: Record<string, number> = {}) => dialogueStage(3, 6, extra);
  const losses = async (extra?: Record<string, number>) => (await train(tinyConfig(root, stage(extra)), { progress: false })).state.history.map((e) => e.loss);
  const p = await losses();
  const a = await losses({ attend: 1, attendLayer: 1 });
  const aq = await losses({ attend: 1, attendLayer: 1, attendQuestion: 1 });
  // identical model, data and first batch: the difference at step 1 is the attention term, −log(mass) ≫ 0 untrained
  assert.ok(a[0]! - p[0]! > 1, `with attend ${a[0]} vs without ${p[0]}`);
  assert.ok(aq[0]! - a[0]! > 1, `with the question hop ${aq[0]} vs without ${a[0]}`);
  assert.notDeepEqual(a.slice(1), p.slice(1));
  assert.throws(() => tinyConfig(root, stage({ attendQuestion: 1, attendLayer: 0 })), /attendQuestion: the question hop runs in the layer below/);
  await assert.rejects(train(tinyConfig(await squaresDataset(), stage({ attend: 1 })), { progress: false }), InputError);
  rmSync(root, { recursive: true, force: true });
});
