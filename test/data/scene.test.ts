// Scene sampler invariants over many scenes, determinism, and split separation by content hash.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.ts';
import { sampleScene, splitOfHash, type Scene } from '../../src/data/scene.ts';
import { splitScenes } from '../../src/data/generate.ts';
import { ConfigError } from '../../src/errors.ts';

const N = 600;
const scenes: Scene[] = [];
const stream = splitScenes(2024, 'train');
for (let i = 0; i < N; i++) scenes.push(stream.next().value as Scene);

describe('scene sampler', () => {
  test(`${N} scenes: inside the canvas, ≥ 3 px apart, sizes and colours in range, counts 1–5`, () => {
    for (const s of scenes) {
      assert.equal(s.width, 128);
      const objs = s.objects;
      assert.ok(objs.length >= 1 && objs.length <= 5, `count ${objs.length}`);
      assert.ok(objs.filter((o) => o.shape === 'digit').length <= 1);
      for (const [i, o] of objs.entries()) {
        const [x0, y0, x1, y1] = o.box;
        assert.ok(x0 >= 0 && y0 >= 0 && x1 <= 128 && y1 <= 128 && x0 < x1 && y0 < y1, `box ${o.box}`);
        const side = Math.max(x1 - x0, y1 - y0);
        if (o.shape === 'digit') {
          assert.equal(o.colour, 'black');
          assert.ok(o.digit !== null && o.digit >= 0 && o.digit <= 9);
          assert.ok(y1 - y0 >= 0.22 * 128 && y1 - y0 <= 0.32 * 128, `digit height ${y1 - y0}`);
        } else {
          const [lo, hi] = o.size === 'small' ? [0.14, 0.2] : [0.26, 0.34];
          assert.ok(side >= lo * 128 && side <= hi * 128, `${o.size} ${o.shape} side ${side}`);
          assert.ok(o.rgb.every((v, k) => Math.abs(v - { red: [220, 40, 40], green: [40, 170, 60], blue: [40, 80, 220], yellow: [240, 200, 30], purple: [140, 60, 190], orange: [245, 130, 30] }[o.colour as 'red']![k]!) <= 20));
        }
        for (const p of objs.slice(i + 1)) {
          const [a, b] = [o.box, p.box];
          const apart = a[2] + 3 <= b[0] || b[2] + 3 <= a[0] || a[3] + 3 <= b[1] || b[3] + 3 <= a[1];
          assert.ok(apart, `boxes ${a} and ${p.box} closer than 3 px`);
        }
        assert.deepEqual(o.box1000, o.box.map((v) => Math.round((v * 1000) / 128)));
      }
    }
  });

  test('balanced: counts 1–5 evenly, digit share ≈ 30 %, all shapes/colours/sizes/backgrounds', () => {
    const byCount = [0, 0, 0, 0, 0];
    for (const s of scenes) byCount[s.objects.length - 1]!++;
    assert.deepEqual(byCount, [N / 5, N / 5, N / 5, N / 5, N / 5]);
    const digits = scenes.filter((s) => s.objects.some((o) => o.shape === 'digit')).length / N;
    assert.ok(Math.abs(digits - 0.3) <= 0.05, `digit share ${digits}`);
    const seen = (f: (o: Scene['objects'][number]) => unknown): Set<unknown> => new Set(scenes.flatMap((s) => s.objects.map(f)));
    assert.equal(seen((o) => o.shape).size, 5);
    assert.equal(seen((o) => o.colour).size, 7);
    assert.equal(seen((o) => o.size).size, 3);
    assert.equal(new Set(scenes.map((s) => s.background.name)).size, 3);
    assert.ok(scenes.some((s) => s.noise.sigma > 0) && scenes.some((s) => s.noise.blur));
    assert.ok(scenes.every((s) => s.noise.sigma <= 0.05));
  });

  test('free sampling (no stratification) is also roughly balanced', () => {
    const r = new Rng(77);
    const free = Array.from({ length: N }, () => sampleScene(r));
    const byCount = [0, 0, 0, 0, 0];
    for (const s of free) byCount[s.objects.length - 1]!++;
    for (const c of byCount) assert.ok(Math.abs(c - N / 5) < 0.08 * N, `counts ${byCount}`);
    const digits = free.filter((s) => s.objects.some((o) => o.shape === 'digit')).length / N;
    assert.ok(Math.abs(digits - 0.3) <= 0.05, `digit share ${digits}`);
  });

  test('deterministic per seed; other sizes scale boxes and gaps', () => {
    const a = new Rng(9), b = new Rng(9);
    for (let i = 0; i < 20; i++) assert.deepEqual(sampleScene(a), sampleScene(b));
    const r = new Rng(3);
    for (let i = 0; i < 50; i++) {
      const s = sampleScene(r, { size: 256 });
      for (const o of s.objects) assert.ok(o.box[2] <= 256 && o.box[3] <= 256);
      for (const [i, o] of s.objects.entries())
        for (const p of s.objects.slice(i + 1)) {
          const [a, b] = [o.box, p.box];
          assert.ok(a[2] + 6 <= b[0] || b[2] + 6 <= a[0] || a[3] + 6 <= b[1] || b[3] + 6 <= a[1]);
        }
    }
    assert.throws(() => sampleScene(new Rng(1), { size: 8 }), ConfigError);
  });

  test('splits: each stream keeps only its own hash bucket, so train/val/test share no scene', () => {
    const hashes = { train: new Set<string>(), val: new Set<string>(), test: new Set<string>() };
    for (const split of ['train', 'val', 'test'] as const) {
      const it = splitScenes(5, split);
      for (let i = 0; i < 150; i++) {
        const s = it.next().value as Scene;
        assert.equal(splitOfHash(s.hash), split);
        hashes[split].add(s.hash);
      }
      assert.equal(hashes[split].size, 150);
    }
    for (const h of hashes.train) assert.ok(!hashes.val.has(h) && !hashes.test.has(h));
    for (const h of hashes.val) assert.ok(!hashes.test.has(h));
    // even the same seed and stream cannot leak a scene into another split
    const again = splitScenes(5, 'val').next().value as Scene;
    assert.ok(!hashes.train.has(again.hash));
  });
});
