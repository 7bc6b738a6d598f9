/** Ollama wire format: `POST /api/chat` (JSON or NDJSON stream, base64 `images` per message) and `GET /api/tags`. */
import type { Context } from 'hono';
import { OllamaChatRequest } from './schema.ts';
import { doneEvent, eventsFrom, runCompletion, type CompletionEvent, type CompletionRequest } from './completion.ts';
import type { WireMessage, WirePart } from './images.ts';
import { errorResponse } from './errors.ts';
import { ndjsonStream, readJson } from './http.ts';
import type { RouteContext } from './openai.ts';

export function fromOllama(body: OllamaChatRequest, maxTokens: number): CompletionRequest {
  const messages: WireMessage[] = body.messages.map((m) => {
    const images = (m.images ?? []).map((b64): WirePart => ({ type: 'image', image: { base64: b64 } }));
    const text = m.content ?? '';
    return {
      role: m.role,
      content: images.length ? [...images, ...(text ? [{ type: 'text' as const, text }] : [])] : text,
      ...(m.tool_calls ? { tool_calls: m.tool_calls.map((t) => ({ type: 'function', function: t.function })) } : {}),
      ...(m.tool_name ? { name: m.tool_name } : {}),
    };
  });
  const o = body.options ?? {};
  const n = o.num_predict ?? -1;
  const format = body.format;
  return {
    messages,
    maxTokens: n > 0 ? Math.min(n, maxTokens) : maxTokens,
    sampler: {
      temperature: o.temperature ?? 0.8, topK: o.top_k ?? 40, topP: o.top_p ?? 0.9, minP: o.min_p ?? 0,
      repetitionPenalty: o.repeat_penalty ?? 1, ...(o.seed != null ? { seed: o.seed >>> 0 } : {}),
    },
    stop: (o.stop ?? []).filter((s) => s.length > 0),
    tools: body.tools ?? [],
    toolChoice: 'auto',
    parallelToolCalls: true,
    json: format === 'json' ? { schema: null } : format ? { schema: format } : null,
  };
}

export async function ollamaChat(c: Context, rc: RouteContext): Promise<Response> {
  const body = OllamaChatRequest.parse(await readJson(c));
  const events = runCompletion(rc, fromOllama(body, rc.maxTokens), c.req.raw.signal);
  const t0 = process.hrtime.bigint();
  const first = await events.next();
  const head = () => ({ model: rc.modelName, created_at: new Date().toISOString() });
  const final = (ev: Extract<CompletionEvent, { type: 'done' }>, content: string) => ({
    ...head(),
    message: {
      role: 'assistant', content,
      ...(ev.toolCalls.length ? { tool_calls: ev.toolCalls.map((t) => ({ function: { name: t.name, arguments: JSON.parse(t.arguments) } })) } : {}),
    },
    done_reason: ev.finishReason === 'length' ? 'length' : 'stop', done: true,
    total_duration: Number(process.hrtime.bigint() - t0), load_duration: 0,
    prompt_eval_count: ev.usage.promptTokens, eval_count: ev.usage.completionTokens,
  });

  if (body.stream === false) {
    const done = await doneEvent(first, events);
    if (!done) return new Response(null, { status: 499 });
    return c.json(final(done, done.content));
  }
  return ndjsonStream(c, rc.log, async function* () {
    let streamed = '';
    try {
      for await (const ev of eventsFrom(first, events)) {
        if (ev.type === 'delta') {
          streamed += ev.text;
          if (ev.text) yield { ...head(), message: { role: 'assistant', content: ev.text }, done: false };
        } else yield final(ev, ev.content.slice(streamed.length));
      }
    } catch (e) {
      yield { error: errorResponse(e).body.error.message };
    }
  }, () => void events.return(undefined));
}

export function ollamaTags(rc: RouteContext): object {
  return {
    models: [{
      name: rc.modelName, model: rc.modelName, modified_at: new Date(0).toISOString(), size: 0, digest: '',
      details: { format: 'gguf', family: 'llama', families: ['llama', 'clip'], parameter_size: '', quantization_level: '' },
    }],
  };
}
