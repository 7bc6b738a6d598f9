/**
 * Conversation → token ids with image slots, shared by inference (VisionLanguageModel.prepare) and
 * training (labels on assistant tokens), so both see exactly the same sequence.
 *
 * Every text a person or tool wrote is replaced by a marker before the chat template is rendered; the
 * template's own markup is tokenized with special-token parsing, the marked texts without it, and images
 * become `imageTokens` slots wrapped by the projector's wrapper text.
 */
import { InputError } from '../errors.ts';
import { renderChatTemplate, type ChatContentPart, type ChatMessage } from '../tokenizer/chat-template.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

/** Content as the template and the tokenizer see it: text, or an image slot. */
export type ConvPart = { type: 'text'; text: string } | { type: 'image' };

export interface ConvMessage {
  role: string;
  content: string | ConvPart[] | null;
  tool_calls?: unknown[];
  [k: string]: unknown;
}

export interface PromptFormat {
  tokenizer: Tokenizer;
  template: string;
  /** text around each image's slots */
  wrapper: { before: string; after: string };
  /** embedding positions per image */
  imageTokens: number;
  tools?: unknown[];
}

/** A piece of the rendered prompt. */
type Piece =
  | { kind: 'text'; text: string; parseSpecial: boolean; /** index of the message whose content this is, or -1 for template text */ msg: number }
  | { kind: 'image'; index: number };

const MARK = /\uE000([TI])(\d+)\uE001/g;

/** Render `messages` with the template and split the result into template text, message texts and images. */
export function renderPieces(messages: readonly ConvMessage[], f: PromptFormat, addGenerationPrompt: boolean): { pieces: Piece[]; text: string; addBos: boolean } {
  const texts: { text: string; msg: number }[] = [];
  let images = 0;
  const marked: ChatMessage[] = messages.map((m, mi) => {
    const mark = (t: string): string => `\uE000T${texts.push({ text: t, msg: mi }) - 1}\uE001`;
    let content: ChatMessage['content'];
    if (typeof m.content === 'string') content = mark(m.content);
    else if (Array.isArray(m.content))
      content = m.content.map((p): ChatContentPart => (p.type === 'text' ? { type: 'text', text: mark(p.text) } : { type: 'text', text: `\uE000I${images++}\uE001` }));
    else content = m.content ?? null;
    return { ...m, content };
  });
  const tok = f.tokenizer;
  const bos = tok.bosId >= 0 ? tok.tokenToPiece(tok.bosId) : '';
  const rendered = renderChatTemplate(f.template, marked, {
    addGenerationPrompt, tools: f.tools, bosToken: bos, eosToken: tok.eosId >= 0 ? tok.tokenToPiece(tok.eosId) : '',
  });
  const pieces: Piece[] = [];
  let at = 0;
  for (const m of rendered.matchAll(MARK)) {
    pieces.push({ kind: 'text', text: rendered.slice(at, m.index), parseSpecial: true, msg: -1 });
    if (m[1] === 'T') {
      const t = texts[Number(m[2])]!;
      pieces.push({ kind: 'text', text: t.text, parseSpecial: false, msg: t.msg });
    } else {
      pieces.push({ kind: 'text', text: f.wrapper.before, parseSpecial: true, msg: -1 });
      pieces.push({ kind: 'image', index: Number(m[2]) });
      pieces.push({ kind: 'text', text: f.wrapper.after, parseSpecial: true, msg: -1 });
    }
    at = m.index! + m[0].length;
  }
  pieces.push({ kind: 'text', text: rendered.slice(at), parseSpecial: true, msg: -1 });
  const text = rendered.replace(MARK, (_, k: string, i: string) => (k === 'T' ? texts[Number(i)]!.text : '<image>'));
  // a template that prints BOS itself must not get a second one
  return { pieces, text, addBos: !(bos && rendered.startsWith(bos)) };
}

/** Token ids where `IMAGE_SLOT` marks each image embedding position. */
export const IMAGE_SLOT = -1;

export interface TokenizedConversation {
  /** token ids, IMAGE_SLOT at image embedding positions */
  ids: number[];
  /** start position of each image's slots, in order */
  imageStarts: number[];
  /** for training: per position, 1 if the token is part of an assistant answer (or the end-of-turn token after it) */
  assistant: Uint8Array;
  text: string;
}

/**
 * Tokenize a conversation. Text between images is tokenized as one string (template markup with special
 * parsing, message text without), exactly as inference does. With `withLabels`, every assistant message's
 * tokens (and the end-of-generation token that closes its turn) are marked; the marking is checked by
 * re-tokenizing growing prefixes — a conversation whose tokens do not line up with its turns is an error
 * naming `sampleId`, never a silently unlabelled sample.
 */
export function tokenizeConversation(messages: readonly ConvMessage[], f: PromptFormat, opts: { addGenerationPrompt: boolean; withLabels?: boolean; sampleId?: string }): TokenizedConversation {
  const { pieces, text, addBos } = renderPieces(messages, f, opts.addGenerationPrompt);
  const tok = f.tokenizer;
  const ids: number[] = [];
  const assistant: number[] = [];
  const imageStarts: number[] = [];
  let first = true;
  let run: Piece[] = [];
  const flush = (): void => {
    if (!run.length) return;
    const segs = run.map((p) => ({ text: (p as { text: string }).text, parseSpecial: (p as { parseSpecial: boolean }).parseSpecial }));
    const all = tok.encodeSegments(segs, { addBos: first && addBos });
    let labels: Uint8Array = new Uint8Array(all.length);
    if (opts.withLabels) labels = labelRun(run, all, f, first && addBos, messages, opts.sampleId ?? '?');
    first = false;
    ids.push(...all);
    assistant.push(...labels);
    run = [];
  };
  for (const p of pieces) {
    if (p.kind === 'image') {
      flush();
      imageStarts.push(ids.length);
      for (let i = 0; i < f.imageTokens; i++) {
        ids.push(IMAGE_SLOT);
        assistant.push(0);
      }
      first = false;
    } else if (p.text !== '') run.push(p);
  }
  flush();
  return { ids, imageStarts, assistant: Uint8Array.from(assistant), text };
}

/** Mark the tokens of assistant texts inside one run of text pieces (see tokenizeConversation). */
function labelRun(run: Piece[], all: number[], f: PromptFormat, addBos: boolean, messages: readonly ConvMessage[], sampleId: string): Uint8Array {
  const tok = f.tokenizer;
  const labels = new Uint8Array(all.length);
  const segs: { text: string; parseSpecial: boolean }[] = [];
  let prev = addBos ? 1 : 0;
  let labelNextEog = false;
  for (const p of run) {
    if (p.kind !== 'text') continue;
    segs.push({ text: p.text, parseSpecial: p.parseSpecial });
    const prefix = tok.encodeSegments(segs, { addBos });
    for (let i = 0; i < Math.min(prev, prefix.length); i++)
      if (prefix[i] !== all[i])
        throw new InputError(`sample ${sampleId}: tokenisation of the conversation does not line up with its turns at token ${i} ` +
          `(a turn boundary merges into one token); its labels cannot be placed`);
    if (prefix.length < prev) throw new InputError(`sample ${sampleId}: a turn boundary changed the tokenisation (prefix shrank from ${prev} to ${prefix.length} tokens)`);
    const isAssistant = p.msg >= 0 && messages[p.msg]!.role === 'assistant';
    if (isAssistant) for (let i = prev; i < prefix.length; i++) labels[i] = 1;
    else if (labelNextEog && prefix.length > prev && tok.eogIds.has(all[prev]!)) labels[prev] = 1;
    labelNextEog = isAssistant;
    prev = prefix.length;
  }
  if (prev !== all.length) throw new InputError(`sample ${sampleId}: ${all.length} tokens but the turns add up to ${prev}`);
  return labels;
}
