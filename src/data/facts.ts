/**
 * Answers derived from scene metadata alone: object names by the spec's shortest-unique rule, counts,
 * existence, relations by box centre, boxes and click points in 0–1000. Dialogue generation, the teacher
 * filter and the graders all read these, so a question and its answer can never disagree.
 */
import type { Box, Scene, SceneObject } from './scene.ts';
import type { Colour, Shape } from './vocab.ts';

type Objs = readonly SceneObject[];

/** Box centre in 0–1000 (may be a half-integer). */
export const centre = (o: SceneObject): [number, number] => [(o.box1000[0] + o.box1000[2]) / 2, (o.box1000[1] + o.box1000[3]) / 2];

/** The `click` point for an object: its box centre rounded to integers in 0–1000. */
export const clickPoint = (o: SceneObject): { x: number; y: number } => {
  const [x, y] = centre(o);
  return { x: Math.round(x), y: Math.round(y) };
};

/** `[x0, y0, x1, y1]` text of a 0–1000 box. */
export const boxText = (b: Box): string => `[${b.join(', ')}]`;

const nameParts = (o: SceneObject): string[][] => [
  [o.shape],
  [o.colour, o.shape],
  ...(o.size ? [[o.size, o.colour, o.shape]] : []),
];

/** Name objects that a phrase matches: `{shape}`, `{colour} {shape}`, `{size} {colour} {shape}`, or `{size} {shape}`. */
export function matching(objs: Objs, words: readonly string[]): SceneObject[] {
  return objs.filter((o) => words.every((w) => w === o.shape || w === o.colour || w === o.size));
}

/**
 * The spec's `{obj}`: the shortest of `{shape}`, `{colour} {shape}`, `{size} {colour} {shape}` that is unique
 * in the scene; null when none is (identical twins).
 */
export function refName(objs: Objs, o: SceneObject): string | null {
  for (const p of nameParts(o)) if (matching(objs, p).length === 1) return p.join(' ');
  return null;
}

/** Reference for the colour question: `{shape}` or `{size} {shape}`, whichever is unique first; else null. */
export function colourQuestionRef(objs: Objs, o: SceneObject): string | null {
  if (matching(objs, [o.shape]).length === 1) return o.shape;
  if (o.size && matching(objs, [o.size, o.shape]).length === 1) return `${o.size} ${o.shape}`;
  return null;
}

/** Number of objects with the given colour and/or shape (all objects when neither is given). */
export function count(objs: Objs, f: { colour?: Colour; shape?: Shape }): number {
  return objs.filter((o) => (f.colour === undefined || o.colour === f.colour) && (f.shape === undefined || o.shape === f.shape)).length;
}

export const exists = (objs: Objs, colour: Colour, shape: Shape): boolean => count(objs, { colour, shape }) > 0;

export type Relation = 'left' | 'right' | 'above' | 'below';
/** Minimum centre distance (0–1000) for a relation question to have a definite answer. */
export const RELATION_MARGIN = 20;

/** Whether `a` is `rel` of `b` by box centre; null when the centres are closer than RELATION_MARGIN on that axis. */
export function relation(a: SceneObject, b: SceneObject, rel: Relation): boolean | null {
  const [ax, ay] = centre(a), [bx, by] = centre(b);
  const d = rel === 'left' || rel === 'right' ? bx - ax : by - ay;
  if (Math.abs(d) < RELATION_MARGIN) return null;
  return rel === 'left' || rel === 'above' ? d > 0 : d < 0;
}

/** The digit's value as text, or `none`. */
export const readAnswer = (objs: Objs): string => {
  const d = objs.find((o) => o.shape === 'digit');
  return d ? String(d.digit) : 'none';
};

/** `a large red circle` / `the digit 7`. */
export const mention = (o: SceneObject): string => (o.shape === 'digit' ? `the digit ${o.digit}` : `a ${o.size} ${o.colour} ${o.shape}`);

/** Objects left to right by box centre (ties top to bottom). */
export const leftToRight = (objs: Objs): SceneObject[] =>
  [...objs].sort((a, b) => centre(a)[0] - centre(b)[0] || centre(a)[1] - centre(b)[1]);

/** `a, b and c` */
export function joinList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

export const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * The canonical caption: objects left to right, e.g. `A large red circle, a small blue square and the digit 7.`
 * @example canonicalCaption(scene) // 'A small green star and the digit 3.'
 */
export function canonicalCaption(scene: Scene): string {
  return `${capitalise(joinList(leftToRight(scene.objects).map(mention)))}.`;
}

/** Caption mentions as the grader compares them: `{size} {colour} {shape}` or `digit N`. */
export const mentionKey = (o: SceneObject): string => (o.shape === 'digit' ? `digit ${o.digit}` : `${o.size} ${o.colour} ${o.shape}`);
