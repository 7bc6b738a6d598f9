/**
 * One sample's last answer → its task and metrics, per the Shapes World spec: exact match after
 * normalisation (count, colour, shape, exists, relation, read), caption F1 over mentioned objects, ground
 * IoU (and IoU ≥ 0.5), click inside the object's box. The task comes from the record's per-turn `tasks`
 * metadata (or `task`); the truth from the record (`box`, `mentions`) or else the reference answer.
 * When src/data/grade.ts lands, its graders replace the fallbacks here.
 */
import type { Sample } from './data.ts';

export interface Grade {
  task: string;
  metrics: Record<string, number>;
}

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

export function normalizeAnswer(s: string): string {
  let t = s.trim().toLowerCase().replace(/^[\s"'.,;:!?]+|[\s"'.,;:!?]+$/g, '');
  t = t.replace(/^(a|an|the)\s+/, '');
  const n = WORDS.indexOf(t);
  return n >= 0 ? String(n) : t;
}

/** The reference text of the last assistant turn (tool calls as their template text). */
export function referenceAnswer(s: Sample): string {
  for (let i = s.messages.length - 1; i >= 0; i--) {
    const m = s.messages[i]!;
    if (m.role === 'assistant') return typeof m.content === 'string' ? m.content : '';
  }
  return '';
}

export function taskOf(s: Sample): string {
  const tasks = s.record.tasks;
  if (Array.isArray(tasks) && tasks.length) {
    const t = (tasks[tasks.length - 1] as { task?: unknown }).task;
    if (typeof t === 'string') return t;
  }
  return typeof s.record.task === 'string' ? s.record.task : 'answer';
}

type Box = [number, number, number, number];

export function parseBox(s: string): Box | null {
  const m = /\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]/.exec(s);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] : null;
}

export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const area = (r: Box): number => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const u = area(a) + area(b) - inter;
  return u > 0 ? inter / u : 0;
}

/** The click point of the first well-formed `<tool_call>{"name": "click", "arguments": {x, y}}</tool_call>`. */
export function parseClick(s: string): { x: number; y: number } | null {
  const m = /<tool_call>([\s\S]*?)<\/tool_call>/.exec(s);
  if (!m) return null;
  try {
    const call = JSON.parse(m[1]!) as { name?: unknown; arguments?: { x?: unknown; y?: unknown } };
    const { x, y } = call.arguments ?? {};
    return call.name === 'click' && typeof x === 'number' && typeof y === 'number' ? { x, y } : null;
  } catch {
    return null;
  }
}

/** Object mentions of a caption: `{size} {colour} {shape}` and `digit N`. */
export function mentions(s: string): Set<string> {
  const out = new Set<string>();
  for (const m of s.toLowerCase().matchAll(/\b(small|large) (red|green|blue|yellow|purple|orange) (circle|square|triangle|star)s?\b/g)) out.add(`${m[1]} ${m[2]} ${m[3]}`);
  for (const m of s.toLowerCase().matchAll(/\bdigit (\d)\b/g)) out.add(`digit ${m[1]}`);
  return out;
}

export function gradeAnswer(s: Sample, answer: string): Grade {
  const task = taskOf(s);
  const ref = referenceAnswer(s);
  const rec = s.record as { box?: Box; mentions?: string[] };
  switch (task) {
    case 'caption': {
      const truth = rec.mentions ? new Set(rec.mentions) : mentions(ref);
      const got = mentions(answer);
      const tp = [...got].filter((m) => truth.has(m)).length;
      const p = got.size ? tp / got.size : 0, r = truth.size ? tp / truth.size : 0;
      return { task, metrics: { f1: p + r ? (2 * p * r) / (p + r) : 0 } };
    }
    case 'ground': {
      const truth = rec.box ?? parseBox(ref);
      const got = parseBox(answer);
      const v = truth && got ? iou(got, truth) : 0;
      return { task, metrics: { iou: v, iou50: v >= 0.5 ? 1 : 0 } };
    }
    case 'click': {
      const got = parseClick(answer);
      let inside = 0;
      if (got && rec.box) inside = got.x >= rec.box[0] && got.x <= rec.box[2] && got.y >= rec.box[1] && got.y <= rec.box[3] ? 1 : 0;
      else if (got) {
        // no box in the record: within 50/1000 of the reference point on both axes
        const want = parseClick(ref);
        inside = want && Math.abs(got.x - want.x) <= 50 && Math.abs(got.y - want.y) <= 50 ? 1 : 0;
      }
      return { task, metrics: { inside } };
    }
    default:
      return { task, metrics: { exact: normalizeAnswer(answer) === normalizeAnswer(ref) ? 1 : 0 } };
  }
}
