/**
 * Graders for Shapes World answers, as the spec scores them: exact match after normalisation (count, colour,
 * shape, exists, relation, read), caption F1 over mentioned objects, ground IoU, click-inside. Pure functions
 * over strings and tool calls; `vista eval` feeds them model replies.
 */
import type { Box } from './scene.ts';
import type { EvalItem, TaskName } from './instruct.ts';
import { COLOURS, NUMBER_WORDS, SHAPES } from './vocab.ts';

const WORD_NUM = new Map<string, string>(NUMBER_WORDS.map((w, i) => [w, String(i)]));

/**
 * Case-fold, trim surrounding whitespace and punctuation, drop a leading article, and map a number word to
 * digits. Inner text is kept (so `not sure` stays wrong).
 * @example normalise(' Two.') === '2'; normalise('The Red!') === 'red'
 */
export function normalise(s: string): string {
  let t = s.toLowerCase().trim().replace(/^[\s"'`.,;:!?()[\]{}*_-]+|[\s"'`.,;:!?()[\]{}*_-]+$/g, '');
  t = t.replace(/^(a|an|the)\s+/, '').replace(/\s+/g, ' ');
  return WORD_NUM.get(t) ?? t;
}

/** 1 when the normalised strings are equal, else 0. */
export const exactMatch = (pred: string, truth: string): number => (normalise(pred) === normalise(truth) ? 1 : 0);

const MENTION = new RegExp(`\\b(small|large)\\s+(${COLOURS.join('|')})\\s+(${SHAPES.join('|')})(?:e?s)?\\b|\\bdigits?\\s+(\\d|${NUMBER_WORDS.slice(0, 10).join('|')})\\b`, 'g');

/** The `{size} {colour} {shape}` / `digit N` mentions in a caption (plurals folded). */
export function captionMentions(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.toLowerCase().matchAll(MENTION))
    out.add(m[1] ? `${m[1]} ${m[2]} ${m[3]}` : `digit ${WORD_NUM.get(m[4]!) ?? m[4]}`);
  return out;
}

/** F1 of the caption's mention set against the true set (1 when both are empty). */
export function captionF1(pred: string, truth: Iterable<string>): number {
  const p = captionMentions(pred), t = new Set(truth);
  if (p.size === 0 && t.size === 0) return 1;
  let tp = 0;
  for (const m of p) if (t.has(m)) tp++;
  return tp === 0 ? 0 : (2 * tp) / (p.size + t.size);
}

const NUM = '\\s*(-?\\d+(?:\\.\\d+)?)\\s*';
const BOX = new RegExp(`[[(]${NUM},${NUM},${NUM},${NUM}[\\])]`);

/** The first `[x0, y0, x1, y1]` (or parenthesised) box in free text; null when there is none. */
export function parseBox(text: string): Box | null {
  const m = BOX.exec(text);
  if (!m) return null;
  const [x0, y0, x1, y1] = m.slice(1, 5).map(Number) as Box;
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
}

/** Intersection over union of two boxes. */
export function iou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** IoU of the box parsed from `pred` with `truth`; 0 when no box can be parsed. */
export const groundIoU = (pred: string, truth: Box): number => {
  const b = parseBox(pred);
  return b ? iou(b, truth) : 0;
};

function callFrom(v: unknown): { x: number; y: number } | null {
  if (typeof v === 'string') {
    try {
      return callFrom(JSON.parse(v));
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.tool_calls)) return o.tool_calls.length ? callFrom(o.tool_calls[0]) : null;
  if (o.tool_call) return callFrom(o.tool_call);
  if (o.function && typeof o.function === 'object') return callFrom(o.function);
  if (o.name !== 'click') return null;
  let args = o.arguments ?? o.parameters;
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return null;
    }
  }
  if (!args || typeof args !== 'object') return null;
  const { x, y } = args as Record<string, unknown>;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 1000;
  return ok(x) && ok(y) ? { x, y } : null;
}

/**
 * The click point of a reply: a tool-call object (`{name, arguments}`, OpenAI `{function: {...}}`, a message
 * with `tool_calls`) or text holding one (`click({"x":1,"y":2})`, `<tool_call>{...}</tool_call>`, bare JSON).
 * Null unless it is a well-formed `click` with integer x, y in 0–1000.
 */
export function parseClick(pred: unknown): { x: number; y: number } | null {
  if (typeof pred !== 'string') return callFrom(pred);
  const text = pred.trim();
  const tagged = /<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/.exec(text);
  if (tagged) return callFrom(tagged[1]!);
  const fn = /\bclick\s*\(\s*(\{[\s\S]*?\})\s*\)/.exec(text);
  if (fn) return callFrom({ name: 'click', arguments: fn[1] });
  return callFrom(text);
}

/** 1 when the reply's click point lies inside `box` (edges included), else 0 (also for malformed replies). */
export function clickInside(pred: unknown, box: Box): number {
  const p = parseClick(pred);
  return p && p.x >= box[0] && p.x <= box[2] && p.y >= box[1] && p.y <= box[3] ? 1 : 0;
}

/** A model reply: its text and, if it made one, its tool call. */
export interface Reply { text: string; toolCall?: unknown }

export interface Grade { task: TaskName; score: number; iou?: number }

/**
 * Score one reply for an eval item: exact match, caption F1, ground IoU (score = IoU) or click-inside.
 * @example gradeItem({ task: 'count', answer: '3', ... }, { text: 'three' }).score === 1
 */
export function gradeItem(item: Pick<EvalItem, 'task' | 'answer' | 'box' | 'mentions'>, reply: Reply | string): Grade {
  const r: Reply = typeof reply === 'string' ? { text: reply } : reply;
  switch (item.task) {
    case 'caption':
      return { task: 'caption', score: captionF1(r.text, item.mentions ?? []) };
    case 'ground': {
      const v = groundIoU(r.text, item.box!);
      return { task: 'ground', score: v, iou: v };
    }
    case 'click':
      return { task: 'click', score: clickInside(r.toolCall ?? r.text, item.box!) };
    default:
      return { task: item.task, score: exactMatch(r.text, item.answer) };
  }
}

export interface TaskSummary { n: number; score: number; iouMean?: number; iouAt50?: number }

/** Mean score per task; for ground also mean IoU and the share of answers with IoU ≥ 0.5. */
export function summarise(grades: readonly Grade[]): Partial<Record<TaskName, TaskSummary>> {
  const out: Partial<Record<TaskName, TaskSummary>> = {};
  for (const g of grades) {
    const s = (out[g.task] ??= { n: 0, score: 0 });
    s.n++;
    s.score += g.score;
    if (g.iou !== undefined) {
      s.iouMean = (s.iouMean ?? 0) + g.iou;
      s.iouAt50 = (s.iouAt50 ?? 0) + (g.iou >= 0.5 ? 1 : 0);
    }
  }
  for (const s of Object.values(out)) {
    s.score /= s.n;
    if (s.iouMean !== undefined) s.iouMean /= s.n;
    if (s.iouAt50 !== undefined) s.iouAt50 /= s.n;
  }
  return out;
}
