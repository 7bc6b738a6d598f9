/**
 * Grounded attention supervision: while the language model writes the answer to a question about an object,
 * one attention head should be looking at that object's image tokens. Scene metadata says where every object
 * is, and each generated dialogue turn says which objects it is about, so this can be taught directly
 * (as in attention-supervised VQA, e.g. Qiao et al. 2018, Selvaraju et al. 2019 "HINT").
 *
 * Why: a language model trained from scratch learns the answer priors long before it learns *which* of the
 * 36 image tokens a question is about; with the information in 1–4 tokens of 36 and no head yet looking
 * there, the image's signal in the gradient is weak, and reading starts late and by seed luck
 * (scripts/probe-reading.mjs). The hypothesis: a head told where to look gives its value path a clean signal
 * from the first steps. The loss is an auxiliary term of the instruct stage and is thrown away with the data;
 * the model's format and inference are unchanged.
 *
 * The loss, for one head h of one layer: for every position that predicts a token of an assistant turn about
 * objects O, −log Σ_{j ∈ tokens(O)} softmax_j(q·k_j / √D) over the keys the position attends to (its own
 * sample's keys up to itself). A turn about no object (a count of 0, "no" to "is there…", no digit, captions)
 * is not supervised. Two hops use it: the image hop (`attend`: keys = the objects' image tokens) and the
 * question hop (`attendQuestion`, one layer lower: keys = the question's words naming the objects), which
 * together spell out "find the words, then find the object they name".
 *
 * What it did (README, "The bundled model"): the image-hop head learns to look at objects (97–100 % of its
 * attention) but, after a full instruct stage, at the asked-about one only about as often as chance; the
 * question hop is learned at once yet did not make the image hop selective within 150 probe steps. Neither
 * is in the default recipe.
 *
 * Legend: B samples, T padded length, H heads, Hkv key/value heads, D head width, n = √N image-token grid side,
 * Q supervised query positions.
 */
import { ConfigError } from '../errors.ts';
import { Tensor } from '../tensor/tensor.ts';
import { add, mul, scale, unary } from '../tensor/ops/elementwise.ts';
import { matmul } from '../tensor/ops/matmul.ts';
import { softmax } from '../tensor/ops/nn.ts';
import { mean, sum } from '../tensor/ops/reduce.ts';
import { gather } from '../tensor/ops/shape.ts';
import { reshape, slice, transpose } from '../tensor/ops/view.ts';
import type { Batch, Encoded } from './data.ts';

type Box = readonly [number, number, number, number];

/** What a turn's task metadata (`tasks[k]` of a generated dialogue) says about which objects it concerns. */
interface TurnSpec {
  task: string;
  object?: number;
  a?: number;
  b?: number;
  colour?: string;
  shape?: string;
}

interface SceneObj {
  readonly shape: string;
  readonly colour: string;
  readonly box1000: Box;
}

/**
 * The boxes each assistant turn of a dialogue is about, from its `tasks` metadata and its scene; `[]` for a
 * turn about nothing in particular or about nothing that is there. Captions (no `tasks`) give `null`.
 * @example turnBoxes([{ task: 'colour', object: 1 }], objs) // [[objs[1].box1000]]
 */
export function turnBoxes(tasks: unknown, objs: readonly SceneObj[]): Box[][] | null {
  if (!Array.isArray(tasks)) return null;
  return (tasks as TurnSpec[]).map((t) => {
    const at = (i: number | undefined): Box[] => (i !== undefined && objs[i] ? [objs[i].box1000] : []);
    switch (t.task) {
      case 'colour': case 'shape': case 'ground': case 'click': return at(t.object);
      case 'relation': return [...at(t.a), ...at(t.b)];
      case 'read': return objs.filter((o) => o.shape === 'digit').map((o) => o.box1000);
      case 'exists': case 'count':
        return objs.filter((o) => (!t.colour || o.colour === t.colour) && (!t.shape || o.shape === t.shape)).map((o) => o.box1000);
      default: return [];
    }
  });
}

/**
 * Image tokens (row-major on an n×n grid over the image) that a box covers: every cell whose overlap with the
 * box is at least a quarter of the cell or of the box, and always the cell holding the box centre.
 */
export function boxCells(box: Box, n: number): number[] {
  const [x0, y0, x1, y1] = box;
  const c = 1000 / n;
  const cells = new Set<number>();
  const area = Math.max(1, (x1 - x0) * (y1 - y0));
  for (let r = 0; r < n; r++)
    for (let col = 0; col < n; col++) {
      const ox = Math.min(x1, (col + 1) * c) - Math.max(x0, col * c);
      const oy = Math.min(y1, (r + 1) * c) - Math.max(y0, r * c);
      if (ox > 0 && oy > 0 && ox * oy >= 0.25 * Math.min(c * c, area)) cells.add(r * n + col);
    }
  const cr = Math.min(n - 1, Math.floor((y0 + y1) / 2 / c)), cc = Math.min(n - 1, Math.floor((x0 + x1) / 2 / c));
  cells.add(cr * n + cc);
  return [...cells].sort((a, b) => a - b);
}

/** Supervised query positions of a batch and, per query, the key positions it should attend to. */
export interface AttendTargets {
  /** (Q) query positions b·T + t */
  readonly queries: Int32Array;
  /** (Q, B·T) 1 on target keys */
  readonly target: Float32Array;
  /** (Q, B·T) 0 on keys the query may attend to, −1e9 elsewhere (other samples, the future) */
  readonly allowed: Float32Array;
}

/**
 * Where the answer to turn `turn` of sample `e` should look: key positions within the sample, or null / [] for
 * none. `ask` is the span [from, to) of the tokens since the previous answer (the user turn, with the image
 * and any tools on the first).
 */
export type KeysOf = (e: Encoded, turn: number, ask: readonly [number, number]) => readonly number[] | null;

/**
 * Targets for a collated batch: the k-th run of learned tokens of a sample is its k-th assistant turn, and each
 * of its positions but the one predicting the closing token is a query with the keys `keysOf` gives. Null when
 * nothing in the batch is supervised.
 */
export function attendTargets(b: Batch, samples: readonly Encoded[], keysOf: KeysOf): AttendTargets | null {
  const BT = b.B * b.T;
  const qs: number[] = [];
  const keys: number[][] = [];
  samples.forEach((e, s) => {
    let k = -1, from = 0, ks: readonly number[] | null = null;
    for (let t = 1; t < e.ids.length; t++) {
      if (!e.learn[t]) {
        if (e.learn[t - 1]) from = t;
        continue;
      }
      if (!e.learn[t - 1]) ks = keysOf(e, ++k, [from, t]);
      if (!ks?.length) continue;
      // position t−1 predicts token t; the turn's closing token (the last of the run) is not about the object
      if (!e.learn[t + 1] && e.learn[t - 1]) continue;
      qs.push(s * b.T + t - 1);
      keys.push(ks.map((j) => s * b.T + j));
    }
  });
  if (!qs.length) return null;
  const Q = qs.length;
  const target = new Float32Array(Q * BT);
  const allowed = new Float32Array(Q * BT).fill(-1e9);
  qs.forEach((p, i) => {
    const s0 = Math.floor(p / b.T) * b.T;
    allowed.fill(0, i * BT + s0, i * BT + p + 1);
    for (const j of keys[i]!) target[i * BT + j] = 1;
  });
  return { queries: Int32Array.from(qs), target, allowed };
}

/**
 * Keys of the image hop: the image tokens (an n×n grid, n = √imageTokens) covering the boxes each turn is about.
 * `boxes(e)` gives a sample's per-turn boxes (or null: not supervised); single-image samples only.
 */
export function imageKeys(imageTokens: number, boxes: (e: Encoded) => Box[][] | null): KeysOf {
  const n = Math.round(Math.sqrt(imageTokens));
  if (n * n !== imageTokens) throw new ConfigError(`attention supervision needs a square image-token grid, got ${imageTokens} tokens`);
  return (e, k) => {
    const bx = e.imageStarts.length === 1 ? boxes(e)?.[k] : undefined;
    return bx?.length ? [...new Set(bx.flatMap((box) => boxCells(box, n)))].map((j) => e.imageStarts[0]! + j) : null;
  };
}

/**
 * Keys of the question hop: the tokens of the user turn that spell a word naming what the answer is about (a
 * word of `words(e)[k]` or its plural, whole words, case-insensitive; a word split over several tokens gives all
 * of them). `wordOf(id)` is a token's text.
 */
export function questionKeys(words: (e: Encoded) => string[][] | null, wordOf: (id: number) => string): KeysOf {
  return (e, k, [from, to]) => {
    const w = words(e)?.[k];
    if (!w?.length) return null;
    let text = '';
    const starts: number[] = [];
    for (let t = from; t < to; t++) {
      starts.push(text.length);
      text += e.ids[t]! < 0 ? ' ' : wordOf(e.ids[t]!).toLowerCase();
    }
    const out = new Set<number>();
    const re = new RegExp(`(?<![a-z])(?:${w.map((v) => v.replace(/[^a-z]/g, '')).filter((v) => v).join('|')})s?(?![a-z])`, 'g');
    for (const m of text.matchAll(re)) {
      const a = m.index!, z = a + m[0].length;
      starts.forEach((s0, i) => {
        const s1 = i + 1 < starts.length ? starts[i + 1]! : text.length;
        if (s0 < z && s1 > a) out.add(from + i);
      });
    }
    return [...out].sort((x, y) => x - y);
  };
}

/**
 * The words a question about each turn's objects may name them by: their size, colour and shape (for a count
 * or an existence question, the colour and shape asked about). `[]` where a turn names nothing.
 */
export function turnWords(tasks: unknown, objs: readonly (SceneObj & { size?: string | null })[]): string[][] | null {
  if (!Array.isArray(tasks)) return null;
  const of = (i: number | undefined): string[] => {
    const o = i === undefined ? undefined : objs[i];
    return o ? [o.size ?? '', o.colour, o.shape].filter((x) => x) : [];
  };
  return (tasks as TurnSpec[]).map((t) => {
    switch (t.task) {
      case 'colour': return of(t.object).filter((w) => w !== objs[t.object!]?.colour);
      case 'shape': return of(t.object).filter((w) => w !== objs[t.object!]?.shape);
      case 'ground': case 'click': return of(t.object);
      case 'relation': return [...new Set([...of(t.a), ...of(t.b)])];
      case 'exists': case 'count': return [t.colour, t.shape].filter((x): x is string => !!x);
      default: return [];
    }
  });
}

/**
 * Attention probabilities (Q, B·T) of head `head` at the supervised queries, from one layer's rotated queries
 * (B, T, H, D) and keys (B, T, Hkv, D): what the model computes there, masked as `t.allowed` says.
 */
export function headAttention(q: Tensor, k: Tensor, head: number, t: AttendTargets): Tensor {
  const [B, T, H, D] = q.shape as [number, number, number, number];
  const Hkv = k.shape[2]!;
  const kvHead = Math.floor(head / (H / Hkv));
  const qh = gather(reshape(slice(q, 2, head, head + 1), [B * T, D]), 0, t.queries); // (Q, D)
  const kh = reshape(slice(k, 2, kvHead, kvHead + 1), [B * T, D]); // (B·T, D)
  const Q = t.queries.length;
  return softmax(add(scale(matmul(qh, transpose(kh, 0, 1)), 1 / Math.sqrt(D)), Tensor.from(t.allowed, [Q, B * T])));
}

/**
 * The supervision loss from one layer's rotated queries (B, T, H, D) and keys (B, T, Hkv, D), for head `head`.
 * @example attendLoss(q, k, 0, targets) // mean −log attention mass on the asked-about objects
 */
export function attendLoss(q: Tensor, k: Tensor, head: number, t: AttendTargets): Tensor {
  const p = headAttention(q, k, head, t); // (Q, B·T)
  const mass = sum(mul(p, Tensor.from(t.target, p.shape)), -1); // (Q)
  return scale(mean(unary('log', add(mass, Tensor.from(new Float32Array([1e-6]), [1])))), -1);
}
