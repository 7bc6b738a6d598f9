/** A trivial Shapes-World-like dataset (one coloured square per image, LLaVA JSON) and tiny training configs. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { parseTrainConfig, type TrainConfig } from '../../src/train/config.ts';
import { tempDir } from '../helpers/tmp.ts';

export const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 40, 40], green: [40, 170, 60], blue: [40, 80, 220], yellow: [240, 200, 30],
};

/** n images per split: a square of one colour at a seeded place on white; captions, questions and clicks. */
export async function writeSquares(root: string, split: string, n: number, seed: number): Promise<string> {
  const dir = path.join(root, split);
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const names = Object.keys(COLOURS);
  const captions: unknown[] = [];
  const instruct: unknown[] = [];
  let s = seed * 7919 + 1;
  const rnd = (k: number): number => ((s = (s * 1103515245 + 12345) % 2147483648), s % k);
  for (let i = 0; i < n; i++) {
    const colour = names[(i + seed) % names.length]!;
    const side = 24, x0 = 4 + rnd(32 - side - 4), y0 = 4 + rnd(32 - side - 4);
    const data = Buffer.alloc(32 * 32 * 3, 255);
    for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) data.set(COLOURS[colour]!, 3 * (y * 32 + x));
    const image = `images/${split}-${i}.png`;
    await sharp(data, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, image));
    const id = `${split}-${i}`;
    captions.push({ id: `${id}-cap`, image, conversations: [{ from: 'human', value: '<image>\nDescribe the image.' }, { from: 'gpt', value: `A large ${colour} square.` }] });
    if (i % 4 === 3) {
      const cx = Math.round(((x0 + side / 2) / 32) * 1000), cy = Math.round(((y0 + side / 2) / 32) * 1000);
      instruct.push({
        id: `${id}-click`, image, task: 'click',
        tools: [{ type: 'function', function: { name: 'click', parameters: { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } } } } }],
        conversations: [{ from: 'human', value: '<image>\nClick the square.' }, { from: 'gpt', value: '', tool_call: { name: 'click', arguments: { x: cx, y: cy } } }],
      });
    } else {
      instruct.push({ id: `${id}-colour`, image, task: 'colour', conversations: [{ from: 'human', value: '<image>\nWhat color is it?' }, { from: 'gpt', value: colour }] });
    }
  }
  writeFileSync(path.join(dir, 'captions.json'), JSON.stringify(captions));
  writeFileSync(path.join(dir, 'instruct.json'), JSON.stringify(instruct));
  return dir;
}

let cached: string | null = null;
/** A dataset shared by the tests of one process: train (48) and val (8). */
export async function squaresDataset(): Promise<string> {
  if (cached) return cached;
  const root = tempDir('vista-train-data-');
  await writeSquares(root, 'train', 48, 1);
  await writeSquares(root, 'val', 8, 2);
  cached = root;
  return root;
}

/** A fresh Shapes World dataset (train `n`, val 4) under a new temp dir, for tests that need scene metadata. */
export async function shapesWorld(prefix: string, n: number, seed: number): Promise<string> {
  const { generateDataset } = await import('../../src/data/generate.ts');
  const root = tempDir(prefix);
  await generateDataset({ n, outDir: path.join(root, 'train'), seed, split: 'train' });
  await generateDataset({ n: 4, outDir: path.join(root, 'val'), seed, split: 'val' });
  return root;
}

export const TINY_MODEL = {
  vision: { image_size: 16, patch_size: 4, embedding_length: 32, feed_forward_length: 64, block_count: 1, 'attention.head_count': 2 },
  projector: { projector_type: 'idefics3', scale_factor: 2 },
  lm: { embedding_length: 32, block_count: 2, feed_forward_length: 64, 'attention.head_count': 2, 'attention.head_count_kv': 1, context_length: 256 },
};

/** TINY_MODEL with room for whole Shapes World dialogues (tool declarations included). */
export const TINY_DIALOGUE_MODEL = { ...TINY_MODEL, lm: { ...TINY_MODEL.lm, context_length: 1024 } };

/**
 * The `tinyConfig` patch of a one-stage instruct run on whole Shapes World dialogues (projector + LM at lr 3e-3,
 * instruct data only); `extra` adds stage options such as `maxObjects` or `attend`.
 */
export function dialogueStage(steps: number, batchSize: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: TINY_DIALOGUE_MODEL, stages: [{ name: 'instruct', steps, batchSize, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 1, data: ['instruct'], ...extra }] };
}

/** A tiny config over `data` writing under a fresh directory; `patch` overrides top-level fields. */
export function tinyConfig(data: string, patch: Record<string, unknown> = {}): TrainConfig {
  const out = tempDir('vista-train-run-');
  return parseTrainConfig({
    seed: 3,
    data: { train: path.join(data, 'train'), val: path.join(data, 'val') },
    model: TINY_MODEL,
    tokenizer: { train: { vocabSize: 320 } },
    stages: [{ name: 'instruct', steps: 20, batchSize: 8, lr: { projector: 3e-3, lm: 3e-3 }, warmup: 2 }],
    eval: { every: 0, samples: 0 },
    checkpoint: { dir: path.join(out, 'ckpt'), every: 0 },
    output: { dir: path.join(out, 'out'), name: 'tiny' },
    ...patch,
  });
}
