/**
 * Training benchmark: dialogue steps of the bundled model's recipe, as `npm run train:default` runs them —
 * configs/shapes-default.json's model, tokenizer and first instruct stage (batches of 8 dialogues, 2
 * accumulated; tower, projector and LM trained; dense loss) — on a freshly generated Shapes World set
 * (600 train scenes, seed 7), from a fresh init. After 2 warm-up steps, n steps are timed one by one
 * (wall time of each optimizer step, image loading included, through train()'s onStep); a rep's figures are
 * the median step and the real tokens per second over its n steps; `--reps` runs (seeds 0, 1, …) give the
 * medians reported. Options: --quick (n 6, 1 rep), --steps N (default 24), --reps N (default 3).
 *
 * Last stdout line: {"suite":"train","machine":{…},"figures":[{name,threads,value,unit,ref}]}
 * Figures: train_dialogue_step (ms per step of 16 dialogues), train_dialogue_tokens (real tokens per s).
 */
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flag, log, machine, median, root, type Figure } from './common.ts';
import { generateDataset } from '../src/data/generate.ts';
import { parseTrainConfig } from '../src/train/config.ts';
import { train } from '../src/train/loop.ts';

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const n = flag(args, 'steps', quick ? 6 : 24);
  const reps = flag(args, 'reps', quick ? 1 : 3);
  const warm = 2;
  const dir = path.join(os.tmpdir(), `vista-bench-train-${process.pid}`);
  try {
    log(`train: generating 600 + 8 Shapes World scenes in ${dir}`);
    await generateDataset({ n: 600, outDir: path.join(dir, 'train'), seed: 7, split: 'train' });
    await generateDataset({ n: 8, outDir: path.join(dir, 'val'), seed: 7, split: 'val' });
    const def = JSON.parse(readFileSync(path.join(root, 'configs', 'shapes-default.json'), 'utf8')) as {
      model: unknown; tokenizer: unknown; stages: { name: string; data?: string[] }[];
    };
    const stage = def.stages.find((s) => s.name === 'instruct' && s.data?.includes('instruct'));
    if (!stage) throw new Error('configs/shapes-default.json has no instruct stage on dialogues');
    const ms: number[] = [];
    const tps: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const cfg = parseTrainConfig({
        seed: rep,
        data: { train: path.join(dir, 'train'), val: path.join(dir, 'val') },
        model: def.model,
        tokenizer: def.tokenizer,
        stages: [{ ...stage, steps: warm + n, warmup: 1 }],
        checkpoint: { dir: path.join(dir, `ckpt-${rep}`), every: 0 },
        output: { dir: path.join(dir, 'out'), name: 'bench' },
      }, dir);
      const steps: { ms: number; tokens: number }[] = [];
      await train(cfg, { progress: false, maxSteps: warm + n, onStep: (s) => steps.push(s) });
      const timed = steps.slice(warm);
      const sec = timed.reduce((a, s) => a + s.ms, 0) / 1000;
      const tok = timed.reduce((a, s) => a + s.tokens, 0);
      ms.push(median(timed.map((s) => s.ms)));
      tps.push(tok / sec);
      log(`  rep ${rep}: ${n} steps in ${sec.toFixed(1)} s, median ${ms[rep]!.toFixed(0)} ms/step, ${(tok / sec).toFixed(0)} tok/s`);
    }
    const threads = os.availableParallelism();
    const figures: Figure[] = [
      { name: 'train_dialogue_step', threads, value: +median(ms).toFixed(1), unit: 'ms', ref: null },
      { name: 'train_dialogue_tokens', threads, value: +median(tps).toFixed(1), unit: 'tok/s', ref: null },
    ];
    console.log(JSON.stringify({ suite: 'train', machine: machine(), figures }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
