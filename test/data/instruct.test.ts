// Every generated answer is re-derived here from the metadata (independently of src/data/facts.ts), object
// names in questions are parsed back and must pick out the annotated object uniquely, follow-ups must point
// at the previous turn's object, and each task must be asked in ≥ 5 distinct phrasings.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.ts';
import { sampleScene, type Scene, type SceneObject } from '../../src/data/scene.ts';
import { splitScenes } from '../../src/data/generate.ts';
import { ConfigError } from '../../src/errors.ts';
import { CLICK_TOOL, captionSample, dialogueSample, evalItems, type LlavaSample, type TaskSpec, type TurnMeta } from '../../src/data/instruct.ts';

const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'black'];
const SHAPES = ['circle', 'square', 'triangle', 'star', 'digit'];

const cx = (o: SceneObject): number => (o.box1000[0] + o.box1000[2]) / 2;
const cy = (o: SceneObject): number => (o.box1000[1] + o.box1000[3]) / 2;

/** Expected answer for a task spec, from metadata only. */
function expected(scene: Scene, t: TaskSpec): string {
  const objs = scene.objects;
  switch (t.task) {
    case 'count': return String(objs.filter((o) => (!t.colour || o.colour === t.colour) && (!t.shape || o.shape === t.shape)).length);
    case 'colour': return objs[t.object]!.colour;
    case 'shape': return objs[t.object]!.shape;
    case 'exists': return objs.some((o) => o.colour === t.colour && o.shape === t.shape) ? 'yes' : 'no';
    case 'relation': {
      const a = objs[t.a]!, b = objs[t.b]!;
      const d = { left: cx(b) - cx(a), right: cx(a) - cx(b), above: cy(b) - cy(a), below: cy(a) - cy(b) }[t.relation];
      assert.ok(Math.abs(d) >= 20, `ambiguous relation asked (${d})`);
      return d > 0 ? 'yes' : 'no';
    }
    case 'read': { const d = objs.find((o) => o.shape === 'digit'); return d ? String(d.digit) : 'none'; }
    case 'ground': return `[${objs[t.object]!.box1000.join(', ')}]`;
    case 'click': return '';
    case 'caption': return '';
  }
}

/** Objects matching the words of a name like "small red circle" / "circle" / "large circle". */
const resolve = (objs: readonly SceneObject[], name: string): SceneObject[] =>
  objs.filter((o) => name.split(' ').every((w) => w === o.size || w === o.colour || w === o.shape));
const NAME = new RegExp(`\\bthe ((?:(?:small|large) )?(?:(?:${COLOURS.join('|')}) )?(?:${SHAPES.join('|')}))\\b`, 'gi');
const names = (q: string): string[] => [...q.matchAll(NAME)].map((m) => m[1]!.toLowerCase());

function shortestUnique(objs: readonly SceneObject[], o: SceneObject): string | null {
  for (const n of [o.shape, `${o.colour} ${o.shape}`, ...(o.size ? [`${o.size} ${o.colour} ${o.shape}`] : [])])
    if (resolve(objs, n).length === 1) return n;
  return null;
}

/** The object a turn is "about", for follow-ups: what the next "it" must refer to. */
function focusOf(scene: Scene, t: TurnMeta): number | null {
  if (t.task === 'colour' || t.task === 'shape' || t.task === 'ground' || t.task === 'click') return t.object;
  if (t.task === 'relation') return t.a;
  if (t.task === 'read') return scene.objects.find((o) => o.shape === 'digit')?.id ?? null;
  if (t.task === 'exists') {
    const hits = scene.objects.filter((o) => o.colour === t.colour && o.shape === t.shape);
    return hits.length === 1 ? hits[0]!.id : null;
  }
  return null;
}

const scenes: Scene[] = [];
const stream = splitScenes(42, 'train');
for (let i = 0; i < 1000; i++) scenes.push(stream.next().value as Scene);
const rng = new Rng(43);
const dialogues: [Scene, LlavaSample][] = scenes.map((s, i) => [s, dialogueSample(s, `d${i}`, `images/d${i}.png`, rng)]);

describe('dialogues', () => {
  test('LLaVA format: <image> once at the start, alternating turns, 2–5 turns, click last with tools declared', () => {
    for (const [, d] of dialogues) {
      const c = d.conversations;
      assert.ok(c.length >= 4 && c.length <= 10 && c.length % 2 === 0, `turns ${c.length}`);
      c.forEach((t, i) => assert.equal(t.from, i % 2 ? 'gpt' : 'human'));
      assert.ok(c[0]!.value.startsWith('<image>\n'));
      assert.equal(c.filter((t) => t.value.includes('<image>')).length, 1);
      assert.equal(d.tasks!.length, c.length / 2);
      const clicks = c.filter((t) => t.tool_call);
      if (clicks.length) {
        assert.equal(clicks.length, 1);
        assert.ok(c.at(-1)!.tool_call, 'a click comes last');
        assert.deepEqual(d.tools, [CLICK_TOOL]);
      }
    }
  });

  test('every answer agrees with the metadata', () => {
    let checked = 0;
    for (const [scene, d] of dialogues)
      d.tasks!.forEach((t, k) => {
        const reply = d.conversations[2 * k + 1]!;
        if (t.task === 'click') {
          const o = scene.objects[t.object]!;
          const { x, y } = reply.tool_call!.arguments;
          assert.equal(reply.tool_call!.name, 'click');
          assert.ok(Number.isInteger(x) && Number.isInteger(y));
          assert.ok(x >= o.box1000[0] && x <= o.box1000[2] && y >= o.box1000[1] && y <= o.box1000[3]);
          assert.ok(Math.abs(x - cx(o)) <= 0.5 && Math.abs(y - cy(o)) <= 0.5);
        } else if (t.task === 'caption') {
          for (const o of scene.objects) assert.ok(reply.value.includes(o.shape === 'digit' ? `digit ${o.digit}` : `${o.size} ${o.colour} ${o.shape}`));
        } else assert.equal(reply.value, expected(scene, t), `${d.conversations[2 * k]!.value}`);
        checked++;
      });
    assert.ok(checked > 2500);
  });

  test('named objects resolve uniquely to the annotated object (shortest-unique rule)', () => {
    for (const [scene, d] of dialogues)
      d.tasks!.forEach((t, k) => {
        if (t.followUp) return;
        const q = d.conversations[2 * k]!.value;
        const objs = scene.objects;
        if (t.task === 'ground' || t.task === 'click') {
          assert.deepEqual(names(q), [shortestUnique(objs, objs[t.object]!)], q);
          assert.deepEqual(resolve(objs, names(q)[0]!).map((o) => o.id), [t.object]);
        }
        if (t.task === 'relation') {
          assert.deepEqual(names(q), [shortestUnique(objs, objs[t.a]!), shortestUnique(objs, objs[t.b]!)], q);
        }
        if (t.task === 'colour') {
          const [n] = names(q);
          assert.ok(n && !COLOURS.some((c) => n.includes(c)), `colour asked by colour: ${q}`);
          assert.deepEqual(resolve(objs, n).map((o) => o.id), [t.object], q);
        }
        if (t.task === 'shape') {
          assert.ok(q.includes(objs[t.object]!.colour));
          assert.equal(objs.filter((o) => o.colour === objs[t.object]!.colour).length, 1);
        }
        if (t.task === 'exists') assert.ok(q.includes(`${t.colour} ${t.shape}`), q);
        if (t.task === 'count' && (t.colour || t.shape)) assert.ok(q.includes(t.colour ?? `${t.shape}s`), q);
      });
  });

  test('no dialogue asks the same thing twice, in other words either (its answer would be on the page)', () => {
    let turns = 0;
    for (const [, d] of dialogues) {
      const seen = new Set<string>();
      for (const t of d.tasks!) {
        const { template: _t, phrasing: _p, followUp: _f, ...spec } = t;
        const key = JSON.stringify(Object.fromEntries(Object.entries(spec).sort(([a], [b]) => a.localeCompare(b))));
        assert.ok(!seen.has(key), `asked twice: ${key} in ${d.conversations.map((c) => c.value).join(' | ')}`);
        seen.add(key);
        turns++;
      }
    }
    assert.ok(turns > 2500, `${turns} turns`);
  });

  test('follow-ups refer to the previous turn (its object, or a count of the same kind)', () => {
    let n = 0;
    for (const [scene, d] of dialogues)
      d.tasks!.forEach((t, k) => {
        if (!t.followUp) return;
        n++;
        const prev = d.tasks![k - 1]!;
        assert.ok(prev, 'a follow-up needs a previous turn');
        const q = d.conversations[2 * k]!.value;
        if (t.task === 'count') {
          assert.equal(prev.task, 'count');
          assert.equal(Boolean(t.colour), Boolean((prev as { colour?: string }).colour));
          assert.ok(!/\b(it|its)\b/.test(q));
        } else {
          const obj = t.task === 'relation' ? t.a : (t as { object: number }).object;
          assert.equal(obj, focusOf(scene, prev), `${d.conversations[2 * (k - 1)]!.value} → ${q}`);
          assert.match(q, /\b(it|its|that one)\b/i);
        }
      });
    assert.ok(n > 300, `only ${n} follow-ups`);
  });

  test('every task appears, with ≥ 5 distinct phrasings each, and exists/relation answers are balanced', () => {
    const phr = new Map<string, Set<string>>();
    const yes = { exists: [0, 0], relation: [0, 0] };
    for (const [, d] of dialogues)
      d.tasks!.forEach((t, k) => {
        const key = t.task === 'count' ? `count-${t.colour ? 'colour' : t.shape ? 'shape' : 'total'}` : t.task;
        if (!phr.has(key)) phr.set(key, new Set());
        phr.get(key)!.add(t.phrasing);
        if (t.task === 'exists' || t.task === 'relation') yes[t.task][d.conversations[2 * k + 1]!.value === 'yes' ? 0 : 1]!++;
      });
    for (const k of ['caption', 'count-total', 'count-colour', 'count-shape', 'colour', 'shape', 'exists', 'relation', 'read', 'ground', 'click'])
      assert.ok((phr.get(k)?.size ?? 0) >= 5, `${k}: ${[...(phr.get(k) ?? [])].join(' | ')}`);
    for (const [k, [y, n]] of Object.entries(yes)) assert.ok(y / (y + n) > 0.35 && y / (y + n) < 0.65, `${k} yes ${y} no ${n}`);
  });

  test('counts of 0 for a named colour or shape occur', () => {
    const zero = dialogues.some(([, d]) => d.tasks!.some((t, k) => t.task === 'count' && (t.colour || t.shape) && d.conversations[2 * k + 1]!.value === '0'));
    assert.ok(zero);
  });

  test('a turn range gives dialogues of that many turns, still valid; a bad range is a ConfigError', () => {
    const r = new Rng(7);
    const lengths = new Set<number>();
    for (const s of scenes.slice(0, 200)) {
      const d = dialogueSample(s, 'x', 'x.png', r, [8, 12]);
      const n = d.conversations.length / 2;
      lengths.add(n);
      assert.ok(n >= 8 && n <= 12, `turns ${n}`);
      assert.equal(d.tasks!.length, n);
      d.tasks!.forEach((t, k) => {
        if (t.task !== 'click' && t.task !== 'caption') assert.equal(d.conversations[2 * k + 1]!.value, expected(s, t));
        if (t.task === 'click') assert.equal(k, n - 1, 'a click comes last');
      });
    }
    assert.deepEqual([...lengths].sort((a, b) => a - b), [8, 9, 10, 11, 12]);
    for (const bad of [[0, 3], [5, 4], [2.5, 3]] as [number, number][])
      assert.throws(() => dialogueSample(scenes[0]!, 'x', 'x.png', r, bad), ConfigError);
  });

  test('deterministic per seed', () => {
    const s = sampleScene(new Rng(1));
    assert.deepEqual(dialogueSample(s, 'a', 'a.png', new Rng(5)), dialogueSample(s, 'a', 'a.png', new Rng(5)));
  });
});

describe('captions and eval items', () => {
  test('canonical caption lists objects left to right', () => {
    const rng2 = new Rng(1);
    let canonical = 0;
    for (const s of scenes.slice(0, 300)) {
      const c = captionSample(s, 'c', 'c.png', rng2).conversations[1]!.value;
      const order = [...s.objects].sort((a, b) => cx(a) - cx(b) || cy(a) - cy(b))
        .map((o) => (o.shape === 'digit' ? `the digit ${o.digit}` : `a ${o.size} ${o.colour} ${o.shape}`));
      const want = order.length === 1 ? order[0]! : `${order.slice(0, -1).join(', ')} and ${order.at(-1)}`;
      if (c === `${want.charAt(0).toUpperCase()}${want.slice(1)}.`) canonical++;
      for (const m of order) assert.ok(c.includes(m.replace(/^(a|the) /, '')), `${c} lacks ${m}`);
    }
    assert.ok(canonical > 100 && canonical < 250, `canonical ${canonical}`);
  });

  test('example from the spec', () => {
    const o = (id: number, shape: string, colour: string, size: string | null, x: number, digit: number | null = null): SceneObject =>
      ({ id, shape, colour, size, digit, rgb: [0, 0, 0], side: 20, outer: [x, 10, x + 20, 30], box: [x, 10, x + 20, 30], box1000: [x * 8, 80, x * 8 + 160, 240] }) as SceneObject;
    const scene = { width: 128, height: 128, background: { name: 'white', rgb: [255, 255, 255] }, noise: { sigma: 0, blur: false, seed: 1 }, hash: 'x',
      objects: [o(0, 'digit', 'black', null, 90, 7), o(1, 'circle', 'red', 'large', 2), o(2, 'square', 'blue', 'small', 40)] } as Scene;
    const items = evalItems(scene, 'e', 'e.png', new Rng(1));
    const cap = items.find((i) => i.task === 'caption')!;
    assert.equal(cap.prompt, 'Describe the image.');
    assert.equal(cap.answer, 'A large red circle, a small blue square and the digit 7.');
    assert.deepEqual(new Set(cap.mentions), new Set(['large red circle', 'small blue square', 'digit 7']));
    assert.equal(items.find((i) => i.task === 'read')!.answer, '7');
  });

  test('eval items: canonical prompts for every task, answers from metadata', () => {
    const rng3 = new Rng(3);
    const seen = new Set<string>();
    for (const s of scenes.slice(0, 200))
      for (const it of evalItems(s, 'e', 'e.png', rng3)) {
        seen.add(it.task);
        if (it.task !== 'caption' && it.task !== 'click') assert.equal(it.answer, expected(s, it.spec));
        if (it.task === 'click') assert.deepEqual(it.tools, [CLICK_TOOL]);
        if (it.task === 'ground' || it.task === 'click') assert.deepEqual(it.box, s.objects[(it.spec as { object: number }).object]!.box1000);
        assert.match(it.prompt, /^(Describe the image\.|How many .*\?|What color is the .*\?|What shape is the .* object\?|Is there an? .*\?|Is the .* (to the left of|above) the .*\?|What number is written in the image\?|Where is the .*\?|Click the .*\.)$/);
      }
    assert.equal(seen.size, 9);
  });
});
