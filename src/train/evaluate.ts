/**
 * Answering and scoring dialogues, shared by the training loop's periodic eval and `vista eval`.
 * Answers are greedy. Scores come from the Shapes World graders (src/data/grade.ts) per task.
 */
import type { Message, ContentPart, VisionLanguageModel } from '../runtime/vlm.ts';
import type { Sample } from './data.ts';
import { gradeAnswer, type Grade, type SceneIndex } from './grading.ts';

/** The first `upto` messages of a sample as runtime messages (image parts carry their file paths). */
export function runtimeMessages(s: Sample, upto = s.messages.length): Message[] {
  let k = 0;
  return s.messages.slice(0, upto).map((m): Message => {
    const content = Array.isArray(m.content)
      ? m.content.map((p): ContentPart => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image', image: s.images[k++]! }))
      : m.content;
    return { role: m.role as Message['role'], content };
  });
}

const GREEDY = { temperature: 0 } as const;

/** Greedy answer to the last user turn, given the reference conversation before it (teacher forcing). */
export async function answerLast(model: VisionLanguageModel, s: Sample, maxTokens = 64): Promise<string> {
  const last = lastAssistant(s);
  const { text } = await model.complete(runtimeMessages(s, last), { tools: s.tools, maxTokens, sampler: GREEDY });
  return text;
}

/** Greedy answers to every user turn, each fed the model's own earlier answers. Returns them in order. */
export async function answerDialogue(model: VisionLanguageModel, s: Sample, maxTokens = 64): Promise<string[]> {
  const history: Message[] = [];
  const answers: string[] = [];
  const all = runtimeMessages(s);
  for (let i = 0; i < all.length; i++) {
    const m = all[i]!;
    if (m.role === 'assistant') continue;
    history.push(m);
    if (all[i + 1]?.role !== 'assistant') continue;
    const { text } = await model.complete(history, { tools: s.tools, maxTokens, sampler: GREEDY });
    answers.push(text);
    history.push({ role: 'assistant', content: text });
  }
  return answers;
}

function lastAssistant(s: Sample): number {
  for (let i = s.messages.length - 1; i >= 0; i--) if (s.messages[i]!.role === 'assistant') return i;
  throw new Error(`internal: sample ${s.id} has no assistant turn`);
}

/** Per task: count and mean of each metric. */
export type TaskScores = Record<string, { n: number; metrics: Record<string, number> }>;

/** Accumulate grades into per-task means. */
export function summarize(grades: readonly Grade[]): TaskScores {
  const out: TaskScores = {};
  for (const g of grades) {
    const t = (out[g.task] ??= { n: 0, metrics: {} });
    t.n++;
    for (const [k, v] of Object.entries(g.metrics)) t.metrics[k] = (t.metrics[k] ?? 0) + v;
  }
  for (const t of Object.values(out)) for (const k of Object.keys(t.metrics)) t.metrics[k]! /= t.n;
  return out;
}

/** Answer (teacher-forced) and grade the last turn of each sample. */
export async function evaluateSamples(model: VisionLanguageModel, samples: readonly Sample[], scenes: SceneIndex | null = null, maxTokens = 64): Promise<TaskScores> {
  const grades: Grade[] = [];
  for (const s of samples) grades.push(gradeAnswer(s, await answerLast(model, s, maxTokens), scenes));
  return summarize(grades);
}
