// The bundled default model (models/, trained by `npm run train:default`): it is shipped, loads without naming a
// file, fits the size budget, and answers the README's `vista chat --image examples/….png "…"` command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { defaultModelPaths } from '../../src/cli/commands/chat.ts';
import { normalise } from '../../src/data/grade.ts';
import { ROOT, vista } from '../helpers/cli.ts';

interface Example { image: string }
const examples = JSON.parse(readFileSync(path.join(ROOT, 'examples/examples.json'), 'utf8')) as Example[];

test('the bundled model is in models/ and is at most 50 MB (LM + mmproj)', () => {
  const p = defaultModelPaths();
  assert.ok(p, 'models/vista-shapes.gguf + models/mmproj-vista-shapes.gguf');
  const mb = (statSync(p.model).size + statSync(p.mmproj).size) / 2 ** 20;
  assert.ok(mb <= 50, `${mb.toFixed(1)} MB`);
});

test('`vista chat --image examples/….png "How many red objects are there?"` with no --model answers with a number', () => {
  // The shipped model's accuracy is in models/eval-report.json; this checks the path the README shows: no --model
  // names the bundled pair, the example image is read, and the reply is a count.
  for (const ex of examples.slice(0, 1)) {
    const r = vista(['chat', '--image', path.join('examples', ex.image), 'How many red objects are there?']);
    assert.equal(r.code, 0, r.err);
    assert.match(normalise(r.out), /^\d$/, `${ex.image}: ${JSON.stringify(r.out)}`);
  }
});
