/**
 * Dataset writer: scenes → PNGs, metadata, LLaVA caption and instruction JSON, and canonical eval items.
 * Deterministic per (seed, split). Splits never share a scene: each split draws from its own PCG stream,
 * and a scene is only kept by the split its content hash assigns it to (`splitOfHash`), so even two
 * independent runs cannot put one scene in two splits.
 *
 * Layout of `outDir`:
 *   images/<id>.png        the rendered scenes
 *   metadata.jsonl         one scene per line: {id, image, split, ...Scene}
 *   captions.json          LLaVA samples for the alignment stage
 *   instruct.json          LLaVA samples (multi-turn dialogues, `tools` where `click` is declared)
 *   eval.jsonl             single-turn canonical items, one per task per image (probes; `vista eval` scores the
 *                          last answer of each dialogue in instruct.json)
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../tensor/rng.ts';
import { ConfigError, InputError } from '../errors.ts';
import { sampleScene, SPLITS, type Scene, type SceneObject, type SceneOptions, type Split } from './scene.ts';
import { encodePng, renderScene } from './render.ts';
import { renderSceneSvg } from './render-svg.ts';
import { captionSample, dialogueSample, evalItems, type EvalItem, type LlavaSample } from './instruct.ts';

export interface GenerateOptions {
  n: number;
  outDir: string;
  seed: number;
  /** Canvas side in px. Default 128. */
  size?: number;
  split?: Split;
  /** 'ts' (the project's rasterizer, default), 'svg' (librsvg, the independent renderer) or 'mixed' (alternating). */
  renderer?: 'ts' | 'svg' | 'mixed';
  /** Dialogues per image in instruct.json. Default 1. */
  dialoguesPerImage?: number;
  /** Question–answer turns per dialogue, [min, max]. Default [2, 5]. */
  turns?: readonly [number, number];
  /** Objects per scene (digit included), [min, max] within 1–5, stratified like the default [1, 5]: e.g. [1, 1]
   *  for a pool of one-object scenes (a curriculum, or many position questions without the selection problem). */
  objects?: readonly [number, number];
  /** Scene sampler overrides (digit/noise/blur probabilities). */
  scene?: Omit<SceneOptions, 'size' | 'split'>;
  /** Images encoded concurrently. Default 8. */
  concurrency?: number;
}

export interface GenerateResult {
  split: Split;
  n: number;
  outDir: string;
  seconds: number;
  imagesPerSecond: number;
  samples: { captions: number; instruct: number; eval: number };
}

const STREAM: Record<Split, number> = { train: 1001, val: 1002, test: 1003 };

/**
 * The scenes of a split, in order (what `generateDataset` renders), without rendering anything. Stratified:
 * every block of scenes has each object count of `objects` (default 1–5) equally often — the range repeated
 * until the block holds at least 10 scenes (1–5: twice) — and round(block·digitProb) digits, in shuffled order.
 */
export function* splitScenes(seed: number, split: Split, opts: SceneOptions = {}, objects: readonly [number, number] = [1, 5]): Generator<Scene> {
  const [lo, hi] = objects;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 5 || lo > hi)
    throw new ConfigError(`objects must be a range within 1–5 (min ≤ max), got [${lo}, ${hi}]`);
  const range = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const block = Array.from({ length: Math.ceil(10 / range.length) }, () => range).flat();
  const rng = new Rng(seed, STREAM[split]);
  const seen = new Set<string>();
  const digits = Math.round(block.length * (opts.digitProb ?? 0.3));
  for (;;) {
    const counts = rng.shuffle([...block]);
    const hasDigit = rng.shuffle(Array.from({ length: block.length }, (_, i) => i < digits));
    for (let i = 0; i < block.length; ) {
      const s = sampleScene(rng, { ...opts, split, objects: counts[i]!, digit: hasDigit[i]! });
      if (seen.has(s.hash)) continue;
      seen.add(s.hash);
      i++;
      yield s;
    }
  }
}

/**
 * Write `n` images of one split with their metadata and samples into `outDir`.
 * @example await generateDataset({ n: 1000, outDir: 'data/shapes/train', seed: 1, split: 'train' })
 */
export async function generateDataset(opts: GenerateOptions): Promise<GenerateResult> {
  const { n, outDir, seed, size = 128, split = 'train', renderer = 'ts', dialoguesPerImage = 1, turns = [2, 5], concurrency = 8 } = opts;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`seed must be a non-negative integer, got ${seed}`);
  if (!SPLITS.includes(split)) throw new ConfigError(`split must be one of ${SPLITS.join(', ')}, got ${split}`);
  if (renderer !== 'ts' && renderer !== 'svg' && renderer !== 'mixed') throw new ConfigError(`renderer must be 'ts', 'svg' or 'mixed', got ${renderer}`);
  const t0 = performance.now();
  await mkdir(path.join(outDir, 'images'), { recursive: true });
  const textRng = new Rng(seed, STREAM[split] + 100); // phrasing has its own stream: images do not move when templates change
  const scenes = splitScenes(seed, split, { ...opts.scene, size }, opts.objects);
  const meta: string[] = [], captions: LlavaSample[] = [], instruct: LlavaSample[] = [], evals: EvalItem[] = [];
  let pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const scene = scenes.next().value as Scene;
    const id = `${split}-${String(i).padStart(6, '0')}`;
    const image = `images/${id}.png`;
    meta.push(JSON.stringify({ id, image, split, ...scene }));
    captions.push(captionSample(scene, id, image, textRng));
    for (let k = 0; k < dialoguesPerImage; k++) instruct.push(dialogueSample(scene, dialoguesPerImage > 1 ? `${id}-${k}` : id, image, textRng, turns));
    evals.push(...evalItems(scene, id, image, textRng));
    pending.push((async () => {
      // 'mixed': every other image from each renderer, so a model trained on it sees two anti-aliasings and digit designs
      const img = renderer === 'ts' || (renderer === 'mixed' && i % 2 === 0) ? renderScene(scene) : await renderSceneSvg(scene);
      await writeFile(path.join(outDir, image), await encodePng(img));
    })());
    if (pending.length >= concurrency) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  await Promise.all([
    writeFile(path.join(outDir, 'metadata.jsonl'), meta.join('\n') + '\n'),
    writeFile(path.join(outDir, 'captions.json'), JSON.stringify(captions)),
    writeFile(path.join(outDir, 'instruct.json'), JSON.stringify(instruct)),
    writeFile(path.join(outDir, 'eval.jsonl'), evals.map((e) => JSON.stringify(e)).join('\n') + '\n'),
  ]);
  const seconds = (performance.now() - t0) / 1000;
  return { split, n, outDir, seconds, imagesPerSecond: n / seconds, samples: { captions: captions.length, instruct: instruct.length, eval: evals.length } };
}

/** One line of `metadata.jsonl`: the scene, with its image path relative to the split directory. */
export interface SceneRecord {
  readonly image: string;
  readonly objects: readonly SceneObject[];
}

/** Read `dir/metadata.jsonl` (null when the file is absent); a malformed line is an InputError naming it. */
export async function readSceneMetadata(dir: string): Promise<SceneRecord[] | null> {
  const file = path.join(dir, 'metadata.jsonl');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  const out: SceneRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let s: { image?: unknown; objects?: unknown };
    try {
      s = JSON.parse(line) as typeof s;
    } catch (e) {
      throw new InputError(`${file}:${i + 1}: ${(e as Error).message}`);
    }
    if (typeof s.image !== 'string' || !Array.isArray(s.objects)) throw new InputError(`${file}:${i + 1}: expected {image, objects}`);
    for (const o of s.objects as SceneObject[])
      if (!Array.isArray(o?.box1000) || o.box1000.length !== 4) throw new InputError(`${file}:${i + 1}: object without box1000`);
    out.push(s as SceneRecord);
  });
  return out;
}
