// `vista eval`: the per-task report and its `--items` file (one graded line per dialogue) agree, on a few
// generated test dialogues answered by the bundled model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultModelPaths } from '../../src/cli/commands/chat.ts';
import { vista } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Item { id: string; image: string; task: string; question: string; reference: string; answer: string; metrics: Record<string, number> }

test('vista eval --items writes one graded line per dialogue, and they average to the report', () => {
  const dir = tempDir('vista-eval-');
  const data = path.join(dir, 'data');
  const gen = vista(['data', 'shapes', '--n', '6', '--out', data, '--seed', '3', '--split', 'test']);
  assert.equal(gen.code, 0, gen.err);
  const p = defaultModelPaths();
  assert.ok(p);
  const items = path.join(dir, 'items.jsonl');
  const r = vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', data, '--json', '--items', items]);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out) as { dialogues: number; tasks: Record<string, { n: number; metrics: Record<string, number> }> };
  const lines = readFileSync(items, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Item);
  assert.equal(lines.length, report.dialogues);
  assert.equal(lines.length, 6);

  const records = JSON.parse(readFileSync(path.join(data, 'instruct.json'), 'utf8')) as { id: string; image: string; conversations: { from: string; value?: string }[] }[];
  for (const [i, it] of lines.entries()) {
    const rec = records[i]!;
    assert.equal(it.id, String(rec.id));
    assert.equal(it.image, rec.image);
    const turns = rec.conversations;
    assert.equal(it.question.replace('<image>', '').trim(), turns.filter((t) => t.from === 'human').at(-1)!.value!.replace('<image>', '').trim());
    assert.equal(typeof it.answer, 'string');
    assert.ok(report.tasks[it.task], it.task);
    for (const v of Object.values(it.metrics)) assert.ok(v >= 0 && v <= 1, `${it.task} ${v}`);
  }
  for (const [task, t] of Object.entries(report.tasks)) {
    const mine = lines.filter((l) => l.task === task);
    assert.equal(mine.length, t.n, task);
    for (const [k, v] of Object.entries(t.metrics)) {
      const mean = mine.reduce((a, l) => a + l.metrics[k]!, 0) / mine.length;
      assert.ok(Math.abs(mean - v) < 1e-12, `${task}.${k}: items ${mean}, report ${v}`);
    }
  }
});

test('vista eval --items into a missing directory is refused before evaluating', () => {
  const dir = tempDir('vista-eval-');
  const p = defaultModelPaths();
  assert.ok(p);
  const items = path.join(dir, 'no-such-dir', 'items.jsonl');
  const r = vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', path.join(dir, 'nothing'), '--items', items]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /--items: directory .*no-such-dir does not exist/);
  assert.equal(existsSync(items), false);
});

test('vista eval --history reference feeds the reference answers: a one-question dialogue is answered alike, a later turn sees the reference', () => {
  const dir = tempDir('vista-eval-');
  const data = path.join(dir, 'data');
  assert.equal(vista(['data', 'shapes', '--n', '8', '--out', data, '--seed', '5', '--split', 'test']).code, 0);
  const p = defaultModelPaths();
  assert.ok(p);
  const run = (history: string) => {
    const items = path.join(dir, `${history}.jsonl`);
    const r = vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', data, '--json', '--items', items, '--history', history]);
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { history: string }).history, history);
    return readFileSync(items, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Item);
  };
  const own = run('own'), ref = run('reference');
  const records = JSON.parse(readFileSync(path.join(data, 'instruct.json'), 'utf8')) as { conversations: { from: string }[] }[];
  let single = 0;
  records.forEach((rec, i) => {
    if (rec.conversations.filter((t) => t.from === 'human').length !== 1) return;
    single++;
    assert.equal(ref[i]!.answer, own[i]!.answer, `dialogue ${i}`);
  });
  assert.ok(single < records.length, 'every generated dialogue has one question: nothing tells the two apart');
  // an earlier reference answer too long for the context is fed only under --history reference
  const recs = JSON.parse(readFileSync(path.join(data, 'instruct.json'), 'utf8')) as { conversations: { from: string; value?: string }[] }[];
  const long = recs.filter((r) => r.conversations.filter((t) => t.from === 'human').length > 1).slice(0, 1);
  long[0]!.conversations[1]!.value = 'yes '.repeat(1500);
  const longDir = path.join(dir, 'long');
  mkdirSync(longDir);
  writeFileSync(path.join(longDir, 'instruct.json'), JSON.stringify(long));
  symlinkSync(path.join(data, 'images'), path.join(longDir, 'images'));
  copyFileSync(path.join(data, 'metadata.jsonl'), path.join(longDir, 'metadata.jsonl'));
  assert.equal(vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', longDir, '--json']).code, 0);
  const over = vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', longDir, '--json', '--history', 'reference']);
  assert.notEqual(over.code, 0);
  assert.match(over.err, /InputError: prompt of \d+ tokens exceeds the model's context length/);

  const bad = vista(['eval', '--model', p.model, '--mmproj', p.mmproj, '--data', data, '--history', 'gold']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--history must be 'own' or 'reference', got 'gold'/);
});
