// CLI: info / quantize / tokenize / logits on the llama-tiny fixture, and one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readGGUF, tensorData } from '../../src/formats/gguf.ts';

import { vista, ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
const FIX = path.resolve(ROOT, '../shared/fixtures/llama-tiny');
const F32 = path.join(FIX, 'tiny-f32.gguf');

test('info lists metadata and tensors', () => {
  const r = vista(['info', F32]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /general\.architecture = "llama"/);
  assert.match(r.out, /blk\.3\.ffn_down\.weight\s+\[256, 688\]\s+F32/);
  const j = JSON.parse(vista(['info', F32, '--json']).out);
  assert.equal(j.tensors.length, 39);
});

test('tokenize matches llama.cpp ids for the fixture strings', () => {
  const ref = JSON.parse(readFileSync(path.join(FIX, 'tiny-f32.llama.json'), 'utf8'));
  const dir = tempDir('vista-cli-');
  const strings = JSON.parse(readFileSync(path.join(FIX, 'strings.json'), 'utf8')).slice(0, 40);
  writeFileSync(path.join(dir, 's.json'), JSON.stringify(strings));
  const r = vista(['tokenize', '--model', F32, '--file', path.join(dir, 's.json')]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), ref.tokenization.slice(0, 40).map((t: { ids: number[] }) => t.ids));
  const s = vista(['tokenize', '--model', F32, '--special', strings[5]]);
  assert.deepEqual(JSON.parse(s.out), ref.tokenization[5].ids_special);
});

test('logits equal llama.cpp for the fixture tokens', () => {
  const ref = JSON.parse(readFileSync(path.join(FIX, 'tiny-f32.llama.json'), 'utf8'));
  const r = vista(['logits', '--model', F32, '--tokens', ref.tokens.join(','), '--top', '16']);
  assert.equal(r.code, 0, r.err);
  const rows = JSON.parse(r.out) as number[][];
  rows.forEach((row, p) => row.forEach((v, i) => assert.ok(Math.abs(v - ref.logits_first16_per_position[p][i]) < 1e-4)));
  const last = JSON.parse(vista(['logits', '--model', F32, '--tokens', ref.tokens.join(','), '--last']).out) as number[];
  assert.equal(last.length, 2048);
});

test('quantize writes a q8_0 file that info and logits read', () => {
  const out = path.join(tempDir('vista-cli-'), 'q8.gguf');
  const r = vista(['quantize', F32, out, '--type', 'q8_0']);
  assert.equal(r.code, 0, r.err);
  assert.match(vista(['info', out]).out, /blk\.0\.attn_q\.weight\s+\[256, 256\]\s+Q8_0/);
  // the independent writer's Q8_0 file holds the same blocks except where a value sits exactly on a
  // rounding tie: it rounds half to even (NumPy), vista half away from zero (ggml's roundf)
  const a = readGGUF(readFileSync(out));
  const b = readGGUF(readFileSync(path.join(FIX, 'tiny-q8_0.gguf')));
  let differing = 0;
  let total = 0;
  for (const t of a.tensors) {
    const u = b.tensors.find((x) => x.name === t.name)!;
    assert.equal(t.typeName, u.typeName, t.name);
    const da = tensorData(a, t);
    const db = tensorData(b, u);
    total += da.length;
    for (let i = 0; i < da.length; i++) if (da[i] !== db[i]) differing++;
  }
  assert.ok(differing <= total * 1e-4, `${differing} of ${total} bytes differ`);
  const ours = JSON.parse(vista(['logits', '--model', out, '--tokens', '1,300,301', '--last']).out) as number[];
  const theirs = JSON.parse(vista(['logits', '--model', path.join(FIX, 'tiny-q8_0.gguf'), '--tokens', '1,300,301', '--last']).out) as number[];
  // q8_0 activation rounding amplifies single-step weight differences (fixtures README: up to 0.036)
  ours.forEach((v, i) => assert.ok(Math.abs(v - theirs[i]!) < 0.05, `logit ${i}: ${v} vs ${theirs[i]}`));
});

test('errors are one line and a non-zero exit', () => {
  for (const args of [['info', '/no/such/file.gguf'], ['info', path.join(ROOT, 'package.json')], ['logits', '--model', F32, '--tokens', 'a,b'],
    ['quantize', F32, '/tmp/x.gguf', '--type', 'q3_k'], ['frobnicate'], ['info', '--bogus']]) {
    const r = vista(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.ok(r.err.trim().length > 0 && !/\n\s+at /.test(r.err), `${args.join(' ')}: ${r.err}`);
  }
});
