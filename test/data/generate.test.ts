// The dataset writer: same seed → identical bytes; splits share no scene; LLaVA JSON shape; the CLI entry.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateDataset } from '../../src/data/generate.ts';
import { runDataShapes } from '../../src/data/cli.ts';
import { ConfigError, InputError } from '../../src/errors.ts';

const root = mkdtempSync(path.join(tmpdir(), 'vista-shapes-'));
const d0 = () => path.join(root, 'bad');
after(() => rmSync(root, { recursive: true, force: true }));

const files = (dir: string): Map<string, Buffer> => {
  const out = new Map<string, Buffer>();
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (f.isFile()) { const p = path.join(f.parentPath ?? (f as unknown as { path: string }).path, f.name); out.set(path.relative(dir, p), readFileSync(p)); }
  return out;
};
const hashes = (dir: string): string[] => readFileSync(path.join(dir, 'metadata.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { hash: string }).hash);

describe('generateDataset', () => {
  test('same seed → identical PNG bytes and JSON; another seed differs', async () => {
    const a = path.join(root, 'a'), b = path.join(root, 'b'), c = path.join(root, 'c');
    const r = await generateDataset({ n: 25, outDir: a, seed: 7 });
    await generateDataset({ n: 25, outDir: b, seed: 7, concurrency: 3 });
    await generateDataset({ n: 25, outDir: c, seed: 8 });
    const fa = files(a), fb = files(b), fc = files(c);
    assert.equal(fa.size, 25 + 4);
    assert.deepEqual([...fa.keys()].sort(), [...fb.keys()].sort());
    for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs between runs`);
    assert.ok(!fa.get('images/train-000000.png')!.equals(fc.get('images/train-000000.png')!));
    assert.equal(r.n, 25);
    assert.ok(r.imagesPerSecond > 0);
    assert.deepEqual(r.samples.captions, 25);
  });

  test('LLaVA files: captions, instructions with tools, eval items, metadata', async () => {
    const dir = path.join(root, 'a');
    const caps = JSON.parse(readFileSync(path.join(dir, 'captions.json'), 'utf8')) as { id: string; image: string; conversations: { from: string; value: string }[] }[];
    const inst = JSON.parse(readFileSync(path.join(dir, 'instruct.json'), 'utf8')) as { image: string; conversations: { from: string; value: string; tool_call?: unknown }[]; tools?: unknown[] }[];
    assert.equal(caps.length, 25);
    assert.equal(caps[0]!.image, 'images/train-000000.png');
    assert.ok(caps.every((c) => c.conversations[0]!.from === 'human' && c.conversations[0]!.value.startsWith('<image>\n') && c.conversations[1]!.from === 'gpt'));
    assert.ok(inst.every((d) => d.conversations.length >= 4));
    for (const d of inst) if (d.conversations.some((t) => t.tool_call)) assert.ok(d.tools?.length === 1);
    const meta = readFileSync(path.join(dir, 'metadata.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; objects: unknown[] });
    assert.equal(meta.length, 25);
    assert.ok(meta.every((m) => m.objects.length >= 1));
    const evals = readFileSync(path.join(dir, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { task: string });
    assert.ok(new Set(evals.map((e) => e.task)).size >= 8);
  });

  test('train/val/test from one seed share no scene', async () => {
    const dirs = await Promise.all((['train', 'val', 'test'] as const).map(async (split) => {
      const d = path.join(root, `s-${split}`);
      await generateDataset({ n: 40, outDir: d, seed: 7, split, scene: { noiseProb: 0 } });
      return new Set(hashes(d));
    }));
    for (let i = 0; i < 3; i++) {
      assert.equal(dirs[i]!.size, 40);
      for (let j = i + 1; j < 3; j++) for (const h of dirs[i]!) assert.ok(!dirs[j]!.has(h));
    }
  });

  test('SVG renderer and other sizes', async () => {
    const d = path.join(root, 'svg');
    await generateDataset({ n: 6, outDir: d, seed: 1, size: 256, renderer: 'svg', split: 'test' });
    const png = readFileSync(path.join(d, 'images/test-000000.png'));
    assert.equal(png.readUInt32BE(16), 256);
    await assert.rejects(generateDataset({ n: 0, outDir: d, seed: 1 }), ConfigError);
  });

  test("'mixed' alternates the two renderers image by image over the same scenes", async () => {
    const [t, s, m] = ['ts', 'svg', 'mixed'] as const;
    for (const r of [t, s, m]) await generateDataset({ n: 4, outDir: path.join(root, `mix-${r}`), seed: 3, renderer: r, split: 'val' });
    const img = (r: string, i: number) => readFileSync(path.join(root, `mix-${r}`, `images/val-00000${i}.png`));
    for (let i = 0; i < 4; i++) {
      assert.ok(img(m, i).equals(img(i % 2 === 0 ? t : s, i)), `image ${i}`);
      assert.ok(!img(t, i).equals(img(s, i)), `renderers differ on image ${i}`);
    }
    assert.equal(readFileSync(path.join(root, 'mix-mixed/metadata.jsonl'), 'utf8'), readFileSync(path.join(root, 'mix-ts/metadata.jsonl'), 'utf8'));
    await assert.rejects(generateDataset({ n: 1, outDir: d0(), seed: 1, renderer: 'png' as never }), ConfigError);
  });
});

describe('vista data shapes', () => {
  test('writes the splits and prints one summary line each', async () => {
    const logs: string[] = [];
    const orig = console.log;
    console.log = (...a: unknown[]) => void logs.push(a.join(' '));
    try {
      assert.equal(await runDataShapes(['--n', '10', '--out', path.join(root, 'cli'), '--seed', '3', '--split', 'all']), 0);
    } finally {
      console.log = orig;
    }
    assert.equal(logs.length, 3);
    assert.match(logs[0]!, /^shapes train: 10 images 128px \(ts\) → .* img\/s\)$/);
    assert.equal(readdirSync(path.join(root, 'cli', 'val', 'images')).length, 1);
    await assert.rejects(runDataShapes(['--n', '10', '--seed', '3']), InputError);
    await assert.rejects(runDataShapes(['--n', 'x', '--out', 'o', '--seed', '3']), InputError);
    await assert.rejects(runDataShapes(['--bogus']), InputError);
  });

  test('--objects N or MIN-MAX sets the objects per scene, each count equally often; a bad range is an InputError', async () => {
    const orig = console.log;
    console.log = () => {};
    const counts = (dir: string): number[] => readFileSync(path.join(dir, 'metadata.jsonl'), 'utf8').trim().split('\n')
      .map((l) => (JSON.parse(l) as { objects: unknown[] }).objects.length);
    try {
      assert.equal(await runDataShapes(['--n', '12', '--out', path.join(root, 'one'), '--seed', '4', '--objects', '1']), 0);
      assert.equal(await runDataShapes(['--n', '20', '--out', path.join(root, 'two3'), '--seed', '4', '--objects', '2-3']), 0);
    } finally {
      console.log = orig;
    }
    assert.deepEqual(counts(path.join(root, 'one')), Array(12).fill(1));
    const c = counts(path.join(root, 'two3'));
    assert.deepEqual([c.filter((k) => k === 2).length, c.filter((k) => k === 3).length], [10, 10]);
    // one-object scenes still carry digits at about the default rate (3 in each block of 10)
    const digits = readFileSync(path.join(root, 'one', 'metadata.jsonl'), 'utf8').trim().split('\n')
      .filter((l) => (JSON.parse(l) as { objects: { digit: number | null }[] }).objects[0]!.digit !== null).length;
    assert.ok(digits >= 3 && digits <= 6, `${digits} digits in 12 one-object scenes`);
    // the default range is the stream every existing split was drawn from
    const { splitScenes } = await import('../../src/data/generate.ts');
    const a = splitScenes(9, 'train'), b = splitScenes(9, 'train', {}, [1, 5]);
    for (let i = 0; i < 30; i++) assert.equal(a.next().value!.hash, b.next().value!.hash);
    for (const bad of ['0', '6', '3-2', '1-6', 'x'])
      await assert.rejects(runDataShapes(['--n', '2', '--out', path.join(root, 'one'), '--seed', '4', '--objects', bad]), InputError);
    assert.throws(() => splitScenes(1, 'train', {}, [0, 2]).next(), ConfigError);
  });

  test('--turns MIN-MAX sets the dialogue length; a bad range is an InputError', async () => {
    const out = path.join(root, 'turns');
    const orig = console.log;
    console.log = () => {};
    try {
      assert.equal(await runDataShapes(['--n', '12', '--out', out, '--seed', '4', '--turns', '7-9']), 0);
    } finally {
      console.log = orig;
    }
    const turns = (JSON.parse(readFileSync(path.join(out, 'instruct.json'), 'utf8')) as { conversations: unknown[] }[]).map((d) => d.conversations.length / 2);
    assert.equal(turns.length, 12);
    assert.ok(turns.every((n) => n >= 7 && n <= 9), `${turns}`);
    for (const bad of ['0-3', '5-2', '4', 'a-b'])
      await assert.rejects(runDataShapes(['--n', '2', '--out', out, '--seed', '4', '--turns', bad]), InputError);
  });
});
