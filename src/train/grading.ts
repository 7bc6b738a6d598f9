/**
 * One sample's last answer → a task and its metrics. Until the Shapes World graders (src/data/grade.ts)
 * are wired in, this scores exact match after the spec's normalisation (case, surrounding punctuation, a
 * leading article, number words).
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
  const t = s.record.task;
  return typeof t === 'string' ? t : 'all';
}

export function gradeAnswer(s: Sample, answer: string): Grade {
  return { task: taskOf(s), metrics: { exact: normalizeAnswer(answer) === normalizeAnswer(referenceAnswer(s)) ? 1 : 0 } };
}
