// `vista chat` with a random tiny VLM and a PNG; one clear error for each kind of bad input.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeTinyVlm, type TinyVlmFiles } from '../helpers/tiny-vlm.ts';
import { vista } from '../helpers/cli.ts';

let f: TinyVlmFiles;
before(async () => {
  f = await writeTinyVlm();
});

test('answers a prompt about an image (random tokens are fine)', () => {
  const r = vista(['chat', '--model', f.model, '--mmproj', f.mmproj, '--image', f.png, '--max-tokens', '8', '--stats', 'What color is it?']);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.length > 1, `no answer: ${JSON.stringify(r.out)}`);
  assert.match(r.err, /prompt tokens \(0 cached\), \d+ generated; image encode \d+ ms \(1 encoded\)/);
});

test('two images and an interactive session on stdin', () => {
  const r = vista(['chat', '--model', f.model, '--mmproj', f.mmproj, '--image', f.png, '--image', f.png, '--max-tokens', '4', '--stats'], 'first question\nsecond question\n');
  assert.equal(r.code, 0, r.err);
  assert.equal((r.out.match(/> /g) ?? []).length, 3);
  // the same picture twice is encoded once; the second turn reuses the first one's KV cache
  const stats = [...r.err.matchAll(/(\d+) prompt tokens \((\d+) cached\).*\((\d+) encoded\)/g)].map((m) => m.slice(1).map(Number));
  assert.equal(stats.length, 2, r.err);
  assert.deepEqual(stats.map(([, cached, encoded]) => [cached === 0, encoded]), [[true, 1], [false, 0]]);
  assert.ok(stats[1]![1]! > stats[0]![0]!, `second turn reuses the whole first prompt: ${JSON.stringify(stats)}`);
});

test('bad inputs give one clear line and a non-zero exit', () => {
  const corrupt = path.join(f.dir, 'corrupt.png');
  writeFileSync(corrupt, Buffer.from('\x89PNG\r\n\x1a\n garbage garbage garbage', 'latin1'));
  const cases: [string[], RegExp][] = [
    [['chat', '--model', f.model, '--mmproj', f.mmproj, '--image', corrupt, 'hi'], /InputError: .*(corrupt|truncated|invalid)/i],
    [['chat', '--model', f.model, '--mmproj', f.mmproj, '--image', path.join(f.dir, 'nope.png'), 'hi'], /image not found: .*nope\.png/],
    [['chat', '--model', f.model, '--mmproj', f.model, '--image', f.png, 'hi'], /ModelFormatError: .*mmproj.*LM file/],
    [['chat', '--model', f.mmproj, '--mmproj', f.mmproj, 'hi'], /ModelFormatError: .*LM file.*mmproj/],
    [['chat', '--model', path.join(f.dir, 'missing.gguf'), 'hi'], /file not found/],
    [['chat', '--model', f.model, '--image', f.png, 'hi'], /--image needs --mmproj/],
  ];
  for (const [args, re] of cases) {
    const r = vista(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});
