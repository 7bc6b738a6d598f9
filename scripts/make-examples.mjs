// The example images in examples/: picked by rule (no cherry-picking) from the SVG-rendered 256 px test split
// that `npm run train:default` writes — the first scene with 0, 1, 2 and 3 red objects, and the first two scenes
// with a digit — plus examples/examples.json with the questions and the answers the scene metadata gives.
// Usage: node scripts/make-examples.mjs [DATA_DIR]   (default data/shapes/test-svg-256)
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.resolve(process.argv[2] ?? path.join(root, 'data/shapes/test-svg-256'));
const scenes = readFileSync(path.join(dir, 'metadata.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const reds = (s) => s.objects.filter((o) => o.colour === 'red').length;
const digitOf = (s) => s.objects.find((o) => o.shape === 'digit')?.digit ?? null;

const picked = [];
for (const k of [0, 1, 2, 3]) picked.push(scenes.find((s) => reds(s) === k && !picked.includes(s)));
for (let i = 0; i < 2; i++) picked.push(scenes.find((s) => digitOf(s) !== null && !picked.includes(s)));

const out = path.join(root, 'examples');
mkdirSync(out, { recursive: true });
const examples = picked.map((s, i) => {
  const file = `shapes-${i + 1}.png`;
  copyFileSync(path.join(dir, s.image), path.join(out, file));
  return {
    image: file, source: `${path.relative(root, dir)}/${s.image}`, size: s.width,
    questions: [
      { prompt: 'How many red objects are there?', answer: String(reds(s)) },
      { prompt: 'How many objects are there?', answer: String(s.objects.length) },
      { prompt: 'What number is written in the image?', answer: digitOf(s) === null ? 'none' : String(digitOf(s)) },
    ],
  };
});
writeFileSync(path.join(out, 'examples.json'), `${JSON.stringify(examples, null, 2)}\n`);
console.log(examples.map((e) => `${e.image} ← ${e.source}: ${e.questions.map((q) => q.answer).join(' / ')}`).join('\n'));
