/**
 * The agent loop: the model answers; its tool calls (grammar-constrained to valid JSON for the offered
 * tools' schemas when the model has a tokenizer) are checked against the policy, run, and their results —
 * text and images — go back as `role: 'tool'` messages; until the model answers without a call or
 * `maxSteps` turns have been taken.
 *
 * Safety, in order, for every call: the block must parse and match its tool's schema; the tool must be
 * registered; the frozen policy decides allow / confirm / deny from the tool and the taint of the call's
 * arguments (taint.ts); `confirm` runs the call only when the confirmer returns exactly `true`. Refused
 * calls are reported back to the model as refused. Nothing in the loop fetches anything: image URLs in
 * model output stay text, and the model is never given an image fetcher.
 *
 * @example
 * const r = await runAgent({ model, prompt: 'Click the red circle', images: ['shapes.png'],
 *   tools: new ToolRegistry(imageTools()), policy: createPolicy(), maxSteps: 4,
 *   onEvent: (e) => e.type === 'tool_call' && console.log(e.call.name, e.call.raw) });
 * console.log(r.answer, r.images.length);
 */
import { InputError } from '../errors.ts';
import { decodeImage, parseDataUrl, checkImage, type RGBImage } from '../image/index.ts';
import { VisionLanguageModel, type ChatOptions, type ContentPart, type ImageInput, type Message } from '../runtime/vlm.ts';
import type { GenerationEvent } from '../runtime/generate.ts';
import { Sampler, type SamplerOptions } from '../runtime/sampler.ts';
import { tokenizeConversation, type ConvMessage } from '../runtime/conversation.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { ConstrainedSampler, TokenTexts, toolCallGrammar } from '../runtime/constrain.ts';
import type { GrammarLimits } from '../runtime/grammar.ts';
import { splitToolCalls, type ProposedCall } from './calls.ts';
import { decide, isPolicy, mayRun, type Decision, type Policy } from './policy.ts';
import { TRUSTED, describeTaint, isTainted, join, taintOf, type Taint } from './taint.ts';
import { openAITools, text, toolSpecs, type AgentTool, type ToolContent, type ToolRegistry, type ToolResult } from './tools.ts';

/** What the loop needs of a model: VisionLanguageModel, or a scripted stand-in for tests. */
export interface AgentModel {
  chat(messages: readonly Message[], opts: ChatOptions): AsyncIterable<GenerationEvent>;
  /** With a tokenizer, tool calls are grammar-constrained. */
  readonly tokenizer?: Tokenizer;
}

/** Shown to the confirmer: the call and why it needs a person's yes. */
export interface ConfirmRequest {
  readonly name: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly description: string;
  readonly readOnly: boolean;
  readonly taint: Taint;
  readonly reason: string;
}

export interface RunAgentOptions {
  readonly model: AgentModel;
  /** The conversation so far; or give `prompt` (+ `images`, `system`). */
  readonly messages?: readonly Message[];
  readonly prompt?: string;
  readonly images?: readonly ImageInput[];
  readonly system?: string;
  readonly tools: ToolRegistry;
  /** From createPolicy (frozen). Never changed by the run. */
  readonly policy: Policy;
  /** Most model turns. Default 8. */
  readonly maxSteps?: number;
  /** Asked for calls the policy marks 'confirm'; without it they are refused. Only `true` approves. */
  readonly confirm?: (call: ConfirmRequest) => Promise<boolean>;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: AgentEvent) => void;
  /** Default greedy. */
  readonly sampler?: SamplerOptions;
  /** Most tokens per turn. Default 512. */
  readonly maxTokens?: number;
  /** 'required' forces a call on the first turn (then 'auto', unless resetToolChoice is false). Default 'auto'. */
  readonly toolChoice?: 'auto' | 'required' | 'none';
  readonly resetToolChoice?: boolean;
  readonly grammar?: GrammarLimits;
}

export type CallStatus = 'ok' | 'error' | 'refused';

export interface CallRecord {
  readonly step: number;
  readonly id: string;
  readonly name: string;
  readonly raw: string;
  readonly arguments: Record<string, unknown> | null;
  readonly taint: Taint;
  readonly decision: Decision;
  readonly reason: string;
  /** for 'confirm': what the confirmer said (false when there is none) */
  readonly approved?: boolean;
  readonly status: CallStatus;
  /** what the model was told */
  readonly result: ToolResult;
}

export type StopReason = 'answer' | 'length' | 'max_steps' | 'context' | 'abort';

export interface AgentResult {
  /** The final answer as text (never fetched or rendered by the loop). */
  readonly answer: string;
  /** Untrusted when the answer was produced with untrusted content in context. */
  readonly answerTaint: Taint;
  readonly stopReason: StopReason;
  readonly steps: number;
  /** The whole conversation, tool messages included; `taints[i]` is the taint of `messages[i]`. */
  readonly messages: readonly Message[];
  readonly taints: readonly Taint[];
  readonly calls: readonly CallRecord[];
  /** Images the tools produced, in order. */
  readonly images: readonly RGBImage[];
}

export type AgentEvent =
  | { readonly type: 'step'; readonly step: number }
  | { readonly type: 'delta'; readonly step: number; readonly text: string }
  | { readonly type: 'assistant'; readonly step: number; readonly content: string; readonly calls: readonly ProposedCall[]; readonly taint: Taint }
  | { readonly type: 'tool_call'; readonly step: number; readonly call: ProposedCall; readonly decision: Decision; readonly reason: string; readonly taint: Taint }
  | { readonly type: 'tool_result'; readonly step: number; readonly record: CallRecord }
  | { readonly type: 'done'; readonly result: AgentResult };

const DEFAULT_SAMPLER: SamplerOptions = { temperature: 0 };

/** Run the agent loop (see the file comment). Throws InputError for bad options; tool failures never throw. */
export async function runAgent(opts: RunAgentOptions): Promise<AgentResult> {
  if (!isPolicy(opts.policy)) throw new InputError('runAgent: policy must come from createPolicy()');
  const policy = opts.policy;
  const maxSteps = opts.maxSteps ?? 8;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new InputError(`maxSteps must be an integer ≥ 1, got ${maxSteps}`);
  const signal = opts.signal ?? new AbortController().signal;
  const emit = (e: AgentEvent): void => opts.onEvent?.(e);
  const { messages, taints, images } = await initialConversation(opts);
  const offered = opts.tools.list().filter((t) => mayRun(policy, t));
  // descriptions written by third parties (MCP servers) are in every prompt: untrusted from the start
  const definitions = taintOf(...offered.flatMap((t) => (t.source ? [`tooldef:${t.source}`] : [])));
  const produced: RGBImage[] = [];
  const calls: CallRecord[] = [];
  let choice = offered.length ? (opts.toolChoice ?? 'auto') : 'none';
  let answer = '';
  let answerTaint: Taint = TRUSTED;
  let stopReason: StopReason = 'max_steps';
  let step = 0;

  while (step < maxSteps) {
    if (signal.aborted) {
      stopReason = 'abort';
      break;
    }
    step++;
    emit({ type: 'step', step });
    const context = join(definitions, ...taints);
    const turn = await modelTurn(opts, messages, choice === 'none' ? [] : offered, choice, signal, (t) => emit({ type: 'delta', step, text: t }));
    if (turn === 'context') {
      stopReason = 'context';
      break;
    }
    const { content, calls: proposed } = choice === 'none' ? { content: turn.text, calls: [] } : splitToolCalls(turn.text, opts.tools, `call_${step}`);
    answer = content;
    answerTaint = context; // everything in context may have shaped this text
    messages.push({
      role: 'assistant', content,
      ...(proposed.length ? { tool_calls: proposed.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.raw } })) } : {}),
    });
    taints.push(context);
    emit({ type: 'assistant', step, content, calls: proposed, taint: context });
    if (turn.finish === 'abort') {
      stopReason = 'abort';
      break;
    }
    if (!proposed.length) {
      stopReason = turn.finish === 'length' ? 'length' : 'answer';
      break;
    }
    for (const call of proposed) {
      const record = await handleCall(opts, policy, call, step, context, images, signal, emit);
      calls.push(record);
      const parts: ContentPart[] = record.result.content.map((c) => (c.type === 'text' ? c : { type: 'image', image: c.image }));
      for (const c of record.result.content)
        if (c.type === 'image') {
          images.push(c.image);
          produced.push(c.image);
        }
      messages.push({ role: 'tool', tool_call_id: call.id, name: call.name, content: parts });
      taints.push(join(context, taintOf(`tool:${call.name || '?'}#${call.id}`)));
      emit({ type: 'tool_result', step, record });
    }
    if (opts.resetToolChoice !== false && choice === 'required') choice = 'auto';
  }
  const result: AgentResult = { answer, answerTaint, stopReason, steps: step, messages, taints, calls, images: produced };
  emit({ type: 'done', result });
  return result;
}

/** The opening messages with their taints, and every image in them decoded. */
async function initialConversation(opts: RunAgentOptions): Promise<{ messages: Message[]; taints: Taint[]; images: RGBImage[] }> {
  let given: readonly Message[];
  if (opts.messages) {
    if (opts.prompt !== undefined || opts.images || opts.system !== undefined) throw new InputError('runAgent: give either messages or prompt/images/system, not both');
    given = opts.messages;
  } else {
    if (typeof opts.prompt !== 'string') throw new InputError('runAgent: give messages or a prompt');
    const parts: ContentPart[] = [...(opts.images ?? []).map((image): ContentPart => ({ type: 'image', image })), { type: 'text', text: opts.prompt }];
    given = [...(opts.system !== undefined ? [{ role: 'system' as const, content: opts.system }] : []), { role: 'user', content: parts }];
  }
  const messages: Message[] = [];
  const taints: Taint[] = [];
  const images: RGBImage[] = [];
  for (const [i, m] of given.entries()) {
    const sources: string[] = [];
    // assistant and tool messages handed in as history: their origin is unknown, so they are untrusted
    if (m.role === 'assistant' || m.role === 'tool') sources.push(`history:${m.role}#${i}`);
    let content = m.content;
    if (Array.isArray(content)) {
      content = await Promise.all(content.map(async (p, j): Promise<ContentPart> => {
        if (p.type === 'text') return p;
        sources.push(`image:message${i}.${j}`);
        return { type: 'image', image: await toRGB(p) };
      }));
      for (const p of content) if (p.type === 'image') images.push(p.image as RGBImage);
    }
    messages.push({ ...m, content });
    taints.push(taintOf(...sources));
  }
  return { messages, taints, images };
}

async function toRGB(part: Extract<ContentPart, { type: 'image' | 'image_url' }>): Promise<RGBImage> {
  if (part.type === 'image') {
    const img = part.image;
    if (typeof img === 'object' && 'width' in img) {
      checkImage(img);
      return img;
    }
    if (typeof img === 'string' && img.startsWith('data:')) return decodeImage(parseDataUrl(img).bytes);
    return decodeImage(img);
  }
  const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
  // the agent never fetches: only inline images are accepted
  if (typeof url !== 'string' || !url.startsWith('data:')) throw new InputError('agent: image_url parts must be data: URLs (the agent does not fetch URLs); pass a path or bytes as { type: "image" }');
  return decodeImage(parseDataUrl(url).bytes);
}

/** One assistant turn: its raw text and how it ended, or 'context' when the prompt leaves no room. */
async function modelTurn(opts: RunAgentOptions, messages: readonly Message[], offered: readonly AgentTool[], choice: 'auto' | 'required' | 'none',
  signal: AbortSignal, onText: (t: string) => void): Promise<{ text: string; finish: 'stop' | 'length' | 'abort' } | 'context'> {
  const model = opts.model;
  const tools = offered.length ? openAITools(offered) : undefined;
  let maxTokens = opts.maxTokens ?? 512;
  if (model instanceof VisionLanguageModel) {
    const room = model.lm.config.context_length - promptTokens(model, messages, tools);
    if (room < 1) return 'context';
    maxTokens = Math.min(maxTokens, room);
  }
  const samplerOpts = opts.sampler ?? DEFAULT_SAMPLER;
  const sampler = offered.length && choice !== 'none' && model.tokenizer
    ? new ConstrainedSampler(samplerOpts, toolCallGrammar(toolSpecs(offered), choice, true, opts.grammar), TokenTexts.of(model.tokenizer))
    : new Sampler(samplerOpts);
  let text = '';
  for await (const e of model.chat(messages, { maxTokens, sampler, signal, maxImages: 256, ...(tools ? { tools } : {}) })) {
    text += e.text;
    if (e.text) onText(e.text);
    if (e.type === 'done') return { text, finish: e.finishReason };
  }
  return { text, finish: 'abort' };
}

function promptTokens(model: VisionLanguageModel, messages: readonly Message[], tools: unknown[] | undefined): number {
  const conv: ConvMessage[] = messages.map((m) => ({
    ...m, content: Array.isArray(m.content) ? m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const })) : m.content,
  }));
  return tokenizeConversation(conv, model.promptFormat(tools), { addGenerationPrompt: true }).ids.length;
}

/** Validate, decide, confirm and run one call. Never throws: every failure becomes the model's tool result. */
async function handleCall(opts: RunAgentOptions, policy: Policy, call: ProposedCall, step: number, taint: Taint, images: readonly RGBImage[],
  signal: AbortSignal, emit: (e: AgentEvent) => void): Promise<CallRecord> {
  const tool = opts.tools.get(call.name);
  const base = { step, id: call.id, name: call.name, raw: call.raw, arguments: call.arguments, taint };
  const refuse = (decision: Decision, reason: string, approved?: boolean): CallRecord =>
    ({ ...base, decision, reason, status: 'refused', ...(approved !== undefined ? { approved } : {}), result: { content: [text(`refused: ${reason}`)], isError: true } });
  if (call.problem || !call.arguments) {
    emit({ type: 'tool_call', step, call, decision: 'deny', reason: call.problem ?? 'unusable call', taint });
    return refuse('deny', call.problem ?? 'unusable call');
  }
  const verdict = decide(policy, tool, call.name, taint);
  emit({ type: 'tool_call', step, call, decision: verdict.decision, reason: verdict.reason, taint });
  if (verdict.decision === 'deny' || !tool) return refuse('deny', `${call.name} is not allowed (${verdict.reason})`);
  let approved: boolean | undefined;
  if (verdict.decision === 'confirm') {
    approved = false;
    if (opts.confirm) {
      try {
        approved = (await opts.confirm(Object.freeze({
          name: tool.name, arguments: Object.freeze({ ...call.arguments }), description: tool.description, readOnly: tool.readOnly, taint, reason: verdict.reason,
        }))) === true;
      } catch {
        approved = false;
      }
    }
    if (!approved) {
      const why = opts.confirm ? 'the user did not approve it' : 'it needs confirmation and no one can confirm';
      return refuse('confirm', `${call.name} was not run: ${why}${isTainted(taint) ? ` (arguments derive from ${describeTaint(taint)})` : ''}`, false);
    }
  }
  let result: ToolResult;
  let status: CallStatus = 'ok';
  try {
    result = checkResult(await tool.run({ ...call.arguments }, { images: [...images], signal }));
    if (result.isError) status = 'error';
  } catch (e) {
    status = 'error';
    result = { content: [text(`error: ${e instanceof Error ? e.message : String(e)}`)], isError: true };
  }
  return { ...base, decision: verdict.decision, reason: verdict.reason, ...(approved !== undefined ? { approved } : {}), status, result };
}

function checkResult(r: ToolResult): ToolResult {
  if (!r || !Array.isArray(r.content)) throw new Error('the tool returned no content');
  const content: ToolContent[] = r.content.map((c) => {
    if (c.type === 'text' && typeof c.text === 'string') return c;
    if (c.type === 'image') {
      checkImage(c.image, 'tool image');
      return c;
    }
    throw new Error(`the tool returned an unknown content type '${String((c as { type?: unknown }).type)}'`);
  });
  return { content, ...(r.isError ? { isError: true } : {}) };
}
