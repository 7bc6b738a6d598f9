// `npm run train:default`: the bundled default model, from a seed, in one command — Shapes World data,
// staged training (configs/shapes-default.json), evaluation on a fresh test split, and a report with the
// wall-clock time. Resumes from the last checkpoint when re-run. `--smoke` runs a minutes-long miniature
// into runs/smoke/ to check the pipeline (its model is not the bundled one).
import { spawnSync } from 'node:child_process';
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
if (!existsSync(path.join(dataDir, 'test', 'eval.jsonl')))
  vista(['data', 'shapes', '--n', smoke ? '64' : '20000', '--out', dataDir, '--seed', '0', '--split', 'all']);

let config = path.join(root, 'configs/shapes-default.json');
if (smoke) {
  const c = JSON.parse(readFileSync(config, 'utf8'));
  c.data = { train: path.join(dataDir, 'train'), val: path.join(dataDir, 'val') };
  c.stages = c.stages.map((s) => ({ ...s, steps: 2, warmup: 1, batchSize: 4 }));
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
const report = path.join(models, 'eval-report.json');
const r = spawnSync(process.execPath, [path.join(root, 'bin/vista.js'), 'eval', '--model', path.join(models, 'vista-shapes.gguf'),
  '--mmproj', path.join(models, 'mmproj-vista-shapes.gguf'), '--data', dataDir, '--split', 'test', '--json', ...(smoke ? ['--limit', '8'] : [])],
{ cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(report, r.stdout);
writeFileSync(path.join(models, 'train-report.json'), JSON.stringify({
  command: 'npm run train:default', smoke, seed: 0, wallClockMinutes: +(trainMs / 60000).toFixed(1),
  machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version },
}, null, 2));
console.error(`done in ${(trainMs / 60000).toFixed(1)} min; eval report: ${report}`);
