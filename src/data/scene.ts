/**
 * Scene sampler: draws a Shapes World scene (background, 1–5 non-overlapping objects, optional digit,
 * optional noise/blur) from a seeded `Rng`, and its metadata — including each object's tight box of drawn
 * pixels, taken from the same coverage raster the TS renderer paints.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../tensor/rng.ts';
import { ConfigError } from '../errors.ts';
import type { RGB } from '../image/image.ts';
import {
  BACKGROUNDS, BACKGROUND_JITTER, COLOURS, COLOUR_JITTER, COLOUR_RGB, DIGIT_HEIGHT_RANGE, GAP_AT_128, SHAPES, SIZE_RANGE,
  type BackgroundName, type Colour, type Shape, type SizeClass,
} from './vocab.ts';
import { coverage, drawnBox, extent, outline, type Mask, type Placement } from './geometry.ts';

export type Box = [number, number, number, number];

/** One object of a scene. `box` is in pixels (exclusive ends), `box1000` the same box normalised to 0–1000. */
export interface SceneObject extends Placement {
  readonly id: number;
  readonly shape: Shape;
  readonly colour: Colour;
  /** The actual (jittered) fill colour. */
  readonly rgb: RGB;
  /** `null` for the digit. */
  readonly size: SizeClass | null;
  readonly digit: number | null;
  readonly outer: Box;
  /** Tight box of the drawn pixels (coverage ≥ DRAWN_COVERAGE), [x0, y0, x1, y1], x1/y1 exclusive. */
  readonly box: Box;
  /** `box` normalised: round(1000·x/width), round(1000·y/height). */
  readonly box1000: Box;
}

export interface Scene {
  readonly width: number;
  readonly height: number;
  readonly background: { readonly name: BackgroundName; readonly rgb: RGB };
  readonly objects: readonly SceneObject[];
  /** Gaussian noise σ as a share of 255 (0 = none), 0.5 px blur, and the seed of the noise stream. */
  readonly noise: { readonly sigma: number; readonly blur: boolean; readonly seed: number };
  /** Content hash (hex) over background, objects and noise: equal hashes mean the same image. */
  readonly hash: string;
}

export interface SceneOptions {
  /** Canvas side in px (square). Default 128. */
  size?: number;
  /** Probability that one of the objects is a digit. Default 0.3. */
  digitProb?: number;
  /** Probability of Gaussian noise (σ uniform in (0, maxNoise]). Default 0.25. */
  noiseProb?: number;
  maxNoise?: number;
  /** Probability of a 0.5 px blur. Default 0.2. */
  blurProb?: number;
  /** Fix the number of objects (1–5, digit included) instead of drawing it uniformly. */
  objects?: number;
  /** Fix whether one object is a digit instead of drawing it with `digitProb`. */
  digit?: boolean;
  /** Only return scenes whose hash assigns them to this split (see `splitOfHash`); others are redrawn. */
  split?: Split;
}

const masks = new WeakMap<object, Mask>();
/** Coverage raster of a scene object (cached per object). */
export function objectMask(o: SceneObject): Mask {
  let m = masks.get(o);
  if (!m) masks.set(o, (m = coverage(outline(o), o.outer)));
  return m;
}

const jitter = (rng: Rng, c: RGB, j: number): RGB =>
  c.map((v) => Math.min(255, Math.max(0, v + rng.int(2 * j + 1) - j))) as unknown as RGB;
const intIn = (rng: Rng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);

/** Minimum gap in px between object boxes on a canvas of side `size`. */
export const gapFor = (size: number): number => Math.ceil((GAP_AT_128 * size) / 128);

/** Integer side range [lo, hi] for a size class (or the digit height) on a canvas of side `size`. */
export function sideRange(kind: SizeClass | 'digit', size: number): [number, number] {
  const [a, b] = kind === 'digit' ? DIGIT_HEIGHT_RANGE : SIZE_RANGE[kind];
  // digits: +1 on the low end, as a glyph's drawn height can be one pixel short of its nominal height
  return [Math.ceil(a * size) + (kind === 'digit' ? 1 : 0), Math.floor(b * size)];
}

/** True when two boxes are at least `gap` px apart along x or along y. */
export function separated(a: readonly number[], b: readonly number[], gap: number): boolean {
  return a[2]! + gap <= b[0]! || b[2]! + gap <= a[0]! || a[3]! + gap <= b[1]! || b[3]! + gap <= a[1]!;
}

interface Draft { shape: Shape; colour: Colour; rgb: RGB; size: SizeClass | null; digit: number | null; side: number; wh: [number, number] }

function draftObject(rng: Rng, size: number, isDigit: boolean, forceSmall: boolean): Draft {
  if (isDigit) {
    const side = intIn(rng, ...sideRange('digit', size));
    const v = rng.int(21);
    return { shape: 'digit', colour: 'black', rgb: [v, v, v], size: null, digit: rng.int(10), side, wh: extent('digit', side) };
  }
  const shape = SHAPES[rng.int(SHAPES.length)]!;
  const colour = COLOURS[rng.int(COLOURS.length)]!;
  const cls: SizeClass = rng.uniform() < 0.5 || forceSmall ? 'small' : 'large';
  const side = intIn(rng, ...sideRange(cls, size));
  return { shape, colour, rgb: jitter(rng, COLOUR_RGB[colour], COLOUR_JITTER), size: cls, digit: null, side, wh: extent(shape, side) };
}

/** Random positions for the drafts (largest first); null when they do not fit after `tries` per object. */
function place(rng: Rng, drafts: Draft[], size: number, tries = 60): Box[] | null {
  const gap = gapFor(size);
  const order = drafts.map((_, i) => i).sort((a, b) => drafts[b]!.wh[0] * drafts[b]!.wh[1] - drafts[a]!.wh[0] * drafts[a]!.wh[1]);
  const boxes: Box[] = new Array(drafts.length);
  const placed: Box[] = [];
  for (const i of order) {
    const [w, h] = drafts[i]!.wh;
    let ok = false;
    for (let t = 0; t < tries && !ok; t++) {
      const x = rng.int(size - w + 1), y = rng.int(size - h + 1);
      const b: Box = [x, y, x + w, y + h];
      if (placed.every((p) => separated(p, b, gap))) {
        boxes[i] = b;
        placed.push(b);
        ok = true;
      }
    }
    if (!ok) return null;
  }
  return boxes;
}

/**
 * Sample one scene. Object count is uniform in 1–5; with `digitProb` one of them is a digit; shapes, colours
 * and size classes are uniform; boxes are inside the canvas and ≥ 3 px apart (at 128 px).
 * @example const scene = sampleScene(new Rng(7)); scene.objects[0].box1000 // e.g. [102, 398, 297, 594]
 */
export function sampleScene(rng: Rng, opts: SceneOptions = {}): Scene {
  const size = opts.size ?? 128;
  if (!Number.isInteger(size) || size < 32 || size > 2048) throw new ConfigError(`scene size must be an integer 32–2048, got ${size}`);
  const { maxNoise = 0.05 } = opts;
  if (!(maxNoise >= 0 && maxNoise <= 0.05)) throw new ConfigError(`maxNoise must be within 0–0.05, got ${maxNoise}`);
  if (opts.split !== undefined && !SPLITS.includes(opts.split)) throw new ConfigError(`split must be one of ${SPLITS.join(', ')}, got ${opts.split}`);
  for (;;) {
    const s = sampleLayout(rng, size, opts);
    if (opts.split === undefined || splitOfHash(s.hash) === opts.split) return finish(s);
  }
}

interface Layout { size: number; bgName: BackgroundName; bg: RGB; drafts: Draft[]; boxes: Box[]; noise: Scene['noise']; hash: string }

function sampleLayout(rng: Rng, size: number, opts: SceneOptions): Layout {
  const { digitProb = 0.3, noiseProb = 0.25, maxNoise = 0.05, blurProb = 0.2 } = opts;
  const bgName = (Object.keys(BACKGROUNDS) as BackgroundName[])[rng.int(3)]!;
  const bg = jitter(rng, BACKGROUNDS[bgName], BACKGROUND_JITTER);
  const n = opts.objects ?? 1 + rng.int(5);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new ConfigError(`objects must be an integer 1–5, got ${n}`);
  const digitAt = (opts.digit ?? rng.uniform() < digitProb) ? rng.int(n) : -1;
  let drafts: Draft[] = [];
  let boxes: Box[] | null = null;
  for (let attempt = 0; !boxes; attempt++) {
    if (attempt % 10 === 0) drafts = Array.from({ length: n }, (_, i) => draftObject(rng, size, i === digitAt, attempt >= 40));
    boxes = place(rng, drafts, size);
  }
  const placed = boxes!;
  const sigma = rng.uniform() < noiseProb ? Math.max(0.005, rng.uniform() * maxNoise) : 0;
  const noise = { sigma: Math.round(sigma * 1e4) / 1e4, blur: rng.uniform() < blurProb, seed: rng.nextU32() };
  const key = JSON.stringify([size, bg, drafts.map((d, i) => [d.shape, d.rgb, d.digit, d.side, placed[i]]), noise.sigma, noise.blur]);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 24);
  return { size, bgName, bg, drafts, boxes: placed, noise, hash };
}

function finish({ size, bgName, bg, drafts, boxes, noise, hash }: Layout): Scene {
  const objects = drafts.map((d, id) => {
    const o = { id, shape: d.shape, colour: d.colour, rgb: d.rgb, size: d.size, digit: d.digit, side: d.side, outer: boxes[id]! };
    const mask = coverage(outline(o), o.outer);
    const box = drawnBox(mask);
    const box1000 = box.map((v) => Math.round((1000 * v) / size)) as Box;
    const obj: SceneObject = { ...o, box, box1000 };
    masks.set(obj, mask);
    return obj;
  });
  return { width: size, height: size, background: { name: bgName, rgb: bg }, objects, noise, hash };
}

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

/** The split a scene belongs to, from its hash alone: a scene can never appear in two splits. */
export function splitOfHash(hash: string): Split {
  return SPLITS[parseInt(hash.slice(0, 8), 16) % 3]!;
}
