/**
 * Next-token sampling over raw logits (V floats), in llama.cpp's default chain order
 * (common/sampling.cpp): logit bias and mask → penalties → top-k → top-p → min-p → temperature → draw.
 * Top-k, top-p and min-p therefore see temperature-1 probabilities, as in llama.cpp.
 *
 * Nothing here sorts the whole vocabulary: top-k keeps a k-element heap while scanning once
 * (O(V log k)); top-p without top-k pops a max-heap only until the mass is reached (O(V + m log V) for
 * m kept tokens). Scratch buffers are sized once per vocabulary and reused step after step.
 *
 * Ties between equal logits go to the lower token id (as `argmax`), so every result is deterministic.
 *
 * @example
 * const s = new Sampler({ temperature: 0.7, topK: 40, topP: 0.9, seed: 42 });
 * for (const id of promptIds) s.accept(id);       // penalties see the prompt, as llama.cpp's server
 * const id = s.sample(logits);                    // logits: Float32Array (V)
 * s.accept(id);
 */
import { ConfigError, InputError } from '../errors.ts';
import { Rng } from '../tensor/rng.ts';

/** Edits logits in place before sampling, e.g. sets disallowed tokens to −Infinity (grammars, tool calls). */
export type LogitsHook = (logits: Float32Array) => void;

export interface SamplerOptions {
  /** 0 = greedy (argmax after bias, mask and penalties). Default 0.8. */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 40. */
  readonly topK?: number;
  /** Keep the smallest most-likely set with probability mass ≥ p; 1 = off. Default 0.95. */
  readonly topP?: number;
  /** Keep tokens with p ≥ minP · p_max; 0 = off. Default 0.05. */
  readonly minP?: number;
  /** Positive logits ÷ penalty, negative × penalty, for tokens seen in the window; 1 = off. Default 1. */
  readonly repetitionPenalty?: number;
  /** Window of accepted tokens the penalties look at; 0 = off, −1 = everything accepted. Default 64. */
  readonly penaltyLastN?: number;
  /** Subtracted once from the logit of every token seen in the window. Default 0. */
  readonly presencePenalty?: number;
  /** Subtracted count times from the logit of every token seen in the window. Default 0. */
  readonly frequencyPenalty?: number;
  /** Seed of vista's `Rng`; the same seed and inputs give the same tokens. Default: random. */
  readonly seed?: number;
  /** Added to the logits of the given token ids (−Infinity bans a token). */
  readonly logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  /** Called on the biased logits before anything else; may set entries to −Infinity. */
  readonly mask?: LogitsHook | null;
}

/** llama.cpp's `common_params_sampling` defaults. */
export const SAMPLER_DEFAULTS = {
  temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
  repetitionPenalty: 1, penaltyLastN: 64, presencePenalty: 0, frequencyPenalty: 0,
} as const;

/**
 * A candidate set: token ids into the full `logits` array. `sorted` means ids[0..n) are in descending
 * logit order (ties: lower id first).
 */
export interface Candidates {
  readonly logits: Float32Array;
  ids: Int32Array;
  n: number;
  sorted: boolean;
}

export interface PenaltyOptions {
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
}

/** `allowOnly(ids)` as a mask: every other token becomes −Infinity. */
export function allowOnly(allowed: Iterable<number>): LogitsHook {
  const ids = Int32Array.from(allowed);
  return (logits) => {
    const keep = new Float32Array(ids.length);
    for (let i = 0; i < ids.length; i++) keep[i] = logits[ids[i]!]!;
    logits.fill(-Infinity);
    for (let i = 0; i < ids.length; i++) logits[ids[i]!] = keep[i]!;
  };
}

/**
 * llama.cpp's penalties sampler, in place: for each token with count c > 0 in the window, a logit ≤ 0 is
 * multiplied by the repetition penalty and a positive one divided by it, then c · frequency + presence is
 * subtracted.
 */
export function applyPenalties(logits: Float32Array, counts: ReadonlyMap<number, number>, p: PenaltyOptions): void {
  const { repetitionPenalty: rep, presencePenalty: pres, frequencyPenalty: freq } = p;
  if (rep === 1 && pres === 0 && freq === 0) return;
  for (const [id, c] of counts) {
    if (c <= 0 || id >= logits.length) continue;
    const l = logits[id]!;
    logits[id] = (l <= 0 ? l * rep : l / rep) - c * freq - pres;
  }
}

/** Every token whose logit is not −Infinity (or NaN), unsorted. `ids` must hold V entries. */
export function allCandidates(logits: Float32Array, ids = new Int32Array(logits.length)): Candidates {
  let n = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > -Infinity) ids[n++] = i;
  if (n === 0) throw new InputError('sampler: every token is masked out (all logits are −Infinity or NaN)');
  return { logits, ids, n, sorted: false };
}

/** Index of the largest logit (lowest id on ties); −1 if every logit is −Infinity or NaN. */
export function argmaxLogits(logits: Float32Array): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > bv) {
    bv = logits[i]!;
    best = i;
  }
  return best;
}

type Before = (a: number, b: number) => boolean;

function siftDown(h: Int32Array, n: number, i: number, before: Before): void {
  const x = h[i]!;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(h[c + 1]!, h[c]!)) c++;
    if (!before(h[c]!, x)) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = x;
}

function heapify(h: Int32Array, n: number, before: Before): void {
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(h, n, i, before);
}

const BANDS = 64;
const BAND_WIDTH = 0.5;

const ID_SPAN = 2 ** 21;
const ID_MASK = ID_SPAN - 1;

/**
 * Ascending keys of the candidates with logit > floor: the logit's f32 bits made order-preserving as a
 * uint32, times 2^21, plus (2^21 − 1 − id) so ties put the lower id last. Exact in f64 (53 bits), and
 * sorted natively, without a comparator.
 */
function sortKeys(L: Float32Array, ids: Int32Array, n: number, floor: number): Float64Array {
  if (L.length > ID_SPAN) throw new InputError(`sampler: top-p supports vocabularies of up to ${ID_SPAN} tokens, got ${L.length}`);
  const bits = new Uint32Array(L.buffer, L.byteOffset, L.length);
  let m = 0;
  for (let i = 0; i < n; i++) if (L[ids[i]!]! > floor) m++;
  const keys = new Float64Array(m);
  m = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(L[id]! > floor)) continue;
    const u = L[id] === 0 ? 0 : bits[id]!; // −0 sorts as +0
    const ordered = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
    keys[m++] = ordered * ID_SPAN + (ID_MASK - id);
  }
  return keys.sort();
}

/** Keep the k best candidates, sorted (llama.cpp top-k; k ≤ 0 or k ≥ n = off). O(n log k). */
export function topK(c: Candidates, k: number): void {
  if (k <= 0 || k >= c.n) return;
  const ids = c.ids;
  const L = c.logits;
  const worse: Before = (a, b) => L[a]! < L[b]! || (L[a] === L[b] && a > b);
  // ids[0..k) is a heap with the worst kept candidate at the root; a later candidate replaces it if better
  heapify(ids, k, worse);
  for (let j = k; j < c.n; j++) {
    const id = ids[j]!;
    if (worse(ids[0]!, id)) {
      ids[0] = id;
      siftDown(ids, k, 0, worse);
    }
  }
  // heapsort: moving the worst to the back each time leaves ids[0..k) best-first
  for (let m = k - 1; m > 0; m--) {
    const t = ids[0]!;
    ids[0] = ids[m]!;
    ids[m] = t;
    siftDown(ids, m, 0, worse);
  }
  c.n = k;
  c.sorted = true;
}

function maxLogit(c: Candidates): number {
  const L = c.logits;
  if (c.sorted) return L[c.ids[0]!]!;
  let max = -Infinity;
  for (let i = 0; i < c.n; i++) max = Math.max(max, L[c.ids[i]!]!);
  return max;
}

/** Largest logit among the candidates and Σ exp(logit − max) (temperature 1), in f64. */
function softmaxStats(c: Candidates): { max: number; sum: number } {
  const L = c.logits;
  const max = maxLogit(c);
  let sum = 0;
  for (let i = 0; i < c.n; i++) sum += Math.exp(L[c.ids[i]!]! - max);
  return { max, sum };
}

/**
 * Keep the most likely candidates until their probability mass reaches p (the token that crosses p is
 * kept), leaving them sorted (llama.cpp top-p; p ≥ 1 = off).
 */
export function topP(c: Candidates, p: number): void {
  if (p >= 1 || c.n <= 1) return;
  const L = c.logits;
  let cum = 0;
  if (c.sorted) {
    const { max, sum } = softmaxStats(c);
    for (let i = 0; i < c.n; i++) {
      cum += Math.exp(L[c.ids[i]!]! - max) / sum;
      if (cum >= p) {
        c.n = i + 1;
        return;
      }
    }
    return;
  }
  // The kept set is a best-first prefix, so it lies within the logit bands (below the max) whose mass
  // reaches p (+1 band of slack for summation order): only those tokens are sorted.
  const h = c.ids;
  const max = maxLogit(c);
  const mass = new Float64Array(BANDS);
  let sum = 0;
  for (let i = 0; i < c.n; i++) {
    const l = L[h[i]!]!;
    const w = Math.exp(l - max);
    mass[Math.min(BANDS - 1, Math.floor((max - l) / BAND_WIDTH))]! += w;
    sum += w;
  }
  let last = 0;
  for (let acc = mass[0]!; acc < p * sum && last < BANDS - 1; ) acc += mass[++last]!;
  const floor = last + 1 >= BANDS - 1 ? -Infinity : max - (last + 2) * BAND_WIDTH;
  const keys = sortKeys(L, h, c.n, floor);
  let m = 0;
  for (let i = keys.length - 1; i >= 0; i--) {
    const id = ID_MASK - (keys[i]! % ID_SPAN);
    h[m++] = id;
    cum += Math.exp(L[id]! - max) / sum;
    if (cum >= p) break;
  }
  c.n = m;
  c.sorted = true;
}

/** Keep candidates with p ≥ minP · p_max, i.e. logit ≥ max + ln(minP), in order (llama.cpp min-p; 0 = off). */
export function minP(c: Candidates, p: number): void {
  if (p <= 0 || c.n <= 1) return;
  const L = c.logits;
  const threshold = maxLogit(c) + Math.log(p);
  let m = 0;
  for (let i = 0; i < c.n; i++) {
    const id = c.ids[i]!;
    if (L[id]! >= threshold) c.ids[m++] = id;
  }
  c.n = m;
}

/** Unnormalised probabilities exp((logit − max) / temperature) into probs[0..n), in candidate order; returns their sum. */
function weights(c: Candidates, temperature: number, probs: Float64Array): number {
  const max = maxLogit(c);
  let sum = 0;
  for (let i = 0; i < c.n; i++) {
    const w = Math.exp((c.logits[c.ids[i]!]! - max) / temperature);
    probs[i] = w;
    sum += w;
  }
  return sum;
}

/** Draw a candidate with probability ∝ exp(logit / temperature), using one uniform u ∈ [0, 1). */
export function drawCandidate(c: Candidates, temperature: number, u: number, probs = new Float64Array(c.n)): number {
  const sum = weights(c, temperature, probs);
  const r = u * sum;
  let cum = 0;
  for (let i = 0; i < c.n; i++) {
    cum += probs[i]!;
    if (r < cum) return c.ids[i]!;
  }
  return c.ids[c.n - 1]!; // r rounded up to the total
}

function checkOptions(o: Required<Omit<SamplerOptions, 'seed' | 'logitBias' | 'mask'>>): void {
  const bad = (m: string) => new ConfigError(`sampler: ${m}`);
  if (!(o.temperature >= 0 && Number.isFinite(o.temperature))) throw bad(`temperature must be ≥ 0, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0) throw bad(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP >= 0 && o.topP <= 1)) throw bad(`topP must be in [0, 1], got ${o.topP}`);
  if (!(o.minP >= 0 && o.minP <= 1)) throw bad(`minP must be in [0, 1], got ${o.minP}`);
  if (!(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) throw bad(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
  if (!Number.isInteger(o.penaltyLastN) || o.penaltyLastN < -1) throw bad(`penaltyLastN must be an integer ≥ −1, got ${o.penaltyLastN}`);
  if (!Number.isFinite(o.presencePenalty)) throw bad(`presencePenalty must be finite, got ${o.presencePenalty}`);
  if (!Number.isFinite(o.frequencyPenalty)) throw bad(`frequencyPenalty must be finite, got ${o.frequencyPenalty}`);
}

/**
 * A seeded sampler with its penalty window. `sample` does not record the token: call `accept(id)` for
 * every token that enters the context (prompt tokens too, if they should be penalised).
 */
export class Sampler {
  readonly options: Readonly<Required<Omit<SamplerOptions, 'seed' | 'logitBias' | 'mask'>>> & { readonly seed: number };
  /** Replaceable between steps (e.g. a grammar's allowed-token mask for the current state). */
  mask: LogitsHook | null;
  private readonly bias: [number, number][];
  private readonly rng: Rng;
  private readonly counts = new Map<number, number>();
  private readonly window: number[] = [];
  private scratchV = 0;
  private work = new Float32Array(0);
  private ids = new Int32Array(0);
  private probs = new Float64Array(0);

  constructor(opts: SamplerOptions = {}) {
    const o = { ...SAMPLER_DEFAULTS, ...stripUndefined(opts) };
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.options = {
      temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP,
      repetitionPenalty: o.repetitionPenalty, penaltyLastN: o.penaltyLastN,
      presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty, seed,
    };
    checkOptions(this.options);
    this.bias = opts.logitBias instanceof Map ? [...opts.logitBias] : Object.entries(opts.logitBias ?? {}).map(([k, v]) => [Number(k), v]);
    for (const [id, b] of this.bias)
      if (!Number.isInteger(id) || id < 0 || !(Number.isFinite(b) || b === -Infinity))
        throw new ConfigError(`sampler: logitBias ${id} → ${b} (ids are integers ≥ 0, biases finite or −Infinity)`);
    this.mask = opts.mask ?? null;
    this.rng = new Rng(seed);
  }

  /** Record a token in the penalty window. */
  accept(id: number): void {
    const n = this.options.penaltyLastN;
    if (n === 0) return;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    if (n < 0) return;
    this.window.push(id);
    if (this.window.length > n) {
      const old = this.window.shift()!;
      const c = this.counts.get(old)! - 1;
      if (c) this.counts.set(old, c);
      else this.counts.delete(old);
    }
  }

  /** Forget the penalty window (the random stream continues). */
  reset(): void {
    this.counts.clear();
    this.window.length = 0;
  }

  /** Choose the next token from logits (V). The caller's array is not modified. */
  sample(logits: Float32Array): number {
    const work = this.prepare(logits);
    if (this.options.temperature <= 0) return this.greedy(work);
    const c = this.filter(work);
    return drawCandidate(c, this.options.temperature, this.rng.uniform(), this.probs);
  }

  /**
   * The distribution `sample` draws from: kept token ids (best first when a stage sorted them) and their
   * probabilities. Does not consume randomness.
   */
  distribution(logits: Float32Array): { ids: Int32Array; probs: Float64Array } {
    const work = this.prepare(logits);
    if (this.options.temperature <= 0) return { ids: Int32Array.of(this.greedy(work)), probs: Float64Array.of(1) };
    const c = this.filter(work);
    const probs = new Float64Array(c.n);
    const sum = weights(c, this.options.temperature, probs);
    for (let i = 0; i < c.n; i++) probs[i]! /= sum;
    return { ids: c.ids.slice(0, c.n), probs };
  }

  /** Copy, bias, mask and penalise the logits into the reusable work buffer. */
  private prepare(logits: Float32Array): Float32Array {
    const V = logits.length;
    if (V === 0) throw new InputError('sampler: empty logits');
    if (V !== this.scratchV) {
      this.scratchV = V;
      this.work = new Float32Array(V);
      this.ids = new Int32Array(V);
      this.probs = new Float64Array(V);
    }
    const w = this.work;
    w.set(logits);
    for (const [id, b] of this.bias) if (id < V) w[id]! += b;
    this.mask?.(w);
    applyPenalties(w, this.counts, this.options);
    return w;
  }

  private greedy(w: Float32Array): number {
    const id = argmaxLogits(w);
    if (id < 0) throw new InputError('sampler: every token is masked out (all logits are −Infinity or NaN)');
    return id;
  }

  private filter(w: Float32Array): Candidates {
    const o = this.options;
    const c = allCandidates(w, this.ids);
    topK(c, o.topK);
    topP(c, o.topP);
    minP(c, o.minP);
    return c;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
