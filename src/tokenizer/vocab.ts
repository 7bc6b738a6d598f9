/**
 * The vocabulary as llama.cpp loads it (src/llama-vocab.cpp `llama_vocab::impl::load`), built from a plain
 * object of GGUF tokenizer keys so it does not depend on the file format.
 */
import { ModelFormatError } from '../errors.ts';
import { preTokenizerFor, type PreTokenizer } from './pretokenize.ts';
import { utf8Encode } from './unicode.ts';

/** `tokenizer.ggml.token_type` values (llama.h `llama_token_type`). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** Token attribute bits (llama.h `llama_token_attr`). */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
} as const;

const TYPE_TO_ATTR: Record<number, number> = {
  [TokenType.UNKNOWN]: Attr.UNKNOWN,
  [TokenType.UNUSED]: Attr.UNUSED,
  [TokenType.NORMAL]: Attr.NORMAL,
  [TokenType.CONTROL]: Attr.CONTROL,
  [TokenType.USER_DEFINED]: Attr.USER_DEFINED,
  [TokenType.BYTE]: Attr.BYTE,
};

/** Texts llama.cpp treats as end-of-generation and forces to CONTROL (llama-vocab.cpp, EOG detection). */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>',
  '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
]);
/** Texts llama.cpp takes as the end-of-turn token when `tokenizer.ggml.eot_token_id` is absent. */
const EOT_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>',
  '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>',
]);
/** Fill-in-the-middle texts llama.cpp also forces to CONTROL when their ids are not given. */
const FIM_TEXTS = [
  ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'],
  ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'],
  ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'],
  ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'],
  ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'],
  ['<|file_sep|>'],
];
const FORCED_USER_DEFINED = new Set(['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']);

export interface Vocab {
  readonly model: 'llama' | 'gpt2';
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  readonly attrs: Uint16Array;
  readonly tokenToId: ReadonlyMap<string, number>;
  /** BPE merge ranks keyed `left + '\0' + right` (first occurrence wins). */
  readonly mergeRanks: ReadonlyMap<string, number>;
  readonly pre: PreTokenizer | undefined;
  /** -1 when absent. */
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  readonly eotId: number;
  readonly eogIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  /** CONTROL / USER_DEFINED / UNKNOWN ids, longest text (in UTF-8 bytes) first — the partition order. */
  readonly specialTokens: readonly number[];
  readonly chatTemplate: string | undefined;
}

function fail(key: string, expected: string, got: unknown): never {
  const shown = Array.isArray(got) ? `array of ${got.length}` : JSON.stringify(got)?.slice(0, 60);
  throw new ModelFormatError(`tokenizer metadata '${key}': expected ${expected}, got ${shown ?? typeof got}`);
}

function optInt(meta: Record<string, unknown>, key: string): number | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) fail(key, 'an integer', v);
  return n;
}

function optBool(meta: Record<string, unknown>, key: string): boolean | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(key, 'a boolean', v);
  return v;
}

function numArray(meta: Record<string, unknown>, key: string, n: number): number[] | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length < n) fail(key, `an array of at least ${n} numbers`, v);
  return v.map((x) => (typeof x === 'bigint' ? Number(x) : (x as number)));
}

/** Builds the vocabulary from GGUF tokenizer metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`). */
export function vocabFromMetadata(meta: Record<string, unknown>): Vocab {
  const model = meta['tokenizer.ggml.model'];
  if (model !== 'llama' && model !== 'gpt2') fail('tokenizer.ggml.model', "'llama' or 'gpt2'", model);
  const rawTokens = meta['tokenizer.ggml.tokens'];
  if (!Array.isArray(rawTokens) || rawTokens.length === 0 || rawTokens.some((t) => typeof t !== 'string')) {
    fail('tokenizer.ggml.tokens', 'a non-empty array of strings', rawTokens);
  }
  const n = rawTokens.length;
  const tokens = (rawTokens as string[]).map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
  const scores = new Float32Array(n);
  scores.set(numArray(meta, 'tokenizer.ggml.scores', n)?.slice(0, n) ?? []);
  const types = numArray(meta, 'tokenizer.ggml.token_type', n);
  const attrs = new Uint16Array(n);
  const tokenToId = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    tokenToId.set(tokens[i]!, i); // duplicates: the last id wins, as in llama.cpp
    attrs[i] = types ? (TYPE_TO_ATTR[types[i]!] ?? Attr.UNDEFINED) : Attr.NORMAL;
  }

  const mergeRanks = new Map<string, number>();
  let pre: PreTokenizer | undefined;
  if (model === 'gpt2') {
    const merges = meta['tokenizer.ggml.merges'];
    if (!Array.isArray(merges) || merges.some((m) => typeof m !== 'string')) {
      fail('tokenizer.ggml.merges', 'an array of strings (required for gpt2)', merges);
    }
    (merges as string[]).forEach((m, rank) => {
      const sp = m.indexOf(' ', 1);
      const key = sp < 0 ? '\0' : `${m.slice(0, sp)}\0${m.slice(sp + 1)}`;
      if (!mergeRanks.has(key)) mergeRanks.set(key, rank);
    });
    const preName = meta['tokenizer.ggml.pre'];
    if (preName !== undefined && typeof preName !== 'string') fail('tokenizer.ggml.pre', 'a string', preName);
    pre = preTokenizerFor(preName);
  }

  const spm = model === 'llama';
  const inRange = (id: number) => (id >= 0 && id < n ? id : -1);
  const special = (key: string, def: number) => {
    const v = optInt(meta, `tokenizer.ggml.${key}`);
    return v !== undefined && v >= 0 && v < n ? v : inRange(def);
  };
  const bosId = special('bos_token_id', spm ? 1 : 11);
  const eosId = special('eos_token_id', spm ? 2 : 11);
  const unkId = special('unknown_token_id', spm ? 0 : -1);
  const padId = special('padding_token_id', -1);
  let eotId = special('eot_token_id', -1);
  const addBos = optBool(meta, 'tokenizer.ggml.add_bos_token') ?? (spm ? true : (pre?.addBos ?? false));
  const addEos = optBool(meta, 'tokenizer.ggml.add_eos_token') ?? false;
  const addSpacePrefix = optBool(meta, 'tokenizer.ggml.add_space_prefix') ?? spm;

  // Attribute fix-ups llama.cpp applies by token text.
  const eogIds = new Set<number>();
  for (const [text, id] of tokenToId) {
    if (EOG_TEXTS.has(text)) {
      eogIds.add(id);
      attrs[id]! |= Attr.CONTROL;
      if (eotId < 0 && EOT_TEXTS.has(text)) eotId = id;
    }
    if (FORCED_USER_DEFINED.has(text)) attrs[id] = Attr.USER_DEFINED;
  }
  for (const group of FIM_TEXTS) {
    const id = group.map((t) => tokenToId.get(t)).find((x) => x !== undefined);
    if (id !== undefined) attrs[id]! |= Attr.CONTROL;
  }
  for (const id of [eosId, eotId]) if (id >= 0) eogIds.add(id);

  const specialTokens: number[] = [];
  for (let i = 0; i < n; i++) {
    if (attrs[i]! & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) specialTokens.push(i);
  }
  const byteLen = specialTokens.map((id) => utf8Encode(tokens[id]!).length);
  const order = specialTokens.map((_, i) => i).sort((a, b) => byteLen[b]! - byteLen[a]! || a - b);

  const chatTemplate = meta['tokenizer.chat_template'];
  return {
    model,
    tokens,
    scores,
    attrs,
    tokenToId,
    mergeRanks,
    pre,
    bosId,
    eosId,
    unkId,
    padId,
    eotId,
    eogIds,
    addBos,
    addEos,
    addSpacePrefix,
    cleanSpaces: spm ? false : (pre?.cleanSpaces ?? true),
    specialTokens: order.map((i) => specialTokens[i]!),
    chatTemplate: typeof chatTemplate === 'string' ? chatTemplate : undefined,
  };
}
