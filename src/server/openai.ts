/**
 * OpenAI wire format: `POST /v1/chat/completions` (JSON or SSE chunks) and `GET /v1/models`.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { ChatCompletionRequest } from './schema.ts';
import { doneEvent, eventsFrom, runCompletion, type CompletionContext, type CompletionRequest, type Usage } from './completion.ts';
import type { WireMessage, WirePart } from './images.ts';
import type { ParsedCall } from '../runtime/constrain.ts';
import { errorResponse } from './errors.ts';
import { eventStream, readJson } from './http.ts';

export interface RouteContext extends CompletionContext {
  readonly modelName: string;
  readonly maxTokens: number;
  readonly log: (msg: string) => void;
}

const id = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;

/** OpenAI request → the server's completion request. */
export function fromOpenAI(body: ChatCompletionRequest, maxTokens: number): CompletionRequest {
  const messages: WireMessage[] = body.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: Array.isArray(m.content)
      ? m.content.map((p): WirePart => (p.type === 'text' ? p : { type: 'image', image: { url: typeof p.image_url === 'string' ? p.image_url : p.image_url.url } }))
      : (m.content ?? null),
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
    ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}),
  }));
  const rf = body.response_format;
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const tc = body.tool_choice ?? 'auto';
  return {
    messages,
    maxTokens: Math.min(body.max_completion_tokens ?? body.max_tokens ?? maxTokens, maxTokens),
    sampler: {
      temperature: body.temperature ?? 1, topP: body.top_p ?? 1, topK: body.top_k ?? 0, minP: body.min_p ?? 0,
      ...(body.seed != null ? { seed: body.seed >>> 0 } : {}),
      frequencyPenalty: body.frequency_penalty ?? 0, presencePenalty: body.presence_penalty ?? 0,
    },
    stop: stop.filter((s) => s.length > 0),
    tools: body.tools ?? [],
    toolChoice: typeof tc === 'string' ? tc : { name: tc.function.name },
    parallelToolCalls: body.parallel_tool_calls ?? true,
    json: rf?.type === 'json_object' ? { schema: null } : rf?.type === 'json_schema' ? { schema: rf.json_schema.schema ?? null } : null,
  };
}

const toolCalls = (calls: readonly ParsedCall[]) => calls.map((c) => ({ id: id('call_'), type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));

const usage = (u: Usage) => ({
  prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens,
  prompt_tokens_details: { cached_tokens: 0, image_tokens: u.imageTokens, images: u.images },
});

export async function chatCompletions(c: Context, rc: RouteContext): Promise<Response> {
  const body = ChatCompletionRequest.parse(await readJson(c));
  const req = fromOpenAI(body, rc.maxTokens);
  const events = runCompletion(rc, req, c.req.raw.signal);
  const first = await events.next(); // errors up to the prefill become statuses here
  const created = Math.floor(Date.now() / 1000);
  const cid = id('chatcmpl-');
  const base = { id: cid, created, model: rc.modelName, system_fingerprint: 'vista' };

  if (!body.stream) {
    const done = await doneEvent(first, events);
    if (!done) return new Response(null, { status: 499 }); // client went away
    const message = {
      role: 'assistant', content: done.toolCalls.length && !done.content ? null : done.content, refusal: null,
      ...(done.toolCalls.length ? { tool_calls: toolCalls(done.toolCalls) } : {}),
    };
    return c.json({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: done.finishReason, logprobs: null }], usage: usage(done.usage) });
  }

  const chunk = (delta: object, finish: string | null) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
  const includeUsage = body.stream_options?.include_usage === true;
  return eventStream(c, rc.log, async function* () {
    yield chunk({ role: 'assistant', content: '' }, null);
    let streamed = '';
    try {
      for await (const ev of eventsFrom(first, events)) {
        if (ev.type === 'delta') {
          streamed += ev.text;
          if (ev.text) yield chunk({ content: ev.text }, null);
          continue;
        }
        if (ev.content.length > streamed.length) yield chunk({ content: ev.content.slice(streamed.length) }, null);
        if (ev.toolCalls.length)
          yield chunk({ tool_calls: toolCalls(ev.toolCalls).map((t, index) => ({ index, ...t })) }, null);
        yield chunk({}, ev.finishReason);
        if (includeUsage) yield { ...base, object: 'chat.completion.chunk', choices: [], usage: usage(ev.usage) };
      }
    } catch (e) {
      yield errorResponse(e).body; // headers are sent: the error travels as an event
      rc.log(`stream error: ${(e as Error).stack ?? e}`);
    }
  }, () => void events.return(undefined));
}

export function listModels(rc: RouteContext): object {
  return { object: 'list', data: [{ id: rc.modelName, object: 'model', created: 0, owned_by: 'vista' }] };
}
