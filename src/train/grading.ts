/**
 * A dialogue's last answer → its task and metrics, scored by the Shapes World graders (src/data/grade.ts):
 * exact match (count, colour, shape, exists, relation, read), caption F1, ground IoU (and IoU ≥ 0.5),
 * click inside the object's box. The task comes from the record's per-turn `tasks` metadata; the truth
 * from the scene (`metadata.jsonl` next to the JSON: boxes, mentions) or, without it, the reference answer.
 */
import { captionMentions, gradeItem, parseBox, parseClick } from '../data/grade.ts';
import type { EvalItem, TaskName } from '../data/instruct.ts';
import type { Box } from '../data/scene.ts';
import { readSceneMetadata } from '../data/generate.ts';
import type { Sample } from './data.ts';

export interface Grade {
  task: string;
  metrics: Record<string, number>;
}

/** Scene objects' 0–1000 boxes and mention keys by image path (relative, as in the JSON). */
export type SceneIndex = Map<string, { box1000: Box; mention: string }[]>;

/** Read `dir/metadata.jsonl` if present. */
export async function loadSceneIndex(dir: string): Promise<SceneIndex | null> {
  const scenes = await readSceneMetadata(dir);
  if (!scenes) return null;
  return new Map(scenes.map((s) => [s.image, s.objects.map((o) => ({
    box1000: o.box1000, mention: o.shape === 'digit' ? `digit ${o.digit}` : `${o.size} ${o.colour} ${o.shape}`,
  }))]));
}

/** The reference text of the last assistant turn (tool calls as their template text). */
export function referenceAnswer(s: Sample): string {
  for (let i = s.messages.length - 1; i >= 0; i--) {
    const m = s.messages[i]!;
    if (m.role === 'assistant') return typeof m.content === 'string' ? m.content : '';
  }
  return '';
}

/** The last turn's task spec (`tasks` metadata of generated dialogues, or a `task` field). */
export function lastTask(s: Sample): { task: string; object?: number } {
  const tasks = s.record.tasks;
  if (Array.isArray(tasks) && tasks.length) return tasks[tasks.length - 1] as { task: string; object?: number };
  return { task: typeof s.record.task === 'string' ? s.record.task : 'answer' };
}

/** Grade the answer to a sample's last turn. */
export function gradeAnswer(s: Sample, answer: string, scenes: SceneIndex | null = null): Grade {
  const spec = lastTask(s);
  const ref = referenceAnswer(s);
  const objects = typeof s.record.image === 'string' ? scenes?.get(s.record.image) : undefined;
  const rec = s.record as { box?: Box; mentions?: string[] };
  const box = rec.box ?? (spec.object !== undefined ? objects?.[spec.object]?.box1000 : undefined);
  const item: Pick<EvalItem, 'task' | 'answer' | 'box' | 'mentions'> = {
    task: spec.task as TaskName, answer: ref,
    box: box ?? (spec.task === 'ground' ? parseBox(ref) ?? undefined : spec.task === 'click' ? pointBox(ref) : undefined),
    mentions: rec.mentions ?? (objects ? objects.map((o) => o.mention) : [...captionMentions(ref)]),
  };
  if (spec.task === 'ground') {
    const v = gradeItem(item, answer).iou ?? 0;
    return { task: spec.task, metrics: { iou: v, iou50: v >= 0.5 ? 1 : 0 } };
  }
  const g = gradeItem(item, answer);
  const name = spec.task === 'caption' ? 'f1' : spec.task === 'click' ? 'inside' : 'exact';
  return { task: spec.task, metrics: { [name]: g.score } };
}

/** Without scene metadata, a click is judged against a 100×100 box around the reference point. */
function pointBox(ref: string): Box | undefined {
  const p = parseClick(ref);
  return p ? [p.x - 50, p.y - 50, p.x + 50, p.y + 50] : undefined;
}
