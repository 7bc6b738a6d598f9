/**
 * `vista eval --model LM.gguf --mmproj P.gguf --data DIR [--split test] [--json] [--limit N]`: answer every
 * dialogue of DIR/<split>/instruct.json turn by turn (greedy, each turn fed the model's own earlier
 * answers) and score the last answers per task with the Shapes World graders. `--history reference` feeds
 * the reference answers instead (teacher forcing): the gap between the two is what the model's own earlier
 * answers cost it. `--items FILE` also writes
 * one JSON line per dialogue (its question, reference, the model's answer and its grade) for error analysis.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../errors.ts';
import { VisionLanguageModel } from '../../runtime/vlm.ts';
import { loadLlava, type Sample } from '../../train/data.ts';
import { answerDialogue, answerLast, summarize, type TaskScores } from '../../train/evaluate.ts';
import { gradeAnswer, loadSceneIndex, referenceAnswer, type Grade } from '../../train/grading.ts';
import { parse, requireFlag } from '../args.ts';

const USAGE = `Usage: vista eval --model LM.gguf --mmproj P.gguf --data DIR [--split test] [--json] [--limit N] [--max-tokens N]
                  [--items FILE] [--history own|reference]

Scores the last answer of every dialogue in DIR/<split>/instruct.json (or DIR/instruct.json):
exact match for count/colour/shape/exists/relation/read, caption F1, ground mean IoU and share ≥ 0.5,
click inside the object's box (from the <tool_call> JSON). Earlier turns are answered by the model
itself (--history own, the benchmark) or given their reference answers (--history reference).
--items FILE writes one JSON line per dialogue: id, image, task, question, reference, answer and metrics.`;

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    model: { type: 'string' }, mmproj: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' },
    json: { type: 'boolean' }, limit: { type: 'string' }, 'max-tokens': { type: 'string' }, items: { type: 'string' },
    history: { type: 'string' },
  }, USAGE);
  if (values.help) return void console.log(USAGE), 0;
  const model = requireFlag(values.model, 'model', USAGE);
  const mmproj = requireFlag(values.mmproj, 'mmproj', USAGE);
  const data = requireFlag(values.data, 'data', USAGE);
  const count = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InputError(`--${name} must be a positive integer, got '${v}'`);
    return n;
  };
  const limit = count(values.limit, 'limit', Number.MAX_SAFE_INTEGER);
  const maxTokens = count(values['max-tokens'], 'max-tokens', 64);
  // checked before the (long) evaluation, so a typo does not lose its results at the end
  const items = values.items;
  if (items !== undefined && !statSync(path.dirname(path.resolve(items)), { throwIfNoEntry: false })?.isDirectory())
    throw new InputError(`--items: directory ${path.dirname(path.resolve(items))} does not exist`);
  const history = values.history ?? 'own';
  if (history !== 'own' && history !== 'reference') throw new InputError(`--history must be 'own' or 'reference', got '${history}'`);
  const split = values.split ?? 'test';
  const dir = existsSync(path.join(data, split, 'instruct.json')) ? path.join(data, split) : data;
  if (!existsSync(path.join(dir, 'instruct.json'))) throw new InputError(`no instruct.json in ${path.join(data, split)} or ${data}`);

  const t0 = performance.now();
  const vlm = await VisionLanguageModel.load({ model, mmproj });
  const samples = (await loadLlava(dir, 'instruct')).slice(0, limit);
  const scenes = await loadSceneIndex(dir);
  const grades: Grade[] = [];
  const lines: string[] = [];
  for (const [i, s] of samples.entries()) {
    const answer = history === 'reference' ? await answerLast(vlm, s, maxTokens) : (await answerDialogue(vlm, s, maxTokens)).at(-1) ?? '';
    const g = gradeAnswer(s, answer, scenes);
    grades.push(g);
    if (items !== undefined) lines.push(JSON.stringify({
      id: s.id, image: s.record.image ?? s.record.images ?? null, task: g.task, question: lastQuestion(s),
      reference: referenceAnswer(s), answer, metrics: g.metrics,
    }));
    if (!values.json && process.stderr.isTTY) process.stderr.write(`\r${i + 1}/${samples.length}`);
  }
  if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
  if (items !== undefined) writeFileSync(items, lines.map((l) => `${l}\n`).join(''));
  const tasks = summarize(grades);
  const seconds = (performance.now() - t0) / 1000;
  if (values.json) console.log(JSON.stringify({ model, mmproj, data: dir, history, dialogues: samples.length, seconds: +seconds.toFixed(2), tasks }, null, 2));
  else console.log(table(tasks, samples.length, seconds));
  return 0;
}

/** The text of a dialogue's last user turn (the graded question). */
function lastQuestion(s: Sample): string {
  for (let i = s.messages.length - 1; i >= 0; i--) {
    const m = s.messages[i]!;
    if (m.role !== 'user' || m.content === null) continue;
    if (typeof m.content === 'string') return m.content;
    return m.content.map((p) => ('text' in p && typeof p.text === 'string' ? p.text : '')).join('');
  }
  return '';
}

/** The per-task scores as an aligned text table. */
export function table(tasks: TaskScores, n: number, seconds: number): string {
  const rows = Object.entries(tasks).sort(([a], [b]) => a.localeCompare(b))
    .map(([task, t]) => [task, String(t.n), Object.entries(t.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')]);
  const head = ['task', 'n', 'score'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 1 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), line(w.map((x) => '-'.repeat(x))), ...rows.map(line), '', `${n} dialogues in ${seconds.toFixed(1)} s`].join('\n');
}
