// Dense per-patch supervision of the vision tower (src/train/dense.ts): targets from scene metadata, and a loss
// that trains the tower.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DenseHead, boxDigits, denseClasses, denseLoss, denseTargets, loadDenseIndex, type DenseObject } from '../../src/train/dense.ts';
import { sampleScene } from '../../src/data/scene.ts';
import { COLOURS, SHAPES } from '../../src/data/vocab.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/tensor/autograd.ts';
import { VisionTower } from '../../src/models/vit.ts';
import { AdamW } from '../../src/tensor/optim.ts';
import { InputError } from '../../src/errors.ts';
import { initBackend } from '../../src/backend/index.ts';
import { tempDir } from '../helpers/tmp.ts';

const obj = (shape: string, colour: string, size: string | null, box1000: [number, number, number, number], digit: number | null = null): DenseObject =>
  ({ shape, colour, size, digit, box1000 });

test('factor classes: background 0, shapes by colour/shape/size, digits by value', () => {
  assert.deepEqual(denseClasses(obj('circle', 'red', 'small', [0, 0, 100, 100])), { colour: 1, shape: 1, size: 1, digit: 0 });
  assert.deepEqual(denseClasses(obj('star', 'orange', 'large', [0, 0, 100, 100])), { colour: 6, shape: 4, size: 2, digit: 0 });
  assert.deepEqual(denseClasses(obj('digit', 'black', null, [0, 0, 100, 100], 7)), { colour: 7, shape: 5, size: 0, digit: 8 });
  assert.throws(() => denseClasses(obj('hexagon', 'red', 'small', [0, 0, 1, 1])), InputError);
  assert.throws(() => denseClasses(obj('digit', 'black', null, [0, 0, 1, 1], null)), InputError);
});

test('targets: every object owns the patches whose centres lie in its box, plus its centre patch, and one centre each', () => {
  const G = 4; // patch cells of 250 units, centres at 125, 375, 625, 875
  const a = obj('square', 'blue', 'large', [100, 100, 400, 400]); // contains centres (125|375, 125|375)
  const thin = obj('digit', 'black', null, [700, 600, 740, 900], 3); // contains no centre column: owns its centre patch only
  const t = denseTargets([[a, thin], []], G);
  const P = G * G;
  const ownedA = [0, 1, 4, 5];
  // a's centre (250, 250) → cell (1, 1) = patch 5; the digit's (720, 750) → cell (2, 3) = patch 14
  assert.deepEqual([...t.centre.slice(0, P)].map((v, i) => (v ? i : -1)).filter((i) => i >= 0), [5, 3 * G + 2]);
  assert.equal(t.centre.slice(P).reduce((s, v) => s + v, 0), 0, 'the empty scene has no centres');
  assert.deepEqual([...t.owned], [...ownedA, 3 * G + 2]);
  for (const p of ownedA) assert.equal(t.cls.shape[p], 2);
  assert.equal(t.cls.digit[3 * G + 2], 4);
  assert.equal(t.cls.colour[3 * G + 2], 7);
  for (let p = 0; p < 2 * P; p++) if (![...ownedA, 3 * G + 2].includes(p)) assert.equal(t.cls.colour[p], 0);
  assert.deepEqual([...t.box.slice(0, 4)].map((v) => +v.toFixed(3)), [0.1, 0.1, 0.4, 0.4]);
  assert.deepEqual([...t.box.slice(16, 20)].map((v) => +v.toFixed(3)), [0.7, 0.6, 0.74, 0.9]);
});

test('targets: the scene summary counts each (colour, shape) pair and each digit, the same for every patch of an image', () => {
  const K = COLOURS.length * SHAPES.length + 10;
  const blueSquare = COLOURS.indexOf('blue') * SHAPES.length + SHAPES.indexOf('square');
  const redCircle = COLOURS.indexOf('red') * SHAPES.length + SHAPES.indexOf('circle');
  const t = denseTargets([[
    obj('square', 'blue', 'large', [0, 0, 300, 300]), obj('square', 'blue', 'small', [400, 0, 550, 150]),
    obj('circle', 'red', 'small', [0, 600, 150, 750]), obj('digit', 'black', null, [700, 600, 740, 900], 3),
  ], []], 4);
  assert.equal(t.scene.length, 2 * K);
  const want = new Array(K).fill(0);
  want[blueSquare] = 2; // sizes are not told apart
  want[redCircle] = 1;
  want[COLOURS.length * SHAPES.length + 3] = 1;
  assert.deepEqual([...t.scene.slice(0, K)], want);
  assert.deepEqual([...t.scene.slice(K)], new Array(K).fill(0), 'the empty scene sums to nothing');
});

test('targets of sampled scenes: each object owns at least one patch and exactly one centre', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 40; i++) {
    const scene = sampleScene(rng, { size: 128 });
    const t = denseTargets([scene.objects], 12);
    assert.equal(t.centre.reduce((s, v) => s + v, 0), scene.objects.length, `scene ${i}: one centre per object`);
    const owners = new Set<string>();
    for (let r = 0; r < t.owned.length; r++) owners.add([...t.box.slice(r * 4, r * 4 + 4)].join());
    assert.equal(owners.size, scene.objects.length, `scene ${i}: every object owns a patch`);
  }
});

test('the dense loss trains the tower: it falls on a fixed batch and reaches every tower parameter', () => {
  initBackend();
  const tower = new VisionTower({
    image_size: 32, patch_size: 8, embedding_length: 32, feed_forward_length: 64, block_count: 1, 'attention.head_count': 2,
    'attention.layer_norm_epsilon': 1e-6, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], activation: 'gelu_tanh',
    class_token: false, patch_bias: true, pre_ln: false, post_ln: true,
  }, 3);
  const head = new DenseHead(32, 4);
  const rng = new Rng(9);
  const px = Tensor.from(Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.normal()), [2, 3, 32, 32]);
  const t = denseTargets([[obj('circle', 'red', 'large', [0, 0, 500, 500])], [obj('digit', 'black', null, [500, 250, 750, 1000], 1)]], 4);
  const params = [...tower.parameters(), ...head.parameters()];
  const opt = new AdamW([{ params, weightDecay: 0 }], { lr: 3e-3 });
  const losses: number[] = [];
  for (let s = 0; s < 30; s++) {
    const l = denseLoss(head, tower.forward(px), t);
    losses.push(l.item());
    backward(l);
    if (s === 0) for (const [n, p] of tower.namedParameters()) assert.ok(p.grad && p.grad.toArray().some((g) => g !== 0), `${n} gets a gradient`);
    opt.step();
    opt.zeroGrad();
  }
  assert.ok(losses[29]! < 0.5 * losses[0]!, `loss ${losses[0]!.toFixed(3)} → ${losses[29]!.toFixed(3)}`);
});

test('the scene summary term: off at weight 0, learned by every patch at weight > 0, refused on a head made without it', () => {
  initBackend();
  const rng = new Rng(2);
  const E = 16, P = 4;
  const feats = Tensor.from(Float32Array.from({ length: 2 * P * E }, () => rng.normal()), [2, P, E]);
  const t = denseTargets([[obj('star', 'green', 'small', [0, 0, 400, 400]), obj('star', 'green', 'large', [500, 500, 900, 900])], []], 2);
  const plain = new DenseHead(E, 7);
  const withScene = new DenseHead(E, 7, { scene: true });
  // the scene head is made last: the other heads are the same as without it, and weight 0 is the plain loss
  assert.equal(denseLoss(withScene, feats, t, 0).item(), denseLoss(plain, feats, t).item());
  assert.throws(() => denseLoss(plain, feats, t, 1), /scene head/);
  const opt = new AdamW([{ params: [...withScene.scene!.parameters()], weightDecay: 0 }], { lr: 0.05 });
  const sceneOnly = () => denseLoss(withScene, feats, t, 1).item() - denseLoss(withScene, feats, t, 0).item();
  const before = sceneOnly();
  assert.ok(before > 0.5, `an untrained scene head is wrong (${before.toFixed(3)})`);
  for (let s = 0; s < 200; s++) {
    backward(denseLoss(withScene, feats, t, 1));
    opt.step();
    opt.zeroGrad();
  }
  const after = sceneOnly();
  assert.ok(after < 0.05 * before, `scene term ${before.toFixed(3)} → ${after.toFixed(3)}`);
  // every patch of the first image now says "two green stars"
  const slot = COLOURS.indexOf('green') * SHAPES.length + SHAPES.indexOf('star');
  const K = COLOURS.length * SHAPES.length + 10;
  const pred = withScene.scene!.forward(feats).data; // (2, P, K)
  for (let p = 0; p < P; p++) assert.ok(Math.abs(pred[p * K + slot]! - 2) < 0.3, `patch ${p}: ${pred[p * K + slot]}`);
});

test('position digits: hundreds and tens of each box edge and of the centre a click names, per owned patch', () => {
  // the centre (as src/data/facts.ts clickPoint rounds it): (313 + 445) / 2 = 379, (305 + 555) / 2 = 430
  assert.deepEqual(boxDigits([313, 305, 445, 555]), [3, 1, 3, 0, 4, 4, 5, 5, 3, 7, 4, 3]);
  // numbers below 100 have hundreds 0; the canvas edge (1000) stays in the ten classes
  assert.deepEqual(boxDigits([7, 95, 640, 1000]), [0, 0, 0, 9, 6, 4, 9, 9, 3, 2, 5, 4]);
  const a = obj('circle', 'red', 'large', [0, 0, 400, 400]), b = obj('square', 'blue', 'small', [600, 600, 800, 800]);
  const t = denseTargets([[a, b]], 4);
  assert.equal(t.digits.length, t.owned.length * 12);
  [...t.owned].forEach((r, i) => {
    const want = r % 16 < 8 && r % 4 < 2 ? boxDigits(a.box1000) : boxDigits(b.box1000);
    assert.deepEqual([...t.digits.subarray(i * 12, i * 12 + 12)], want, `patch ${r}`);
  });
});

test('the position term: off at weight 0, learned on object patches at weight > 0, refused on a head made without it', () => {
  initBackend();
  const rng = new Rng(3);
  const E = 16, P = 4;
  const feats = Tensor.from(Float32Array.from({ length: 2 * P * E }, () => rng.normal()), [2, P, E]);
  const t = denseTargets([[obj('star', 'green', 'small', [40, 60, 380, 420]), obj('circle', 'red', 'large', [520, 510, 910, 960])], [obj('square', 'blue', 'small', [130, 620, 330, 850])]], 2);
  const plain = new DenseHead(E, 7);
  const withPos = new DenseHead(E, 7, { position: true });
  assert.equal(denseLoss(withPos, feats, t, 0, 1, 0).item(), denseLoss(plain, feats, t).item());
  assert.throws(() => denseLoss(plain, feats, t, 0, 1, 1), /position head/);
  const opt = new AdamW([{ params: [...withPos.position!.parameters()], weightDecay: 0 }], { lr: 0.05 });
  const posOnly = () => denseLoss(withPos, feats, t, 0, 1, 1).item() - denseLoss(withPos, feats, t, 0, 1, 0).item();
  const before = posOnly();
  assert.ok(before > 1.5, `an untrained position head is near chance, ln 10 (${before.toFixed(3)})`);
  for (let s = 0; s < 200; s++) {
    backward(denseLoss(withPos, feats, t, 0, 1, 1));
    opt.step();
    opt.zeroGrad();
  }
  assert.ok(posOnly() < 0.05 * before, `position term ${before.toFixed(3)} → ${posOnly().toFixed(3)}`);
  // each object patch now names its own box's digits
  const logits = withPos.position!.forward(Tensor.from(feats.data, [2 * P, E])).data;
  [...t.owned].forEach((r, i) => {
    for (let g = 0; g < 12; g++) {
      const row = Array.from(logits.subarray(r * 120 + g * 10, r * 120 + g * 10 + 10));
      assert.equal(row.indexOf(Math.max(...row)), t.digits[i * 12 + g], `patch ${r} digit ${g}`);
    }
  });
});

test('scene metadata index: by absolute image path; a malformed line is an InputError naming the line', async () => {
  const dir = tempDir('vista-dense-');
  const line = { image: 'images/a.png', objects: [obj('circle', 'red', 'small', [1, 2, 3, 4])] };
  writeFileSync(path.join(dir, 'metadata.jsonl'), `${JSON.stringify(line)}\n`);
  const idx = await loadDenseIndex(dir);
  assert.equal(idx.get(path.join(dir, 'images/a.png'))?.[0]?.shape, 'circle');
  writeFileSync(path.join(dir, 'metadata.jsonl'), `${JSON.stringify(line)}\n{"image": 3}\n`);
  await assert.rejects(loadDenseIndex(dir), (e) => e instanceof InputError && /metadata\.jsonl:2/.test(e.message));
  await assert.rejects(loadDenseIndex(path.join(dir, 'nowhere')), (e) => e instanceof InputError && /metadata\.jsonl/.test(e.message));
});

test('object weight: each object patch counts w times a background patch in the class and centre losses', () => {
  initBackend();
  const rng = new Rng(3);
  const E = 16, G = 4, P = G * G;
  const feats = Tensor.from(Float32Array.from({ length: 2 * P * E }, () => rng.normal()), [2, P, E]);
  const t = denseTargets([[obj('star', 'green', 'small', [0, 0, 400, 400]), obj('digit', 'black', null, [550, 550, 900, 950], 4)], [obj('circle', 'red', 'large', [100, 500, 600, 1000])]], G);
  const head = new DenseHead(E, 9);
  // per-patch cross-entropies of each head, by hand
  const f2 = Tensor.from(feats.data.slice(), [2 * P, E]);
  const perPatch = (lin: DenseHead['shape'], cls: Int32Array): number[] => {
    const lg = lin.forward(f2).data, C = lin.weight.shape[0]!;
    return Array.from(cls, (c, r) => {
      const row = Array.from(lg.subarray(r * C, (r + 1) * C));
      const m = Math.max(...row);
      return Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0)) + m - row[c]!;
    });
  };
  const owned = new Set(t.owned);
  assert.ok(owned.size > 0 && owned.size < 2 * P);
  const heads: [DenseHead['shape'], Int32Array][] = [[head.centre, t.centre], [head.colour, t.cls.colour], [head.shape, t.cls.shape], [head.size, t.cls.size], [head.digit, t.cls.digit]];
  const weighted = (w: number) => heads.reduce((acc, [lin, cls]) => {
    const ce = perPatch(lin, cls);
    const ws = ce.map((_, r) => (owned.has(r) ? w : 1));
    return acc + ce.reduce((a, x, r) => a + ws[r]! * x, 0) / ws.reduce((a, x) => a + x, 0);
  }, 0);
  const plain = denseLoss(head, feats, t).item();
  assert.equal(denseLoss(head, feats, t, 0, 1).item(), plain);
  for (const w of [5, 0.5]) {
    const got = denseLoss(head, feats, t, 0, w).item() - plain;
    const want = weighted(w) - weighted(1);
    assert.ok(Math.abs(got - want) < 1e-4, `w ${w}: ${got} vs ${want}`);
    assert.ok(Math.abs(want) > 1e-3, 'the weight changes the loss');
  }
});
