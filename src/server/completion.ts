/**
 * One chat completion, whatever the wire format (OpenAI or Ollama): admission, images, the (constrained)
 * sampler, generation through the scheduler, content streaming that never leaks a tool call, and the
 * final split into content and validated tool calls.
 */
import { HttpError } from './errors.ts';
import type { VisionLanguageModel } from '../runtime/vlm.ts';
import { Sampler, type SamplerOptions } from '../runtime/sampler.ts';
import type { Scheduler } from './scheduler.ts';
import { resolveImages, type ImageLimits, type WireMessage } from './images.ts';
import { ConstrainedSampler, TokenTexts, TOOL_OPEN, parseToolCalls, responseFormatGrammar, toolCallGrammar, type ParsedCall, type ToolSpec } from '../runtime/constrain.ts';
import type { GNode, GrammarLimits } from '../runtime/grammar.ts';

export interface CompletionRequest {
  readonly messages: readonly WireMessage[];
  readonly maxTokens: number;
  readonly sampler: SamplerOptions;
  readonly stop: readonly string[];
  /** Tool definitions in OpenAI form (rendered by the chat template) and the parameters of each. */
  readonly tools: readonly { type: 'function'; function: { name: string; description?: string; parameters?: unknown } }[];
  readonly toolChoice: 'none' | 'auto' | 'required' | { name: string };
  readonly parallelToolCalls: boolean;
  /** response_format: null = text; { schema: null } = any JSON object. */
  readonly json: { schema: unknown } | null;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  images: number;
  imageTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export type CompletionEvent =
  | { readonly type: 'delta'; readonly text: string }
  | { readonly type: 'done'; readonly finishReason: FinishReason; readonly content: string; readonly toolCalls: readonly ParsedCall[]; readonly usage: Usage };

/**
 * The events of a completion whose first event was already awaited (so errors up to the prefill became
 * HTTP statuses before any byte was sent), followed by the rest.
 */
export async function* eventsFrom(first: IteratorResult<CompletionEvent, void>, events: AsyncGenerator<CompletionEvent, void, undefined>): AsyncGenerator<CompletionEvent, void, undefined> {
  for (let r = first; !r.done; r = await events.next()) yield r.value;
}

/** The final event of a completion, or null when it ended without one (the client went away). */
export async function doneEvent(first: IteratorResult<CompletionEvent, void>, events: AsyncGenerator<CompletionEvent, void, undefined>): Promise<Extract<CompletionEvent, { type: 'done' }> | null> {
  let done: Extract<CompletionEvent, { type: 'done' }> | null = null;
  for await (const ev of eventsFrom(first, events)) if (ev.type === 'done') done = ev;
  return done;
}

export interface CompletionContext {
  readonly model: VisionLanguageModel;
  readonly scheduler: Scheduler;
  readonly images: ImageLimits;
  readonly grammar: GrammarLimits;
  readonly timeoutMs: number;
}

/**
 * Run a completion. The first event arrives after the prompt is prefilled, so errors about the request
 * (images, context length, schemas) are thrown before a route commits to a status. `signal` is the
 * client's; the time limit is added here.
 */
export async function* runCompletion(ctx: CompletionContext, req: CompletionRequest, clientSignal: AbortSignal): AsyncGenerator<CompletionEvent, void, undefined> {
  const timeout = AbortSignal.timeout(ctx.timeoutMs);
  const signal = AbortSignal.any([clientSignal, timeout]);
  const ticket = ctx.scheduler.admit();
  try {
    const { messages, images } = await resolveImages(req.messages, ctx.images, signal);
    const tools: ToolSpec[] = req.tools.map((t) => ({ name: t.function.name, parameters: t.function.parameters ?? { type: 'object' } }));
    const toolMode: 'none' | 'auto' | 'required' = req.tools.length ? (typeof req.toolChoice === 'object' ? 'required' : req.toolChoice) : 'none';
    let callable = tools;
    if (typeof req.toolChoice === 'object') {
      const named = req.toolChoice.name;
      callable = tools.filter((t) => t.name === named);
      if (!callable.length) throw new HttpError(400, `tool_choice names '${named}', which is not in tools`, 'invalid_value', 'tool_choice');
    }
    if (toolMode === 'required' && !callable.length) throw new HttpError(400, 'tool_choice requires a tool call but no tools are given', 'invalid_value', 'tool_choice');
    let grammar: GNode | null = null;
    if (toolMode !== 'none') grammar = toolCallGrammar(callable, toolMode, req.parallelToolCalls, ctx.grammar);
    else if (req.json) grammar = responseFormatGrammar(req.json.schema, ctx.grammar);
    const sampler = grammar ? new ConstrainedSampler(req.sampler, grammar, TokenTexts.of(ctx.model.tokenizer)) : new Sampler(req.sampler);

    const gen = ctx.model.chat(messages, {
      maxTokens: req.maxTokens, sampler, signal, maxImages: ctx.images.maxImages,
      // stop strings could cut a constrained value short; they apply to free text only
      stopStrings: grammar && toolMode !== 'auto' ? [] : req.stop,
      ...(req.tools.length && req.toolChoice !== 'none' ? { tools: req.tools as unknown[] } : {}),
    });
    const imageTokens = images * ctx.model.imageTokensPerImage;
    let text = '';
    let sent = 0; // characters of `text` streamed as content
    let tokens = 0;
    for await (const ev of ctx.scheduler.run(ticket, gen, signal)) {
      text += ev.text;
      if (ev.type === 'token') tokens++;
      // stream content, holding back anything that is or may become a tool call
      const safe = toolMode === 'required' ? 0 : toolMode === 'auto' ? contentEnd(text) : text.length;
      if (safe > sent) {
        yield { type: 'delta', text: text.slice(sent, safe) };
        sent = safe;
      }
      if (ev.type === 'done') {
        const usage = { promptTokens: ev.stats.promptTokens, completionTokens: ev.stats.completionTokens, images, imageTokens };
        yield finish(text, toolMode, callable, ev.finishReason === 'stop' ? 'stop' : 'length', usage);
        return;
      }
    }
    if (clientSignal.aborted) return;
    if (timeout.aborted && tokens === 0) throw new HttpError(503, `request timed out after ${ctx.timeoutMs} ms before generation started`, 'timeout', null, { 'Retry-After': '1' });
    // time limit during generation: end as if max_tokens were reached
    yield finish(text, toolMode, callable, 'length', { promptTokens: 0, completionTokens: tokens, images, imageTokens });
  } finally {
    ctx.scheduler.release(ticket);
  }
}

/** Length of the prefix of `text` that is certainly content: before `<tool_call>` or a partial one at the end. */
function contentEnd(text: string): number {
  const at = text.indexOf(TOOL_OPEN);
  if (at >= 0) return at;
  for (let k = Math.min(TOOL_OPEN.length - 1, text.length); k > 0; k--) if (TOOL_OPEN.startsWith(text.slice(text.length - k))) return text.length - k;
  return text.length;
}

function finish(text: string, toolMode: 'none' | 'auto' | 'required', tools: readonly ToolSpec[], reason: 'stop' | 'length', usage: Usage): CompletionEvent {
  if (toolMode === 'none') return { type: 'done', finishReason: reason, content: text, toolCalls: [], usage };
  const { content, calls } = parseToolCalls(text, tools);
  // a call cut short by max_tokens is not returned; its text stays content (content always extends what was streamed)
  return { type: 'done', finishReason: calls.length ? 'tool_calls' : reason, content: calls.length ? content : text, toolCalls: calls, usage };
}
