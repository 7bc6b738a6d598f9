/**
 * Dense supervision of the vision tower from scene metadata: an auxiliary loss on every patch, thrown
 * away after training (like the contrastive head). Answer tokens are a thin signal — one dialogue teaches
 * the tower a handful of bits through a long LM backward path — while the scene metadata says, for every
 * patch, which object lies there. A linear head on the patch features predicts, per patch:
 *
 * - what is there, as four factors (each with a background class): colour (6 + black), shape (4 + digit),
 *   size (small/large; none for digits) and digit value — factored heads learn from every object patch
 *   what a 58-way product class would learn only from its own few;
 * - `centre`: whether the object's box centre falls in this patch (one patch per object — what counting
 *   needs);
 * - `box`: the object's box in 0–1 coordinates (L1; object patches only — what grounding and clicking
 *   need);
 * - `position` (only when the stage sets `densePosition`): on object patches, the hundreds and tens digits of the object's
 *   box edges and box centre (x0, y0, x1, y1, cx, cy; 12 ten-way classes) — the tokens a ground answer
 *   (`[x0, y0, x1, y1]`) and a click (`{"x": cx, "y": cy}`) are written in. The `box` term asks for a continuous
 *   coordinate, from which the LM would have to compute decimal digits (a sawtooth in the tens); these heads ask
 *   the tower to lay out each digit as a category of its own, the form in which colour and shape are read
 *   (the LM looks up a category and copies it). Off in the default recipe: in a full run the tower learned the
 *   hundreds (0.9 of object patches) but not the tens, and the LM read position no better (README, session 27);
 * - `scene` (only when the stage sets `denseScene`): on *every* patch, the whole scene's object counts per
 *   (colour, shape) and per digit (squared error). This broadcasts a summary of the image into each image
 *   token. The hypothesis: a language model trained from scratch reads information that every image token
 *   carries before it learns to attend to the 1–4 tokens of one object. In scripts/probe-reading.mjs a fresh
 *   LM read a summary present in every token after ~6k single-question samples on both seeds tried, while
 *   reading per-object tokens started, or did not, by seed. Whether this term helps is not yet shown.
 *
 * A patch belongs to the object whose box contains the patch centre; an object too thin to contain any
 * patch centre (a narrow digit) still owns the patch holding its box centre. Boxes never overlap
 * (shapes-world.md), so the owner is unique.
 *
 * Legend: B images, G patch grid side, P = G² patches, E vision width, C classes.
 */
import path from 'node:path';
import { InputError } from '../errors.ts';
import { Module } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { Rng } from '../tensor/rng.ts';
import { Tensor } from '../tensor/tensor.ts';
import { add, mul, scale, sub, unary } from '../tensor/ops/elementwise.ts';
import { crossEntropy } from '../tensor/ops/nn.ts';
import { mean } from '../tensor/ops/reduce.ts';
import { gather } from '../tensor/ops/shape.ts';
import { reshape } from '../tensor/ops/view.ts';
import { COLOURS, SHAPES } from '../data/vocab.ts';
import { readSceneMetadata } from '../data/generate.ts';

type Box = readonly [number, number, number, number];

/** What the dense targets need of a scene object (a `metadata.jsonl` object). */
export interface DenseObject {
  readonly shape: string;
  readonly colour: string;
  readonly size: string | null;
  readonly digit: number | null;
  readonly box1000: Box;
}

const BOX_WEIGHT = 5;
/** class counts of the four factors, background first */
const FACTORS = { colour: 1 + COLOURS.length + 1, shape: 1 + SHAPES.length + 1, size: 3, digit: 11 } as const;
type Factor = keyof typeof FACTORS;
/** scene summary: one count per (colour, shape) pair, then one per digit value */
const SCENE_CLASSES = COLOURS.length * SHAPES.length + 10;
/** position digits: hundreds and tens of x0, y0, x1, y1, cx, cy (ten classes each) */
const DIGIT_GROUPS = 12;

/** The 12 position-digit classes of a 0–1000 box: hundreds and tens of x0, y0, x1, y1 and the centre (as clicked). */
export function boxDigits(b: Box): number[] {
  const nums = [...b, Math.round((b[0] + b[2]) / 2), Math.round((b[1] + b[3]) / 2)].map((v) => Math.min(999, Math.max(0, Math.round(v))));
  return nums.flatMap((v) => [Math.floor(v / 100), Math.floor(v / 10) % 10]);
}

/** An object's slot in the scene summary. */
function sceneSlot(o: DenseObject): number {
  return o.shape === 'digit' ? COLOURS.length * SHAPES.length + o.digit! : COLOURS.indexOf(o.colour as never) * SHAPES.length + SHAPES.indexOf(o.shape as never);
}

/** An object's factor classes (0 is background in each). */
export function denseClasses(o: DenseObject): Record<Factor, number> {
  if (o.shape === 'digit') {
    if (o.digit === null || !(o.digit >= 0 && o.digit <= 9)) throw new InputError('dense targets: digit object without a digit 0–9');
    return { colour: FACTORS.colour - 1, shape: FACTORS.shape - 1, size: 0, digit: 1 + o.digit };
  }
  const s = SHAPES.indexOf(o.shape as never);
  const c = COLOURS.indexOf(o.colour as never);
  const z = o.size === 'small' ? 1 : o.size === 'large' ? 2 : -1;
  if (s < 0 || c < 0 || z < 0) throw new InputError(`dense targets: unknown object '${o.size} ${o.colour} ${o.shape}'`);
  return { colour: 1 + c, shape: 1 + s, size: z, digit: 0 };
}

/** Per-patch targets of a batch, flattened over (B·P). */
export interface DenseTargets {
  readonly cls: Record<Factor, Int32Array>;
  readonly centre: Int32Array;
  /** patches (b·P + p) that belong to an object, and their boxes (4 per row, 0–1) */
  readonly owned: Int32Array;
  readonly box: Float32Array;
  /** per image, the scene summary (SCENE_CLASSES counts) every one of its patches predicts */
  readonly scene: Float32Array;
  /** per owned patch, its object's 12 position-digit classes (boxDigits) */
  readonly digits: Int32Array;
}

/**
 * Which object owns each cell of a G×G grid over a scene (−1: none): the object whose box holds the cell centre;
 * the cell of a box centre always belongs to its object. `centres` are those box-centre cells, one per object.
 */
export function cellOwners(objs: readonly DenseObject[], G: number): { owner: Int32Array; centres: number[] } {
  const owner = new Int32Array(G * G).fill(-1);
  const centres: number[] = [];
  const cell = 1000 / G;
  objs.forEach((o, k) => {
    const [x0, y0, x1, y1] = o.box1000;
    for (let gy = 0; gy < G; gy++)
      for (let gx = 0; gx < G; gx++) {
        const cx = (gx + 0.5) * cell, cy = (gy + 0.5) * cell;
        if (cx >= x0 && cx < x1 && cy >= y0 && cy < y1) owner[gy * G + gx] = k;
      }
    const gx = Math.min(G - 1, Math.floor((x0 + x1) / 2 / cell)), gy = Math.min(G - 1, Math.floor((y0 + y1) / 2 / cell));
    owner[gy * G + gx] = k;
    centres.push(gy * G + gx);
  });
  return { owner, centres };
}

/** Targets of one batch of scenes on a G×G patch grid. */
export function denseTargets(scenes: readonly (readonly DenseObject[])[], G: number): DenseTargets {
  const P = G * G;
  const cls = Object.fromEntries(Object.keys(FACTORS).map((f) => [f, new Int32Array(scenes.length * P)])) as Record<Factor, Int32Array>;
  const centre = new Int32Array(scenes.length * P);
  const owned: number[] = [];
  const box: number[] = [];
  const digits: number[] = [];
  const scene = new Float32Array(scenes.length * SCENE_CLASSES);
  scenes.forEach((objs, b) => {
    const { owner, centres } = cellOwners(objs, G);
    for (const c of centres) centre[b * P + c] = 1;
    const classes = objs.map((o) => Object.entries(denseClasses(o)) as [Factor, number][]);
    const place = objs.map((o) => boxDigits(o.box1000));
    for (const o of objs) scene[b * SCENE_CLASSES + sceneSlot(o)]! += 1;
    for (let p = 0; p < P; p++) {
      const k = owner[p]!;
      if (k < 0) continue;
      for (const [f, v] of classes[k]!) cls[f][b * P + p] = v;
      owned.push(b * P + p);
      box.push(...objs[k]!.box1000.map((v) => v / 1000));
      digits.push(...place[k]!);
    }
  });
  return { cls, centre, owned: Int32Array.from(owned), box: Float32Array.from(box), scene, digits: Int32Array.from(digits) };
}

/** One linear head on patch features of width `width`: biased, weights N(0, 1/width), drawn from `rng`. */
const headLinear = (width: number, n: number, rng: Rng): Linear => new Linear(width, n, { bias: true, rng, std: 1 / Math.sqrt(width) });

/** The throwaway per-patch heads (linear on the patch features). */
export class DenseHead extends Module {
  colour: Linear;
  shape: Linear;
  size: Linear;
  digit: Linear;
  centre: Linear;
  box: Linear;
  /** only when the stage asks for the scene summary (denseScene > 0) */
  scene: Linear | null = null;
  /** only when the stage asks for the position digits (densePosition > 0) */
  position: Linear | null = null;
  constructor(visionWidth: number, seed: number, opts: { scene?: boolean; position?: boolean } = {}) {
    super();
    const rng = new Rng(seed, 11);
    const lin = (n: number) => headLinear(visionWidth, n, rng);
    this.colour = lin(FACTORS.colour);
    this.shape = lin(FACTORS.shape);
    this.size = lin(FACTORS.size);
    this.digit = lin(FACTORS.digit);
    this.centre = lin(2);
    this.box = lin(4);
    if (opts.scene) this.scene = lin(SCENE_CLASSES);
    if (opts.position) this.position = lin(DIGIT_GROUPS * 10);
  }

  /** Give a head made without one a seeded scene head (a later stage that asks for the summary). */
  addScene(seed: number): void {
    this.scene ??= headLinear(this.colour.weight.shape[1]!, SCENE_CLASSES, new Rng(seed, 12));
  }

  /** Give a head made without one a seeded position head (a later stage that asks for the position digits). */
  addPosition(seed: number): void {
    this.position ??= headLinear(this.colour.weight.shape[1]!, DIGIT_GROUPS * 10, new Rng(seed, 13));
  }
}

/**
 * Dense loss of patch features (B, P, E): Σ CE(factor) + CE(centre) + 5·L1(box on object patches), plus
 * `sceneWeight` · (squared error of the scene summary, summed over classes, mean over patches), plus
 * `positionWeight` · (mean CE of the 12 position digits over object patches).
 *
 * `objectWeight` w weighs each object patch w times a background patch in the class and centre losses (a
 * weighted mean: Σ w_p·CE_p / Σ w_p). Most patches are background, so with w = 1 the easy background class
 * dominates and the tower learns shape slowly: in scripts/reference/lab-tower.py (this tower, this loss) the share
 * of object patches whose shape is right was 0.40 after 400 steps with w = 1 and 0.56 / 0.91 after 400 / 800
 * steps with w = 5.
 */
export function denseLoss(head: DenseHead, feats: Tensor, t: DenseTargets, sceneWeight = 0, objectWeight = 1, positionWeight = 0): Tensor {
  const [B, P, E] = feats.shape as [number, number, number];
  const f = reshape(feats, [B * P, E]);
  const own = t.owned.length && objectWeight !== 1 ? gather(f, 0, t.owned) : null;
  /** Σ w_p·CE_p / Σ w_p from the plain mean over all patches and the mean over object patches */
  const ce = (lin: Linear, cls: Int32Array): Tensor => {
    const all = crossEntropy(lin.forward(f), cls);
    if (!own) return all;
    const n = B * P, m = t.owned.length, extra = (objectWeight - 1) * m;
    const ownCE = crossEntropy(lin.forward(own), Int32Array.from(t.owned, (r) => cls[r]!));
    return add(scale(all, n / (n + extra)), scale(ownCE, extra / (n + extra)));
  };
  let loss = ce(head.centre, t.centre);
  for (const k of Object.keys(FACTORS) as Factor[]) loss = add(loss, ce(head[k], t.cls[k]));
  if (t.owned.length) {
    const objects = gather(f, 0, t.owned); // (owned, E): the box and position heads read the same rows
    const pred = head.box.forward(objects); // (owned, 4)
    loss = add(loss, scale(mean(unary('abs', sub(pred, Tensor.from(t.box, [t.owned.length, 4])))), BOX_WEIGHT));
    if (positionWeight > 0) {
      if (!head.position) throw new Error('internal: a position-digit loss on a dense head made without the position head');
      const logits = reshape(head.position.forward(objects), [t.owned.length * DIGIT_GROUPS, 10]);
      loss = add(loss, scale(crossEntropy(logits, t.digits), positionWeight));
    }
  }
  if (!(sceneWeight > 0)) return loss;
  if (!head.scene) throw new Error('internal: a scene-summary loss on a dense head made without the scene head');
  // every patch of image b predicts row b of the summary
  const rows = Int32Array.from({ length: B * P }, (_, i) => Math.floor(i / P));
  const want = gather(Tensor.from(t.scene, [B, SCENE_CLASSES]), 0, rows);
  const d = sub(head.scene.forward(f), want);
  return add(loss, scale(mean(mul(d, d)), SCENE_CLASSES * sceneWeight));
}

/** Scene objects by absolute image path, from `dir/metadata.jsonl` (written by `vista data shapes`). */
export async function loadDenseIndex(dir: string): Promise<Map<string, DenseObject[]>> {
  const scenes = await readSceneMetadata(dir);
  if (!scenes) throw new InputError(`dense supervision needs scene metadata: cannot read ${path.join(dir, 'metadata.jsonl')} (made by 'vista data shapes')`);
  const out = new Map<string, DenseObject[]>();
  for (const s of scenes) {
    for (const o of s.objects) denseClasses(o);
    out.set(path.resolve(dir, s.image), [...s.objects]);
  }
  return out;
}
