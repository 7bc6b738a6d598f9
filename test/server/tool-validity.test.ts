/**
 * Grammar-forced validity: with a random model at temperature 1.0, every tool call the server returns
 * parses and validates against its tool's JSON schema — checked by zod's JSON-schema reader, not by the grammar.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { z } from 'zod';
import { liveServer } from './fixture.ts';
import type { RunningServer } from '../../src/server/serve.ts';

let server: RunningServer;
before(async () => {
  server = await liveServer({ limits: { grammar: { maxStringLength: 24, maxItems: 4 }, maxActive: 8 } });
});
after(() => server.close());

// compact schemas: the tiny model's context is 512 tokens and the template lists the tool in the prompt
const TOOLS: Record<string, object> = {
  weather: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 14 } }, required: ['city', 'days'] },
  move: { type: 'object', properties: { x: { type: 'number', minimum: -1, maximum: 1 }, y: { type: 'number', exclusiveMinimum: 0 }, fast: { type: 'boolean' } }, required: ['x', 'y'] },
  tag: { type: 'object', properties: { ids: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 99 }, minItems: 1, maxItems: 3 }, note: { type: ['string', 'null'] } }, required: ['ids'] },
  box: { type: 'object', properties: { at: { type: 'object', properties: { r: { type: 'integer', minimum: 0, maximum: 9 }, c: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['r', 'c'] }, label: { type: 'string', minLength: 1, maxLength: 6 } }, required: ['at'] },
};

test('≥ 200 sampled tool calls at temperature 1.0: 100 % parse and validate', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const checks = Object.fromEntries(Object.entries(TOOLS).map(([k, s]) => [k, z.fromJSONSchema(s as never)]));
  const names = Object.keys(TOOLS);
  let calls = 0;
  let invalid = 0;
  let truncated = 0;
  let requests = 0;
  const one = async (i: number) => {
    const name = names[i % names.length]!;
    const r = await client.chat.completions.create({
      model: 'vista-tiny', temperature: 1.0, seed: 1000 + i, max_tokens: 160,
      tools: [{ type: 'function', function: { name, parameters: TOOLS[name] as Record<string, unknown> } }],
      tool_choice: i % 2 ? 'required' : { type: 'function', function: { name } },
      messages: [{ role: 'user', content: `call ${name}` }],
    });
    requests++;
    const ch = r.choices[0]!;
    if (ch.finish_reason !== 'tool_calls') truncated++;
    for (const c of ch.message.tool_calls ?? []) {
      calls++;
      assert.equal(c.type, 'function');
      if (c.type !== 'function') continue;
      assert.equal(c.function.name, name);
      let ok = false;
      try {
        ok = checks[name]!.safeParse(JSON.parse(c.function.arguments)).success;
      } catch {
        ok = false;
      }
      if (!ok) invalid++;
    }
  };
  const deadline = Date.now() + 240_000;
  for (let i = 0; calls < 200 && Date.now() < deadline && i < 400; i += 8) await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => one(i + k)));
  console.log(`tool validity: ${calls} calls from ${requests} requests, ${invalid} invalid, ${truncated} cut short by max_tokens`);
  assert.equal(invalid, 0);
  assert.ok(calls >= 200, `only ${calls} calls`);
});
