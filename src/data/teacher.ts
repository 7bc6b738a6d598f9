/**
 * LLM teacher (LLaVA's recipe): send each image's metadata and caption to an OpenAI-compatible chat endpoint,
 * ask for a conversation answered as if seeing the image, then validate (zod) and check every checkable answer
 * against the metadata. Dialogues with bad output — not JSON, wrong schema, a contradicted answer, a mention
 * of an object that is not there — are dropped whole and counted by reason; only clean ones are returned.
 */
import { z } from 'zod';
import type { Scene } from './scene.ts';
import { ALL_COLOURS, ALL_SHAPES, type Colour, type Shape } from './vocab.ts';
import { canonicalCaption, count, exists, matching, readAnswer } from './facts.ts';
import { iou, normalise, parseBox } from './grade.ts';
import type { LlavaSample, Turn } from './instruct.ts';

export interface TeacherSample { id: string; image: string; scene: Scene }

export interface TeacherOptions {
  /** Server base URL; requests go to `{url}/v1/chat/completions`. */
  url: string;
  model: string;
  apiKey?: string;
  samples: readonly TeacherSample[];
  /** Requests in flight. Default 4. */
  concurrency?: number;
  /** Per request. Default 60 000. */
  timeoutMs?: number;
  temperature?: number;
}

export type DropReason = 'http' | 'timeout' | 'non_json' | 'schema' | 'contradiction' | 'absent_object';

export interface TeacherResult {
  dialogues: LlavaSample[];
  stats: { requested: number; accepted: number; dropped: Partial<Record<DropReason, number>> };
}

const TURN_TYPES = ['count', 'colour', 'shape', 'exists', 'relation', 'read', 'ground', 'other'] as const;
/** The reply format the teacher must produce. */
export const TeacherReply = z.object({
  turns: z.array(z.object({ type: z.enum(TURN_TYPES), question: z.string().min(1), answer: z.string().min(1) }).strict()).min(1).max(8),
}).strict();
export type TeacherTurn = z.infer<typeof TeacherReply>['turns'][number];

export const TEACHER_SYSTEM = [
  'You write training conversations for a vision assistant. You get the exact contents of a synthetic image:',
  'coloured shapes (circle, square, triangle, star) and at most one black digit, with boxes [x0, y0, x1, y1] in 0-1000',
  '(0,0 is top-left). Write a conversation of 2 to 5 turns between a user asking about the image and an assistant',
  'that answers as if it were looking at the image (never mention metadata or descriptions). Ask only questions with',
  'a definite answer from the contents; never mention objects that are not in the image, except in yes/no existence',
  'questions whose answer is "no". Later questions may refer back ("What color is it?"). Answers are short: a number,',
  'a colour name, a shape name, yes or no, the digit or "none", or a box "[x0, y0, x1, y1]".',
  'Reply with JSON only: {"turns":[{"type":"count|colour|shape|exists|relation|read|ground|other","question":"...","answer":"..."}]}',
].join(' ');

/** The user message for one scene. */
export function teacherPrompt(scene: Scene): string {
  const objects = scene.objects.map((o) => ({
    shape: o.shape, colour: o.colour, ...(o.size ? { size: o.size } : {}), ...(o.digit !== null ? { digit: o.digit } : {}), box: o.box1000,
  }));
  return `Caption: ${canonicalCaption(scene)}\nObjects: ${JSON.stringify(objects)}`;
}

const word = (text: string): string[] => text.toLowerCase().split(/[^a-z]+/).filter(Boolean);
const colourWords = (text: string): Colour[] => word(text).filter((w): w is Colour => (ALL_COLOURS as readonly string[]).includes(w));
const shapeWords = (text: string): Shape[] =>
  word(text).map((w) => w.replace(/s$/, '')).filter((w): w is Shape => (ALL_SHAPES as readonly string[]).includes(w));

/** Why a Q/A contradicts the scene, or null when it is consistent (or not checkable). */
export function checkTurn(scene: Scene, t: TeacherTurn): 'contradiction' | 'absent_object' | null {
  const objs = scene.objects;
  const qc = colourWords(t.question), qs = shapeWords(t.question);
  const a = normalise(t.answer);
  if (t.type !== 'exists' && t.type !== 'count' && t.type !== 'read') {
    const text = `${t.question} ${t.answer}`;
    if (colourWords(text).some((c) => count(objs, { colour: c }) === 0) || shapeWords(text).some((s) => count(objs, { shape: s }) === 0))
      return 'absent_object';
  }
  switch (t.type) {
    case 'count': {
      const want = count(objs, { ...(qc[0] ? { colour: qc[0] } : {}), ...(qs[0] ? { shape: qs[0] } : {}) });
      return a === String(want) ? null : 'contradiction';
    }
    case 'colour': {
      const said = colourWords(t.answer);
      const allowed = new Set(matching(objs, qs.length ? [qs[0]!] : []).map((o) => o.colour));
      return said.length === 1 && allowed.has(said[0]!) ? null : 'contradiction';
    }
    case 'shape': {
      const said = shapeWords(t.answer);
      const allowed = new Set(matching(objs, qc.length ? [qc[0]!] : []).map((o) => o.shape));
      return said.length === 1 && allowed.has(said[0]!) ? null : 'contradiction';
    }
    case 'exists': {
      if (!qc[0] || !qs[0]) return null;
      if (a !== 'yes' && a !== 'no') return 'contradiction';
      return (a === 'yes') === exists(objs, qc[0], qs[0]) ? null : 'contradiction';
    }
    case 'read':
      return a === readAnswer(objs) ? null : 'contradiction';
    case 'ground': {
      const box = parseBox(t.answer);
      const hits = matching(objs, [...qc.slice(0, 1), ...qs.slice(0, 1)]);
      if (!box) return 'contradiction';
      return hits.length === 1 && iou(box, hits[0]!.box1000) < 0.5 ? 'contradiction' : null;
    }
    default:
      return null;
  }
}

class Drop extends Error {
  constructor(readonly reason: DropReason, detail: string) {
    super(detail);
  }
}

async function ask(opts: TeacherOptions, scene: Scene): Promise<TeacherTurn[]> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  let res: Response;
  try {
    res = await fetch(`${opts.url.replace(/\/+$/, '')}/v1/chat/completions`, {
      method: 'POST',
      headers,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      body: JSON.stringify({
        model: opts.model,
        temperature: opts.temperature ?? 0.7,
        messages: [{ role: 'system', content: TEACHER_SYSTEM }, { role: 'user', content: teacherPrompt(scene) }],
      }),
    });
  } catch (e) {
    const name = (e as Error).name;
    throw new Drop(name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'http', (e as Error).message);
  }
  if (!res.ok) throw new Drop('http', `HTTP ${res.status}`);
  let content: unknown;
  try {
    content = ((await res.json()) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
  } catch (e) {
    throw new Drop('http', `response body is not JSON: ${(e as Error).message}`);
  }
  if (typeof content !== 'string') throw new Drop('schema', 'no choices[0].message.content');
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.trim().replace(/^```(?:json)?\s*|\s*```$/g, ''));
  } catch {
    throw new Drop('non_json', content.slice(0, 80));
  }
  const r = TeacherReply.safeParse(parsed);
  if (!r.success) throw new Drop('schema', r.error.message);
  for (const t of r.data.turns) {
    const bad = checkTurn(scene, t);
    if (bad) throw new Drop(bad, `${t.question} → ${t.answer}`);
  }
  return r.data.turns;
}

/**
 * Teacher-written dialogues for `samples`, validated and filtered against the metadata.
 * @example const { dialogues, stats } = await teacherDialogues({ url: 'http://127.0.0.1:8080', model: 'qwen', samples })
 */
export async function teacherDialogues(opts: TeacherOptions): Promise<TeacherResult> {
  const out: (LlavaSample | null)[] = new Array(opts.samples.length).fill(null);
  const dropped: Partial<Record<DropReason, number>> = {};
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.samples.length) {
      const i = next++;
      const s = opts.samples[i]!;
      try {
        const turns = await ask(opts, s.scene);
        const conversations: Turn[] = turns.flatMap((t, k) => [
          { from: 'human' as const, value: (k === 0 ? '<image>\n' : '') + t.question },
          { from: 'gpt' as const, value: t.answer },
        ]);
        out[i] = { id: `${s.id}-teacher`, image: s.image, conversations };
      } catch (e) {
        if (!(e instanceof Drop)) throw e;
        dropped[e.reason] = (dropped[e.reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, opts.samples.length)) }, worker));
  const dialogues = out.filter((d): d is LlavaSample => d !== null);
  return { dialogues, stats: { requested: opts.samples.length, accepted: dialogues.length, dropped } };
}
