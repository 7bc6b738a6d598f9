/**
 * `vista data shapes --n N --out DIR --seed S [--size 128] [--split train|val|test|all] [--renderer ts|svg|mixed]
 * [--dialogues K] [--turns MIN-MAX] [--objects N|MIN-MAX]`: write a Shapes World dataset (`--objects`: objects
 * per scene, digit included, within 1–5; default 1-5). `--split all` writes DIR/train (N images), DIR/val and
 * DIR/test (N/10 each, at least 1). Prints one summary line per split; returns the exit code.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { InputError } from '../errors.ts';
import { SPLITS, type Split } from './scene.ts';
import { generateDataset } from './generate.ts';

const USAGE = 'Usage: vista data shapes --n N --out DIR --seed S [--size 128] [--split train|val|test|all] [--renderer ts|svg|mixed] [--dialogues 1] [--turns 2-5] [--objects 1-5]';

function int(v: string | undefined, name: string, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new InputError(`missing --${name}\n${USAGE}`);
    return dflt;
  }
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new InputError(`--${name} must be a non-negative integer, got '${v}'\n${USAGE}`);
  return x;
}

/** Entry point for `vista data shapes …` (argv after `shapes`). */
export async function runDataShapes(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        n: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' }, size: { type: 'string' },
        split: { type: 'string' }, renderer: { type: 'string' }, dialogues: { type: 'string' }, turns: { type: 'string' }, objects: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new InputError(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) return void console.log(USAGE), 0;
  const n = int(values.n, 'n'), seed = int(values.seed, 'seed'), size = int(values.size, 'size', 128);
  const dialoguesPerImage = int(values.dialogues, 'dialogues', 1);
  const tm = /^(\d+)-(\d+)$/.exec(values.turns ?? '2-5');
  if (!tm || +tm[1]! < 1 || +tm[2]! < +tm[1]!) throw new InputError(`--turns must be MIN-MAX with 1 ≤ MIN ≤ MAX, got '${values.turns}'\n${USAGE}`);
  const turns: [number, number] = [+tm[1]!, +tm[2]!];
  const om = /^([1-5])(?:-([1-5]))?$/.exec(values.objects ?? '1-5');
  if (!om || +(om[2] ?? om[1])! < +om[1]!) throw new InputError(`--objects must be N or MIN-MAX within 1–5, got '${values.objects}'\n${USAGE}`);
  const objects: [number, number] = [+om[1]!, +(om[2] ?? om[1])!];
  if (n < 1) throw new InputError(`--n must be at least 1\n${USAGE}`);
  if (size < 32 || size > 2048) throw new InputError(`--size must be 32–2048, got ${size}`);
  if (!values.out) throw new InputError(`missing --out\n${USAGE}`);
  const split = values.split ?? 'train';
  if (split !== 'all' && !SPLITS.includes(split as Split)) throw new InputError(`--split must be train, val, test or all, got '${split}'`);
  const renderer = values.renderer ?? 'ts';
  if (renderer !== 'ts' && renderer !== 'svg' && renderer !== 'mixed') throw new InputError(`--renderer must be ts, svg or mixed, got '${renderer}'`);
  const jobs: [Split, number, string][] = split === 'all'
    ? SPLITS.map((s) => [s, s === 'train' ? n : Math.max(1, Math.ceil(n / 10)), path.join(values.out!, s)])
    : [[split as Split, n, values.out]];
  for (const [s, count, outDir] of jobs) {
    const r = await generateDataset({ n: count, outDir, seed, size, split: s, renderer, dialoguesPerImage, turns, objects });
    console.log(`shapes ${s}: ${r.n} images ${size}px (${renderer}) → ${outDir} · ${r.samples.captions} captions, ${r.samples.instruct} dialogues, ` +
      `${r.samples.eval} eval items · ${r.seconds.toFixed(1)} s (${r.imagesPerSecond.toFixed(0)} img/s)`);
  }
  return 0;
}
