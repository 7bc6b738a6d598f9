/**
 * Grammar-constrained sampling: a `Sampler` whose mask lets through only tokens whose text the grammar
 * allows next (end-of-generation tokens only once the text is complete), and the grammars for tool calls
 * and `response_format`.
 *
 * Speed: each step first checks the most likely candidates (best first) until it has as many allowed
 * tokens as the sampler's top-k would keep; only when none of them fits does it scan the whole vocabulary.
 */
import { z } from 'zod';
import { Sampler, allCandidates, topK, type SamplerOptions } from './sampler.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { GrammarMatcher, alt, lit, rep, schemaGrammar, seq, textThen, type GNode, type GrammarLimits } from './grammar.ts';

/** Each token's text as generation emits it ('' for control tokens, null when it is not whole UTF-8). */
export class TokenTexts {
  private static cache = new WeakMap<Tokenizer, TokenTexts>();
  readonly texts: readonly (string | null)[];
  readonly eog: ReadonlySet<number>;

  private constructor(tok: Tokenizer) {
    const texts: (string | null)[] = [];
    for (let id = 0; id < tok.vocabSize; id++) {
      const t = tok.tokenToPiece(id, false);
      texts.push(t.includes('\uFFFD') ? null : t);
    }
    this.texts = texts;
    this.eog = tok.eogIds;
  }

  static of(tok: Tokenizer): TokenTexts {
    let t = TokenTexts.cache.get(tok);
    if (!t) TokenTexts.cache.set(tok, (t = new TokenTexts(tok)));
    return t;
  }
}

/** A sampler that keeps generation inside `grammar`; `accept` advances the grammar by each token's text. */
export class ConstrainedSampler extends Sampler {
  readonly matcher: GrammarMatcher;
  private candIds = new Int32Array(0);

  constructor(opts: SamplerOptions, grammar: GNode, private readonly vocab: TokenTexts) {
    super(opts);
    this.matcher = new GrammarMatcher(grammar);
    this.mask = (logits) => this.constrain(logits);
  }

  override accept(id: number): void {
    super.accept(id);
    const t = this.vocab.texts[id];
    if (t) this.matcher.advance(t);
  }

  private allowed(id: number, done: boolean): boolean {
    if (this.vocab.eog.has(id)) return done;
    const t = this.vocab.texts[id];
    return !!t && this.matcher.allows(t);
  }

  private constrain(logits: Float32Array): void {
    const V = logits.length;
    if (this.candIds.length !== V) this.candIds = new Int32Array(V);
    const done = this.matcher.accepting();
    const o = this.options;
    const want = o.temperature <= 0 ? 1 : o.topK > 0 ? o.topK : 40;
    const keep: number[] = [];
    let c;
    try {
      c = allCandidates(logits, this.candIds);
    } catch {
      return; // everything is masked already
    }
    topK(c, Math.min(c.n, Math.max(64, 4 * want)));
    for (let i = 0; i < c.n && keep.length < want; i++) if (this.allowed(c.ids[i]!, done)) keep.push(c.ids[i]!);
    if (!keep.length) for (let id = 0; id < V; id++) if (logits[id]! > -Infinity && this.allowed(id, done)) keep.push(id);
    if (!keep.length) keep.push(...this.vocab.eog); // dead end: end here (the caller validates the result)
    const vals = keep.map((id) => logits[id]!);
    logits.fill(-Infinity);
    keep.forEach((id, i) => (logits[id] = Number.isFinite(vals[i]) ? vals[i]! : 0));
  }
}

export interface ToolSpec {
  readonly name: string;
  readonly parameters: unknown;
}

export const TOOL_OPEN = '<tool_call>';
export const TOOL_CLOSE = '</tool_call>';
const MAX_CALLS = 8;

/**
 * The grammar of vista's tool calls, `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (the default
 * chat template's form). `auto`: free text, and once `<tool_call>` appears, a valid call; `required`: calls
 * from the first token on.
 */
export function toolCallGrammar(tools: readonly ToolSpec[], mode: 'auto' | 'required', parallel: boolean, limits?: GrammarLimits): GNode {
  const body = alt(tools.map((t) => seq(lit(`{"name": ${JSON.stringify(t.name)}, "arguments": `), schemaGrammar(t.parameters ?? { type: 'object' }, limits), lit('}'))));
  const call = seq(lit(TOOL_OPEN), body, lit(TOOL_CLOSE));
  const more = parallel ? MAX_CALLS - 1 : 0;
  return mode === 'required' ? rep(call, 1, more + 1) : textThen(TOOL_OPEN, seq(body, lit(TOOL_CLOSE), rep(call, 0, more)));
}

export interface ParsedCall {
  readonly name: string;
  /** JSON text of the arguments object. */
  readonly arguments: string;
}

const validators = new WeakMap<object, z.ZodType | null>();

/** Whether `value` satisfies the tool's JSON schema (zod's JSON-schema reader; schemas it cannot read pass). */
export function validatesAgainst(schema: unknown, value: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return true;
  let v = validators.get(schema);
  if (v === undefined) {
    try {
      v = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch {
      v = null;
    }
    validators.set(schema, v);
  }
  return v ? v.safeParse(value).success : true;
}

/**
 * Split generated text into content and tool calls. Only calls that parse, name a given tool and whose
 * arguments validate are returned; when there are none, all the text is content.
 */
export function parseToolCalls(text: string, tools: readonly ToolSpec[]): { content: string; calls: ParsedCall[] } {
  const start = text.indexOf(TOOL_OPEN);
  if (start < 0) return { content: text, calls: [] };
  const calls: ParsedCall[] = [];
  for (const m of text.slice(start).matchAll(/<tool_call>([\s\S]*?)<\/tool_call>/g)) {
    let obj: unknown;
    try {
      obj = JSON.parse(m[1]!);
    } catch {
      continue;
    }
    if (typeof obj !== 'object' || obj === null) continue;
    const { name, arguments: args } = obj as { name?: unknown; arguments?: unknown };
    const tool = tools.find((t) => t.name === name);
    if (!tool || typeof args !== 'object' || args === null || Array.isArray(args)) continue;
    if (!validatesAgainst(tool.parameters, args)) continue;
    calls.push({ name: tool.name, arguments: JSON.stringify(args) });
  }
  return calls.length ? { content: text.slice(0, start), calls } : { content: text, calls: [] };
}

/** The grammar for `response_format` json_object (any object) or json_schema (that schema). */
export function responseFormatGrammar(schema: unknown | null, limits?: GrammarLimits): GNode {
  return schemaGrammar(schema ?? { type: 'object' }, limits);
}
