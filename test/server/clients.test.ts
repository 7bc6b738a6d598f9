/**
 * Clients nobody here wrote, against a live server on 127.0.0.1: the official `openai` package, the Vercel
 * AI SDK (`@ai-sdk/openai-compatible`) and the `ollama` package.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';
import { Ollama } from 'ollama';
import { z } from 'zod';
import { liveServer, tinyModel } from './fixture.ts';
import type { RunningServer } from '../../src/server/serve.ts';

let server: RunningServer;
let png: string;
let pngBytes: Uint8Array;
const API_KEY = 'sk-test-key';

before(async () => {
  const { files, pngDataUrl } = await tinyModel();
  png = pngDataUrl;
  pngBytes = readFileSync(files.png);
  server = await liveServer({ apiKey: API_KEY });
});
after(() => server.close());

const openai = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0 });

test('openai: plain completion with an image (data URL) and usage incl. image tokens', async () => {
  const r = await openai().chat.completions.create({
    model: 'vista-tiny', max_tokens: 8, seed: 3,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: png } }, { type: 'image_url', image_url: { url: png } }, { type: 'text', text: 'What is this?' }] }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.equal(typeof r.choices[0]!.message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0]!.finish_reason));
  const u = r.usage!;
  assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= 8);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  const details = u.prompt_tokens_details as { image_tokens: number };
  assert.ok(details.image_tokens > 0);
  assert.ok(u.prompt_tokens > details.image_tokens);
});

test('openai: same seed, same answer; models list', async () => {
  const ask = () => openai().chat.completions.create({ model: 'x', max_tokens: 6, seed: 42, temperature: 1, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal((await ask()).choices[0]!.message.content, (await ask()).choices[0]!.message.content);
  const models = await openai().models.list();
  assert.equal(models.data[0]!.id, 'vista-tiny');
});

test('openai: streaming with include_usage', async () => {
  const stream = await openai().chat.completions.create({
    model: 'vista-tiny', max_tokens: 6, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe' }, { type: 'image_url', image_url: { url: png } }] }],
  });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (ch?.delta.content) text += ch.delta.content;
    if (ch?.finish_reason) finish = ch.finish_reason;
  }
  assert.ok(finish === 'length' || finish === 'stop');
  assert.ok(usage && usage.completion_tokens >= 1);
  assert.equal(typeof text, 'string');
});

test('openai: a wrong API key is 401', async () => {
  const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e: unknown) => e instanceof OpenAI.APIError && e.status === 401);
});

const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 16 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer', minimum: 1, maximum: 14 },
  },
  required: ['city', 'days'],
} as const;

test('openai: tools → tool_calls whose arguments validate (required, named, streamed)', async () => {
  const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: WEATHER } }];
  const check = z.fromJSONSchema(WEATHER as never);
  const r = await openai().chat.completions.create({ model: 'vista-tiny', max_tokens: 200, temperature: 1, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  const msg = r.choices[0]!.message;
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  assert.ok(msg.tool_calls?.length);
  for (const c of msg.tool_calls!) {
    assert.equal(c.type, 'function');
    if (c.type === 'function') assert.ok(check.safeParse(JSON.parse(c.function.arguments)).success, c.function.arguments);
  }
  const named = await openai().chat.completions.create({ model: 'vista-tiny', max_tokens: 200, temperature: 1, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: [{ role: 'user', content: 'Weather?' }] });
  assert.equal(named.choices[0]!.finish_reason, 'tool_calls');

  const stream = await openai().chat.completions.create({ model: 'vista-tiny', max_tokens: 200, temperature: 1, stream: true, tools, tool_choice: 'required', messages: [{ role: 'user', content: 'Weather?' }] });
  const args: string[] = [];
  let finish = '';
  for await (const chunk of stream) {
    for (const t of chunk.choices[0]?.delta.tool_calls ?? []) args[t.index] = (args[t.index] ?? '') + (t.function?.arguments ?? '');
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.ok(args.length >= 1);
  for (const a of args) assert.ok(check.safeParse(JSON.parse(a)).success, a);

  // a tool result carrying an image goes back in
  const follow = await openai().chat.completions.create({
    model: 'vista-tiny', max_tokens: 4, tools,
    messages: [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":1}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'radar:' }, { type: 'image_url', image_url: { url: png } } as never] },
    ],
  });
  assert.equal((follow.usage!.prompt_tokens_details as { images: number }).images, 1);
});

test('openai: response_format json_schema gives JSON that validates', async () => {
  const schema = { type: 'object', properties: { colour: { enum: ['red', 'green'] }, count: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['colour', 'count'] };
  const r = await openai().chat.completions.create({ model: 'vista-tiny', max_tokens: 100, temperature: 1, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } }, messages: [{ role: 'user', content: 'json' }] });
  assert.ok(z.fromJSONSchema(schema as never).safeParse(JSON.parse(r.choices[0]!.message.content!)).success);
});

test('Vercel AI SDK (openai-compatible): generateText and streamText with an image', async () => {
  const provider = createOpenAICompatible({ name: 'vista', baseURL: `${server.url}/v1`, apiKey: API_KEY, includeUsage: true });
  const g = await generateText({ model: provider('vista-tiny'), prompt: 'Say hi', maxOutputTokens: 6, maxRetries: 0 });
  assert.equal(typeof g.text, 'string');
  assert.ok((g.usage.outputTokens ?? 0) >= 1);
  const s = streamText({
    model: provider('vista-tiny'), maxOutputTokens: 6, maxRetries: 0,
    messages: [{ role: 'user', content: [{ type: 'image', image: pngBytes, mediaType: 'image/png' }, { type: 'text', text: 'What colour?' }] }],
  });
  let text = '';
  for await (const t of s.textStream) text += t;
  assert.equal(text, await s.text);
  assert.ok(['stop', 'length'].includes(await s.finishReason));
  assert.ok(((await s.usage).inputTokens ?? 0) > 0);
});

test('ollama client: chat with images, and streaming', async () => {
  const o = new Ollama({ host: server.url, headers: { Authorization: `Bearer ${API_KEY}` } });
  const r = await o.chat({ model: 'vista-tiny', messages: [{ role: 'user', content: 'What is this?', images: [pngBytes] }], options: { num_predict: 6, seed: 1 } });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.done, true);
  assert.ok(r.eval_count >= 1 && r.prompt_eval_count > 0);
  const stream = await o.chat({ model: 'vista-tiny', messages: [{ role: 'user', content: 'hi', images: [pngBytes] }], options: { num_predict: 6 }, stream: true });
  let parts = 0;
  let last: { done: boolean; eval_count?: number } | null = null;
  for await (const p of stream) {
    parts++;
    last = p;
  }
  assert.ok(parts >= 1 && last?.done === true && (last.eval_count ?? 0) >= 1);
  const tags = await o.list();
  assert.equal(tags.models[0]!.name, 'vista-tiny');
});
