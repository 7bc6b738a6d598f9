/**
 * Training data: LLaVA-format JSON → conversations → token ids with labels (once, up front) → seeded
 * epoch order with an exact resumable position → right-padded batches with shifted targets. Images are
 * decoded and preprocessed on demand into Float32Arrays kept in a small LRU cache.
 *
 * Legend: B samples per batch, T padded sequence length, S image side, N image tokens per image.
 *
 * A LLaVA record: `{ id, image, conversations: [{ from: 'human' | 'gpt' | 'system', value, tool_call? }], tools? }`;
 * `<image>` in a human turn marks where the image goes (a following newline is dropped: at inference the
 * image part and the text are separate parts). A gpt turn with `tool_call: { name, arguments }` becomes the
 * assistant text `<tool_call>{"name": …, "arguments": {…}}</tool_call>` — exactly what the default chat
 * template renders for a tool call, so trained and served histories agree — and its `tools` go to the
 * template.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.ts';
import { IMAGE_SLOT, tokenizeConversation, type ConvMessage, type ConvPart, type PromptFormat } from '../runtime/conversation.ts';
import { decodeImage, prepareImage, toTensor, type PreprocessOptions } from '../image/index.ts';
import { Rng } from '../tensor/rng.ts';
import { ImageEmbeddingCache } from '../runtime/prompt-cache.ts';
import type { PackedRows } from '../models/llama.ts';

export interface LlavaTurn {
  from: string;
  value?: string | null;
  tool_call?: { name: string; arguments: unknown };
}

export interface LlavaRecord {
  id: string | number;
  image?: string;
  images?: string[];
  conversations: LlavaTurn[];
  tools?: unknown[];
  task?: string;
  [k: string]: unknown;
}

/** One conversation, ready for the template. */
export interface Sample {
  readonly id: string;
  readonly messages: ConvMessage[];
  /** absolute image paths, in the order the images appear */
  readonly images: string[];
  readonly tools?: unknown[];
  /** the raw record (graders read its metadata) */
  readonly record: LlavaRecord;
}

/** A tokenized sample: ids with IMAGE_SLOT runs, and per position whether the token is learned. */
export interface Encoded {
  readonly id: string;
  readonly ids: Int32Array;
  readonly imageStarts: readonly number[];
  /** 1 where the token at this position is a target (its prediction from the position before is scored) */
  readonly learn: Uint8Array;
  readonly images: readonly string[];
}

/** JSON as Python's json.dumps (and jinja's tojson) writes it: `", "` and `": "` separators. */
export function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** The text of a tool call as the default chat template writes it. */
export function toolCallText(name: string, args: unknown): string {
  return `<tool_call>{"name": ${JSON.stringify(name)}, "arguments": ${pyJson(args)}}</tool_call>`;
}

const ROLES: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' };

/** A LLaVA record → template messages. `dir` resolves relative image paths. */
export function llavaToSample(r: LlavaRecord, dir: string): Sample {
  const id = String(r.id);
  if (!Array.isArray(r.conversations) || !r.conversations.length) throw new InputError(`sample ${id}: no conversations`);
  const imgs = r.images ?? (r.image ? [r.image] : []);
  let used = 0;
  const messages: ConvMessage[] = r.conversations.map((t, i) => {
    const role = ROLES[t.from];
    if (!role) throw new InputError(`sample ${id}: turn ${i} has unknown speaker '${t.from}' (expected human, gpt or system)`);
    let text = t.value ?? '';
    if (t.tool_call) {
      if (role !== 'assistant') throw new InputError(`sample ${id}: turn ${i} has a tool_call but is not a gpt turn`);
      text += toolCallText(t.tool_call.name, t.tool_call.arguments);
    }
    if (role !== 'user' || !text.includes('<image>')) return { role, content: text };
    const parts: ConvPart[] = [];
    text.split('<image>').forEach((s, k) => {
      if (k > 0) {
        parts.push({ type: 'image' });
        used++;
        if (s.startsWith('\n')) s = s.slice(1);
      }
      if (s) parts.push({ type: 'text', text: s });
    });
    return { role, content: parts };
  });
  if (used === 0 && imgs.length) {
    // LLaVA convention: an image without a marker goes before the first human text
    const first = messages.find((m) => m.role === 'user');
    if (!first) throw new InputError(`sample ${id}: has an image but no human turn`);
    first.content = [...imgs.map((): ConvPart => ({ type: 'image' })), { type: 'text', text: first.content as string }];
    used = imgs.length;
  }
  if (used !== imgs.length) throw new InputError(`sample ${id}: ${used} <image> markers for ${imgs.length} images`);
  return { id, messages, images: imgs.map((p) => path.resolve(dir, p)), tools: r.tools, record: r };
}

/** Read `dir/<file>.json` (a LLaVA list). */
export async function loadLlava(dir: string, file: string): Promise<Sample[]> {
  const p = path.join(dir, `${file}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(p, 'utf8'));
  } catch (e) {
    throw new InputError(`cannot read ${p}: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new InputError(`${p}: expected a JSON array of LLaVA records`);
  return (raw as LlavaRecord[]).map((r) => llavaToSample(r, dir));
}

/** The text of a message's content, its image parts left out. */
function textOf(content: ConvMessage['content']): string {
  return Array.isArray(content) ? content.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text).join('') : content ?? '';
}

/** An assistant message that calls a tool (the `<tool_call>` text llavaToSample writes). */
const isToolCall = (m: ConvMessage): boolean => m.role === 'assistant' && typeof m.content === 'string' && m.content.includes('<tool_call>');

/** Drop the images of a conversation (text-only LM pretraining). */
export function textOnly(s: Sample): Sample {
  const messages = s.messages.map((m) => (Array.isArray(m.content) ? { ...m, content: textOf(m.content) } : m));
  return { ...s, messages, images: [] };
}

/**
 * The sample cut to its first `k` question–answer turns: messages up to the (k+1)-th user message. A tool
 * declaration goes only when the dialogue's tool calls were all in the cut turns (then it is ~160 tokens with
 * nothing to learn); one declared on purpose and never called stays. The record, and so its per-turn task
 * metadata, is unchanged: turn-indexed readers (./attend.ts, ./wordalign.ts) see the same first turns.
 * @example firstTurns(s, 1).messages.length // 2 for `<image> What colour…? / red / Where is it? / [..]`
 */
export function firstTurns(s: Sample, k: number): Sample {
  const messages: ConvMessage[] = [];
  let users = 0;
  for (const m of s.messages) {
    if (m.role === 'user' && ++users > k) break;
    messages.push(m);
  }
  const calls = (ms: readonly ConvMessage[]) => ms.some(isToolCall);
  const { tools, ...rest } = s;
  return tools && (calls(messages) || !calls(s.messages)) ? { ...rest, messages, tools } : { ...rest, messages };
}

/**
 * Every question of one of `tasks` that stands on its own (task metadata `followUp: false`), asked where its
 * dialogue asks it: the dialogue cut right after that question's answer (`firstTurns`), so the turns before it
 * stay, and are learned too. A readout learned from single questions (`singleTurns`: the image right before
 * the question) did not carry over to the same questions asked later in a dialogue (README, "A position
 * readout learned from single questions"); this is the same lesson in the form the model is used in.
 * Without task metadata there is nothing to pick: none. Ids are `<id>@<turn>`.
 * @example questionsInPlace(s, ['ground']).map((x) => x.messages.length) // [4] for `<image> Q1 / A1 / Where is the star? / [..] / Q3 / A3`
 */
export function questionsInPlace(s: Sample, tasks: readonly string[]): Sample[] {
  const meta = s.record.tasks as { task?: string; followUp?: boolean }[] | undefined;
  if (!meta) return [];
  const out: Sample[] = [];
  let k = 0;
  for (const m of s.messages) {
    if (m.role !== 'user') continue;
    const t = meta[k];
    if (t && t.followUp === false && tasks.includes(t.task ?? '')) out.push({ ...firstTurns(s, k + 1), id: `${s.id}@${k}` });
    k++;
  }
  return out;
}

/**
 * Every question of a dialogue that stands on its own (its task metadata says `followUp: false`; without
 * metadata only the first) as a single-question sample: the image, that question, its answer — the form of
 * the canonical items in a split's eval.jsonl, and the cheapest sample that still teaches a lookup (about a fifth of a dialogue's
 * tokens). The tool declaration goes only with a question whose answer calls a tool: with vista's small
 * vocabulary it is ~320 tokens, five times the rest of a sample, so a declaration nobody calls stays a lesson
 * of whole dialogues (`firstTurns` and plain stages keep it). Each sample's
 * record carries only its own turn's task, so turn-indexed readers (./attend.ts, ./wordalign.ts) see it as
 * turn 0. Ids are `<id>#<turn>`.
 * @example singleTurns(s).map((x) => x.messages.length) // [2, 2] for `<image> Q1 / A1 / Where is it? / A2 / Q3 / A3`
 */
export function singleTurns(s: Sample): Sample[] {
  const lead: ConvMessage[] = [];
  const turns: ConvMessage[][] = [];
  for (const m of s.messages) {
    if (m.role === 'user') turns.push([m]);
    else if (turns.length) turns[turns.length - 1]!.push(m);
    else lead.push(m);
  }
  const meta = s.record.tasks as { followUp?: boolean }[] | undefined;
  const imageParts = turns[0]?.[0] && Array.isArray(turns[0][0].content) ? turns[0][0].content.filter((p) => p.type === 'image') : [];
  const { tools, ...base } = s;
  const out: Sample[] = [];
  turns.forEach((t, k) => {
    if (k > 0 && (!meta || meta[k]?.followUp !== false)) return;
    const [q, ...rest] = t;
    const user: ConvMessage = k === 0 ? q! : { role: 'user', content: [...imageParts, { type: 'text', text: textOf(q!.content) }] };
    const record = { ...s.record, tasks: meta ? [meta[k]] : undefined };
    const sample = { ...base, id: `${s.id}#${k}`, messages: [...lead, user, ...rest], record };
    out.push(tools && rest.some(isToolCall) ? { ...sample, tools } : sample);
  });
  return out;
}

/**
 * Tokenize samples once. `all`: every token after the first is a target (language modelling); otherwise
 * only assistant tokens (and the end-of-turn token closing them) are. A sample whose tokens do not line
 * up with its turns, or that is longer than `maxLen`, is an InputError naming it.
 */
export function encodeSamples(samples: readonly Sample[], f: PromptFormat, opts: { maxLen: number; all?: boolean }): Encoded[] {
  return samples.map((s) => {
    const c = tokenizeConversation(s.messages, { ...f, tools: s.tools }, { addGenerationPrompt: false, withLabels: !opts.all, sampleId: s.id });
    if (c.ids.length > opts.maxLen) throw new InputError(`sample ${s.id}: ${c.ids.length} tokens exceed the context length ${opts.maxLen}`);
    const learn = opts.all ? c.ids.map((id, i) => (i > 0 && id !== IMAGE_SLOT ? 1 : 0)) : c.assistant;
    if (!opts.all && !learn.some((x) => x)) throw new InputError(`sample ${s.id}: no assistant tokens to learn`);
    return { id: s.id, ids: Int32Array.from(c.ids), imageStarts: c.imageStarts, learn: Uint8Array.from(learn), images: s.images };
  });
}

/** Where an epoch-ordered pass over a dataset stands: exact, so a resumed run sees the same batches. */
export interface DataPosition {
  epoch: number;
  cursor: number;
}

/**
 * Seeded order over `n` items: epoch e is a Fisher–Yates shuffle from Rng(seed, stream + e), so a position
 * (epoch, cursor) is all a checkpoint needs. Batches run on across epoch ends.
 */
export class EpochOrder {
  private perm: number[] = [];
  private permEpoch = -1;
  pos: DataPosition = { epoch: 0, cursor: 0 };

  /**
   * With `bucket` = { lengths, batchSize }, each epoch's shuffle is cut into windows of 16 batches, each
   * window sorted by length and cut into batches, and the batches shuffled: batches hold similar lengths,
   * so right padding wastes little, and the order is still a pure function of (seed, stream, epoch).
   */
  constructor(readonly n: number, readonly seed: number, readonly stream: number,
    readonly bucket: { lengths: ArrayLike<number>; batchSize: number } | null = null) {
    if (n <= 0) throw new InputError('empty dataset');
  }

  private order(epoch: number): number[] {
    if (this.permEpoch !== epoch) {
      const rng = new Rng(this.seed, this.stream * 100003 + epoch);
      let perm = rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
      if (this.bucket) {
        const { lengths, batchSize } = this.bucket;
        const batches: number[][] = [];
        for (let w = 0; w < perm.length; w += 16 * batchSize) {
          const win = perm.slice(w, w + 16 * batchSize).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
          for (let i = 0; i < win.length; i += batchSize) batches.push(win.slice(i, i + batchSize));
        }
        perm = rng.shuffle(batches).flat();
      }
      this.perm = perm;
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** The next `k` indices. */
  next(k: number): number[] {
    const out: number[] = [];
    while (out.length < k) {
      if (this.pos.cursor >= this.n) this.pos = { epoch: this.pos.epoch + 1, cursor: 0 };
      out.push(this.order(this.pos.epoch)[this.pos.cursor++]!);
    }
    return out;
  }
}

/**
 * Decoded + preprocessed images as normalised planar Float32Arrays (3·S·S), least recently used dropped
 * beyond `maxBytes`. Decoding is async (sharp); preprocessing is vista's own (same as inference).
 */
export class ImageCache {
  private readonly lru: ImageEmbeddingCache;
  constructor(readonly pp: PreprocessOptions, readonly maxBytes: number) {
    this.lru = new ImageEmbeddingCache({ maxEntries: Infinity, maxBytes });
  }

  async get(file: string): Promise<Float32Array> {
    const hit = this.lru.get(file);
    if (hit) return hit;
    const img = await decodeImage(file).catch((e: Error) => {
      throw new InputError(`image ${file}: ${e.message}`);
    });
    const t = toTensor([prepareImage(img, this.pp)], this.pp);
    const px = t.toArray();
    t.dispose();
    this.lru.set(file, px);
    return px;
  }

  /** The images of `files` as one (n, 3, S, S) buffer. */
  async batch(files: readonly string[]): Promise<Float32Array> {
    const S = this.pp.imageSize;
    const one = 3 * S * S;
    const out = new Float32Array(files.length * one);
    const px = await Promise.all(files.map((f) => this.get(f)));
    px.forEach((p, i) => out.set(p, i * one));
    return out;
  }
}

/** A right-padded batch. Pads come after each sample, so causal attention never lets a real token see one. */
export interface Batch {
  readonly B: number;
  readonly T: number;
  /** (B·T) token ids; image slots and pads hold 0 (their embeddings are replaced or never scored) */
  readonly ids: Int32Array;
  /** (B·T) row of each position in concat([text embeddings (B·T), image embeddings (nImages·N)]) */
  readonly rows: Int32Array;
  /** positions (b·T + t) whose next token is scored, and those next tokens */
  readonly scored: Int32Array;
  readonly targets: Int32Array;
  /** per scored position, the length of the answer it belongs to (its run of consecutive scored positions) */
  readonly answerLen: Int32Array;
  /** per scored position, which of its sample's answers (0, 1, …, in turn order) it belongs to */
  readonly answerTurn: Int32Array;
  /** image files in embedding order */
  readonly images: readonly string[];
  /** real (non-pad) tokens */
  readonly tokens: number;
  /** the real tokens' grid positions and each grid position's packed row (the LM runs on real tokens only) */
  readonly packed: PackedRows;
  /** (R) the real tokens' ids, image slots 0 */
  readonly realIds: Int32Array;
  /** (R) each real token's row in concat([text embeddings (R), image embeddings (nImages·N)]) */
  readonly realRows: Int32Array;
  /** per scored position, its row among the real tokens */
  readonly scoredReal: Int32Array;
}

/** Collate samples into a right-padded batch with next-token targets on learned positions. */
export function collate(samples: readonly Encoded[], imageTokens: number): Batch {
  const B = samples.length;
  const T = Math.max(...samples.map((s) => s.ids.length));
  const tokens = samples.reduce((n, s) => n + s.ids.length, 0);
  const ids = new Int32Array(B * T);
  const rows = new Int32Array(B * T);
  const real = new Int32Array(tokens);
  const slot = new Int32Array(B * T).fill(-1);
  const realIds = new Int32Array(tokens);
  const realRows = new Int32Array(tokens);
  const scored: number[] = [];
  const scoredReal: number[] = [];
  const targets: number[] = [];
  const images: string[] = [];
  let r = 0;
  samples.forEach((s, b) => {
    const base = b * T;
    for (let t = 0; t < T; t++) rows[base + t] = base + t;
    s.imageStarts.forEach((start, k) => {
      const img = images.length;
      images.push(s.images[k]!);
      for (let j = 0; j < imageTokens; j++) rows[base + start + j] = B * T + img * imageTokens + j;
    });
    const L = s.ids.length;
    for (let t = 0; t < L; t++, r++) {
      const id = s.ids[t]!;
      ids[base + t] = id === IMAGE_SLOT ? 0 : id;
      real[r] = base + t;
      slot[base + t] = r;
      realIds[r] = ids[base + t]!;
      realRows[r] = rows[base + t]! < B * T ? r : rows[base + t]! - B * T + tokens;
      // position t predicts token t+1
      if (t + 1 < L && s.learn[t + 1]) {
        scored.push(base + t);
        scoredReal.push(r);
        targets.push(s.ids[t + 1]!);
      }
    }
  });
  const answerLen = new Int32Array(scored.length);
  const answerTurn = new Int32Array(scored.length);
  for (let i = 0, row = -1, turn = 0; i < scored.length;) {
    let j = i + 1;
    while (j < scored.length && scored[j] === scored[j - 1]! + 1) j++;
    answerLen.fill(j - i, i, j);
    const r = Math.floor(scored[i]! / T);
    turn = r === row ? turn + 1 : 0;
    row = r;
    answerTurn.fill(turn, i, j);
    i = j;
  }
  return {
    B, T, ids, rows, scored: Int32Array.from(scored), targets: Int32Array.from(targets), answerLen, answerTurn, images, tokens,
    packed: { B, T, real, slot }, realIds, realRows, scoredReal: Int32Array.from(scoredReal),
  };
}
