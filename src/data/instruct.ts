/**
 * LLaVA-format training samples from scene metadata: captions (alignment stage), multi-turn dialogues
 * (instruction stage) covering every Shapes World task with paraphrases and follow-ups that depend on earlier
 * turns, and single-turn canonical eval items. Every answer comes from `facts.ts`.
 */
import type { Rng } from '../tensor/rng.ts';
import type { Box, Scene, SceneObject } from './scene.ts';
import { ConfigError } from '../errors.ts';
import { ALL_SHAPES, COLOURS, NUMBER_WORDS, SHAPES, plural, type Colour, type Shape } from './vocab.ts';
import {
  boxText, canonicalCaption, capitalise, clickPoint, colourQuestionRef, count, exists, joinList, leftToRight, matching, mention,
  mentionKey, readAnswer, refName, relation, type Relation,
} from './facts.ts';
import { CAPTION_FRAMES, REL_PHRASE, TEMPLATES, fill, pickTemplate, withArticle, type TemplateKey } from './phrasing.ts';

/** OpenAI-style declaration of the `click` tool (coordinates 0–1000). */
export const CLICK_TOOL = {
  type: 'function',
  function: {
    name: 'click',
    description: 'Click a point in the image. Coordinates are integers from 0 to 1000 (0,0 is the top-left corner, 1000,1000 the bottom-right).',
    parameters: {
      type: 'object',
      properties: { x: { type: 'integer', description: 'horizontal position, 0-1000' }, y: { type: 'integer', description: 'vertical position, 0-1000' } },
      required: ['x', 'y'],
    },
  },
} as const;

export interface ToolCall { name: 'click'; arguments: { x: number; y: number } }
export interface Turn { from: 'human' | 'gpt'; value: string; tool_call?: ToolCall }

/** What a human turn asks, in machine form (kept with the sample so trainers and tests can re-derive answers). */
export type TaskSpec =
  | { task: 'caption' }
  | { task: 'count'; colour?: Colour; shape?: Shape }
  | { task: 'colour'; object: number }
  | { task: 'shape'; object: number }
  | { task: 'exists'; colour: Colour; shape: Shape }
  | { task: 'relation'; relation: Relation; a: number; b: number }
  | { task: 'read' }
  | { task: 'ground'; object: number }
  | { task: 'click'; object: number };
export type TaskName = TaskSpec['task'];
export const TASKS: readonly TaskName[] = ['caption', 'count', 'colour', 'shape', 'exists', 'relation', 'read', 'ground', 'click'];

/** Per human turn: the task, the template key and text it was phrased from, and whether it leans on the previous turn. */
export type TurnMeta = TaskSpec & { template: TemplateKey; phrasing: string; followUp: boolean };

/** One LLaVA training record; `tools` is present when the `click` tool is declared. */
export interface LlavaSample {
  id: string;
  image: string;
  conversations: Turn[];
  tools?: (typeof CLICK_TOOL)[];
  tasks?: TurnMeta[];
}

const IMAGE = '<image>\n';

// ---- captions ----------------------------------------------------------------------------------------

/** A caption: the canonical one with probability `canonical`, else another frame and/or top-to-bottom order. */
export function caption(scene: Scene, rng: Rng, canonical = 0.5): string {
  if (rng.uniform() < canonical) return canonicalCaption(scene);
  const frame = CAPTION_FRAMES[1 + rng.int(CAPTION_FRAMES.length - 1)]!;
  const objs = frame.startsWith('From left') || rng.uniform() < 0.5 ? leftToRight(scene.objects)
    : [...scene.objects].sort((a, b) => a.box[1] - b.box[1] || a.box[0] - b.box[0]);
  const n = objs.length;
  let text = fill(frame, { list: joinList(objs.map(mention)), List: capitalise(joinList(objs.map(mention))), N: capitalise(NUMBER_WORDS[n]!) });
  if (n > 1) text = text.replace(/^There is /, 'There are ');
  else text = text.replace(/^One objects:/, 'One object:');
  return text;
}

/** Alignment-stage sample: a caption prompt and a caption. */
export function captionSample(scene: Scene, id: string, image: string, rng: Rng): LlavaSample {
  const q = pickTemplate(rng, 'caption', 0.5);
  return {
    id, image,
    conversations: [{ from: 'human', value: IMAGE + q }, { from: 'gpt', value: caption(scene, rng) }],
    tasks: [{ task: 'caption', template: 'caption', phrasing: q, followUp: false }],
  };
}

// ---- dialogue turns ----------------------------------------------------------------------------------

interface Out { q: string; a: string; call?: ToolCall; meta: TurnMeta; focus: SceneObject | null; countKind?: 'colour' | 'shape' }
interface State { focus: SceneObject | null; countKind: 'colour' | 'shape' | null; asked: Set<string>; prevQ: string; prevTask: TaskName | null }

const pick = <T>(rng: Rng, a: readonly T[]): T | undefined => (a.length ? a[rng.int(a.length)] : undefined);
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

function ask(rng: Rng, key: TemplateKey, vars: Record<string, string>, spec: TaskSpec, followUp = false, canonical = 0.35): { q: string; meta: TurnMeta } {
  const t = pickTemplate(rng, key, canonical);
  return { q: fill(t, vars), meta: { ...spec, template: key, phrasing: t, followUp } };
}

const named = (objs: readonly SceneObject[]): SceneObject[] => objs.filter((o) => refName(objs, o) !== null);

type Gen = (scene: Scene, rng: Rng, st: State) => Out | null;

const GENERATORS: Record<string, Gen> = {
  caption(scene, rng) {
    return { ...ask(rng, 'caption', {}, { task: 'caption' }), a: caption(scene, rng), focus: null };
  },
  count(scene, rng) {
    const objs = scene.objects;
    const kind = rng.int(3);
    if (kind === 0) return { ...ask(rng, 'countTotal', {}, { task: 'count' }), a: String(objs.length), focus: null };
    if (kind === 1) {
      const colour = rng.uniform() < 0.5 ? pick(rng, objs)!.colour : COLOURS[rng.int(COLOURS.length)]!;
      return { ...ask(rng, 'countColour', { colour }, { task: 'count', colour }), a: String(count(objs, { colour })), focus: null, countKind: 'colour' };
    }
    const shape = rng.uniform() < 0.5 ? pick(rng, objs)!.shape : ALL_SHAPES[rng.int(ALL_SHAPES.length)]!;
    return { ...ask(rng, 'countShape', { shapes: plural(shape) }, { task: 'count', shape }), a: String(count(objs, { shape })), focus: null, countKind: 'shape' };
  },
  colour(scene, rng) {
    const o = pick(rng, scene.objects.filter((x) => colourQuestionRef(scene.objects, x)));
    if (!o) return null;
    return { ...ask(rng, 'colour', { obj: colourQuestionRef(scene.objects, o)! }, { task: 'colour', object: o.id }), a: o.colour, focus: o };
  },
  shape(scene, rng) {
    const o = pick(rng, scene.objects.filter((x) => count(scene.objects, { colour: x.colour }) === 1));
    if (!o) return null;
    return { ...ask(rng, 'shape', { colour: o.colour }, { task: 'shape', object: o.id }), a: o.shape, focus: o };
  },
  exists(scene, rng) {
    const objs = scene.objects;
    const shapes = objs.filter((o) => o.shape !== 'digit');
    let colour: Colour, shape: Shape;
    if (shapes.length && rng.uniform() < 0.5) ({ colour, shape } = pick(rng, shapes)!);
    else {
      const absent = COLOURS.flatMap((c) => SHAPES.filter((s) => !exists(objs, c, s)).map((s) => [c, s] as const));
      // prefer hard negatives: the colour or the shape is in the image, just not together
      const hard = absent.filter(([c, s]) => count(objs, { colour: c }) > 0 || count(objs, { shape: s }) > 0);
      [colour, shape] = pick(rng, hard.length && rng.uniform() < 0.7 ? hard : absent)!;
    }
    const hits = matching(objs, [colour, shape]);
    const r = ask(rng, 'exists', { a_colour_shape: withArticle(`${colour} ${shape}`) }, { task: 'exists', colour, shape });
    return { ...r, a: yesNo(hits.length > 0), focus: hits.length === 1 ? hits[0]! : null };
  },
  relation(scene, rng) {
    const objs = named(scene.objects);
    const want = rng.uniform() < 0.5;
    const options: [SceneObject, SceneObject, Relation][] = [];
    for (const a of objs) for (const b of objs) if (a !== b) for (const rel of ['left', 'right', 'above', 'below'] as const)
      if (relation(a, b, rel) === want) options.push([a, b, rel]);
    const c = pick(rng, options);
    if (!c) return null;
    const [a, b, rel] = c;
    const vars = { a: refName(scene.objects, a)!, b: refName(scene.objects, b)! };
    return { ...ask(rng, rel, vars, { task: 'relation', relation: rel, a: a.id, b: b.id }, false, rel === 'left' || rel === 'above' ? 0.35 : 0), a: yesNo(want), focus: a };
  },
  read(scene, rng) {
    return { ...ask(rng, 'read', {}, { task: 'read' }), a: readAnswer(scene.objects), focus: scene.objects.find((o) => o.shape === 'digit') ?? null };
  },
  ground(scene, rng) {
    const o = pick(rng, named(scene.objects));
    if (!o) return null;
    return { ...ask(rng, 'ground', { obj: refName(scene.objects, o)! }, { task: 'ground', object: o.id }), a: boxText(o.box1000), focus: o };
  },
  click(scene, rng) {
    const o = pick(rng, named(scene.objects));
    if (!o) return null;
    return { ...ask(rng, 'click', { obj: refName(scene.objects, o)! }, { task: 'click', object: o.id }), a: '', call: { name: 'click', arguments: clickPoint(o) }, focus: o };
  },
};

const FOLLOW_UPS: Record<string, Gen> = {
  colourIt(_s, rng, st) {
    const o = st.focus!;
    return { ...ask(rng, 'colourIt', {}, { task: 'colour', object: o.id }, true), a: o.colour, focus: o };
  },
  shapeIt(_s, rng, st) {
    const o = st.focus!;
    return { ...ask(rng, 'shapeIt', {}, { task: 'shape', object: o.id }, true), a: o.shape, focus: o };
  },
  groundIt(_s, rng, st) {
    const o = st.focus!;
    return { ...ask(rng, 'groundIt', {}, { task: 'ground', object: o.id }, true), a: boxText(o.box1000), focus: o };
  },
  clickIt(_s, rng, st) {
    const o = st.focus!;
    return { ...ask(rng, 'clickIt', {}, { task: 'click', object: o.id }, true), a: '', call: { name: 'click', arguments: clickPoint(o) }, focus: o };
  },
  relationIt(scene, rng, st) {
    const a = st.focus!;
    const options = named(scene.objects).filter((b) => b !== a)
      .flatMap((b) => (['left', 'right', 'above', 'below'] as const).filter((r) => relation(a, b, r) !== null).map((r) => [b, r] as const));
    const c = pick(rng, options);
    if (!c) return null;
    const [b, rel] = c;
    const r = ask(rng, 'relationIt', { rel: REL_PHRASE[rel], b: refName(scene.objects, b)! }, { task: 'relation', relation: rel, a: a.id, b: b.id }, true, 0.5);
    return { ...r, a: yesNo(relation(a, b, rel)!), focus: a };
  },
  countMore(scene, rng, st) {
    const objs = scene.objects;
    if (st.countKind === 'colour') {
      const colour = rng.uniform() < 0.5 ? pick(rng, objs)!.colour : COLOURS[rng.int(COLOURS.length)]!;
      return { ...ask(rng, 'countColourMore', { colour }, { task: 'count', colour }, true, 0.5), a: String(count(objs, { colour })), focus: null, countKind: 'colour' };
    }
    const shape = rng.uniform() < 0.5 ? pick(rng, objs)!.shape : ALL_SHAPES[rng.int(ALL_SHAPES.length)]!;
    return { ...ask(rng, 'countShapeMore', { shapes: plural(shape) }, { task: 'count', shape }, true, 0.5), a: String(count(objs, { shape })), focus: null, countKind: 'shape' };
  },
};

const WEIGHTS: [string, number][] = [['caption', 0.4], ['count', 1.5], ['colour', 1], ['shape', 1], ['exists', 1.1], ['relation', 1.1], ['read', 0.8], ['ground', 1], ['click', 0.9]];

function weighted(rng: Rng, items: readonly [string, number][]): string {
  let u = rng.uniform() * items.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of items) if ((u -= w) < 0) return k;
  return items.at(-1)![0];
}

/** Clicks only come last (a tool call awaits its result), where they get this probability. */
const LAST_TURN_CLICK = 0.4;

/** A follow-up must ask something the previous turn did not already say (no "Where is it?" after a box). */
function informative(key: string, st: State): boolean {
  const said = new Set(st.prevQ.toLowerCase().split(/[^a-z]+/));
  if (key === 'colourIt') return st.prevTask !== 'colour' && !said.has(st.focus!.colour);
  if (key === 'shapeIt') return st.prevTask !== 'shape' && !said.has(st.focus!.shape);
  if (key === 'groundIt') return st.prevTask !== 'ground';
  return true;
}

/** What a turn asks, whatever its phrasing: its task spec (task, objects, colour, shape, relation). */
function meaning(m: TurnMeta): string {
  const { template: _t, phrasing: _p, followUp: _f, ...spec } = m;
  return JSON.stringify(spec);
}

function nextTurn(scene: Scene, rng: Rng, st: State, last: boolean): Out {
  const wantClick = last && rng.uniform() < LAST_TURN_CLICK;
  for (let tries = 0; ; tries++) {
    const clickNow = wantClick && tries < 10; // nothing clickable (identical twins only): ask something else
    const follow: string[] = [];
    if (st.focus) follow.push(...(clickNow ? ['clickIt'] : ['colourIt', 'shapeIt', 'groundIt', 'relationIt']).filter((k) => informative(k, st)));
    if (st.countKind && !clickNow) follow.push('countMore');
    const weights = WEIGHTS.filter(([k]) => (k === 'click') === clickNow);
    const useFollow = follow.length > 0 && rng.uniform() < 0.5;
    const key = useFollow ? follow[rng.int(follow.length)]! : weighted(rng, weights);
    const out = (useFollow ? FOLLOW_UPS : GENERATORS)[key]!(scene, rng, st);
    // never the same question twice, in words or in meaning ("Count the red objects." then "And how many are red?"):
    // its answer would already be on the page, and a model learns to copy it instead of looking
    if (out && ((!st.asked.has(out.q) && !st.asked.has(meaning(out.meta))) || tries > 20)) return out;
  }
}

/**
 * A 2–5 turn instruction dialogue about `scene` (`turns` = [min, max] to change that). A `click` only ever comes
 * last (a tool call awaits its result); `tools` is declared whenever a click occurs, and on some other dialogues too.
 * @example dialogueSample(scene, 'train-000001', 'images/train-000001.png', rng).conversations[1].value // '3'
 */
export function dialogueSample(scene: Scene, id: string, image: string, rng: Rng, turnRange: readonly [number, number] = [2, 5]): LlavaSample {
  const [lo, hi] = turnRange;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi < lo) throw new ConfigError(`turns must be integers 1 ≤ min ≤ max, got ${lo}–${hi}`);
  const turns = lo + rng.int(hi - lo + 1);
  const st: State = { focus: null, countKind: null, asked: new Set(), prevQ: '', prevTask: null };
  const conversations: Turn[] = [];
  const tasks: TurnMeta[] = [];
  for (let i = 0; i < turns; i++) {
    const out = nextTurn(scene, rng, st, i === turns - 1);
    conversations.push({ from: 'human', value: (i === 0 ? IMAGE : '') + out.q });
    conversations.push(out.call ? { from: 'gpt', value: '', tool_call: out.call } : { from: 'gpt', value: out.a });
    tasks.push(out.meta);
    st.asked.add(out.q);
    st.asked.add(meaning(out.meta));
    st.focus = out.focus;
    st.countKind = out.countKind ?? null;
    st.prevQ = out.q;
    st.prevTask = out.meta.task;
  }
  const clicks = tasks.some((t) => t.task === 'click');
  return { id, image, conversations, ...(clicks || rng.uniform() < 0.15 ? { tools: [CLICK_TOOL] } : {}), tasks };
}

// ---- evaluation items --------------------------------------------------------------------------------

/** A single-turn canonical test question with what the grader needs. */
export interface EvalItem {
  id: string;
  image: string;
  task: TaskName;
  prompt: string;
  /** Expected short answer (`''` for click). */
  answer: string;
  /** ground/click: the object's 0–1000 box. */
  box?: Box;
  /** caption: the true mention set (`{size} {colour} {shape}` / `digit N`). */
  mentions?: string[];
  tools?: (typeof CLICK_TOOL)[];
  spec: TaskSpec;
}

/** One canonical item per task that the scene supports (e.g. no colour item when every shape is ambiguous). */
export function evalItems(scene: Scene, id: string, image: string, rng: Rng): EvalItem[] {
  const items: EvalItem[] = [];
  const st: State = { focus: null, countKind: null, asked: new Set(), prevQ: '', prevTask: null };
  for (const task of TASKS) {
    let out: Out | null = null;
    for (let t = 0; t < 4 && !out; t++) out = GENERATORS[task]!(scene, rng, st);
    if (!out) continue;
    const template: readonly string[] = TEMPLATES[out.meta.template];
    const { template: _k, phrasing: _p, followUp: _f, ...spec } = out.meta;
    const prompt = task === 'caption' ? template[0]! : canonicalPrompt(scene, spec);
    items.push({
      id: `${id}-${task}`, image, task, prompt, spec,
      answer: task === 'caption' ? canonicalCaption(scene) : out.a,
      ...(spec.task === 'ground' || spec.task === 'click' ? { box: scene.objects[spec.object]!.box1000 } : {}),
      ...(task === 'caption' ? { mentions: [...new Set(scene.objects.map(mentionKey))] } : {}),
      ...(task === 'click' ? { tools: [CLICK_TOOL] } : {}),
    });
  }
  return items;
}

/** The spec's canonical prompt for a task (relations right/below are asked as left/above with roles swapped). */
export function canonicalPrompt(scene: Scene, spec: TaskSpec): string {
  const objs = scene.objects;
  const t = (k: TemplateKey): string => TEMPLATES[k][0];
  switch (spec.task) {
    case 'caption': return t('caption');
    case 'count':
      if (spec.colour) return fill(t('countColour'), { colour: spec.colour });
      if (spec.shape) return fill(t('countShape'), { shapes: plural(spec.shape) });
      return t('countTotal');
    case 'colour': return fill(t('colour'), { obj: colourQuestionRef(objs, objs[spec.object]!)! });
    case 'shape': return fill(t('shape'), { colour: objs[spec.object]!.colour });
    case 'exists': return fill(t('exists'), { a_colour_shape: withArticle(`${spec.colour} ${spec.shape}`) });
    case 'relation': {
      const swap = spec.relation === 'right' || spec.relation === 'below';
      const [a, b] = swap ? [spec.b, spec.a] : [spec.a, spec.b];
      return fill(t(spec.relation === 'left' || spec.relation === 'right' ? 'left' : 'above'), { a: refName(objs, objs[a]!)!, b: refName(objs, objs[b]!)! });
    }
    case 'read': return t('read');
    case 'ground': return fill(t('ground'), { obj: refName(objs, objs[spec.object]!)! });
    case 'click': return fill(t('click'), { obj: refName(objs, objs[spec.object]!)! });
  }
}
