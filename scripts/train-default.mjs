// `npm run train:default`: the bundled default model, from a seed, in one command — Shapes World data,
// staged training (configs/shapes-default.json), evaluation on a fresh test split, and a report with the
// wall-clock time. Resumes from the last checkpoint when re-run. `--smoke` runs a minutes-long miniature
// into runs/smoke/ to check the pipeline (its model is not the bundled one).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const smoke = process.argv.includes('--smoke');
const vista = (args) => {
  console.error(`$ vista ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(root, 'bin/vista.js'), ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

const t0 = Date.now();
const dataDir = path.join(root, smoke ? 'runs/smoke/data' : 'data/shapes');
const n = smoke ? 64 : 20000;
// train/val alternate vista's rasterizer and the SVG (librsvg) renderer, so the model sees two anti-aliasings and
// two digit designs; the test split is vista's renderer, and robustness sets come from the SVG renderer at other sizes
const gen = (split, count, out, renderer, size = 128, seed = 0) => {
  if (!existsSync(path.join(out, 'instruct.json')))
    vista(['data', 'shapes', '--n', String(count), '--out', out, '--seed', String(seed), '--split', split, '--renderer', renderer, '--size', String(size)]);
};
gen('train', n, path.join(dataDir, 'train'), 'mixed');
// the last instruct stage reads a second, fresh train split (its own seed) instead of more passes over the first
gen('train', smoke ? 64 : 24000, path.join(dataDir, 'train-b'), 'mixed', 128, 1);
gen('val', smoke ? 16 : 500, path.join(dataDir, 'val'), 'mixed');
gen('test', smoke ? 16 : 2000, path.join(dataDir, 'test'), 'ts');
const robust = smoke ? [['svg-256', 256, 8]] : [['svg-256', 256, 500], ['svg-96', 96, 250], ['svg-512', 512, 250]];
for (const [name, size, count] of robust) gen('test', count, path.join(dataDir, `test-${name}`), 'svg', size);
const dataMs = Date.now() - t0;

let config = path.join(root, 'configs/shapes-default.json');
if (smoke) {
  const c = JSON.parse(readFileSync(config, 'utf8'));
  c.data = { train: path.join(dataDir, 'train'), val: path.join(dataDir, 'val') };
  c.stages = c.stages.map((s) => ({ ...s, steps: 2, warmup: 1, batchSize: 4, ...(s.train ? { train: path.join(dataDir, path.basename(s.train)) } : {}) }));
  c.eval = { every: 2, samples: 4, generate: 2 };
  c.checkpoint = { dir: path.join(root, 'runs/smoke/ckpt'), every: 2 };
  c.output = { ...c.output, dir: path.join(root, 'runs/smoke/models') };
  mkdirSync(path.join(root, 'runs/smoke'), { recursive: true });
  config = path.join(root, 'runs/smoke/config.json');
  writeFileSync(config, JSON.stringify(c, null, 2));
}
const resume = existsSync(path.join(root, smoke ? 'runs/smoke/ckpt' : 'runs/shapes-default/ckpt'));
vista(['train', config, ...(resume ? ['--resume'] : [])]);
const trainMs = Date.now() - t0;

const outDir = JSON.parse(readFileSync(config, 'utf8')).output.dir;
const models = path.resolve(path.dirname(config), outDir);
// the evaluations run two at a time, one thread each (a model this small gains nothing from a second thread)
const evalOn = (dir, limit) => new Promise((resolve) => {
  const t = Date.now();
  const args = [path.join(root, 'bin/vista.js'), 'eval', '--model', path.join(models, 'vista-shapes.gguf'),
    '--mmproj', path.join(models, 'mmproj-vista-shapes.gguf'), '--data', dir, '--json', ...(limit ? ['--limit', String(limit)] : [])];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, VISTA_THREADS: '1' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.on('close', (code) => {
    if (code !== 0) process.exit(code ?? 1);
    console.error(`eval ${path.relative(root, dir)}: ${((Date.now() - t) / 1000).toFixed(0)} s`);
    resolve(JSON.parse(out));
  });
});
const report = path.join(models, 'eval-report.json');
const sets = [['test', path.join(dataDir, 'test')], ...robust.map(([name]) => [`test-${name}`, path.join(dataDir, `test-${name}`)])];
const evals = {};
for (let i = 0; i < sets.length; i += 2)
  await Promise.all(sets.slice(i, i + 2).map(async ([name, dir]) => (evals[name] = await evalOn(dir, smoke ? 8 : 0))));
for (const e of Object.values(evals)) for (const k of ['model', 'mmproj', 'data']) e[k] = path.relative(root, e[k]);
writeFileSync(report, `${JSON.stringify(Object.fromEntries(sets.map(([n]) => [n, evals[n]])), null, 2)}\n`);
const min = (ms) => +(ms / 60000).toFixed(1);
const summary = JSON.parse(readFileSync(path.join(models, 'vista-shapes.summary.json'), 'utf8'));
writeFileSync(path.join(models, 'train-report.json'), JSON.stringify({
  command: 'npm run train:default', smoke, seed: 0,
  // training time is the checkpoint's (summed over the invocations of a resumed run), not this invocation's
  minutes: { data: min(dataMs), train: min(summary.trainSeconds * 1000), eval: min(Date.now() - t0 - trainMs),
    total: min(dataMs + summary.trainSeconds * 1000 + Date.now() - t0 - trainMs) },
  samplesPerSecond: summary.samplesPerSecond, tokensPerSecond: summary.tokensPerSecond, steps: summary.steps, params: summary.params,
  machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version },
}, null, 2));
console.error(`done in ${min(Date.now() - t0)} min (data + training ${min(trainMs)}); eval report: ${report}`);
