import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { GrammarMatcher, schemaGrammar, type GNode } from '../../src/runtime/grammar.ts';
import { parseToolCalls, toolCallGrammar } from '../../src/runtime/constrain.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { InputError } from '../../src/errors.ts';

const ALPHABET = Array.from(' {}[]:,"\\-.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_<>/é\n\tu');

/** Random walk through the grammar: each step a random allowed character, stopping at random once complete. */
function walk(g: GNode, rng: Rng, maxChars = 4000): string {
  const m = new GrammarMatcher(g);
  for (let i = 0; i < maxChars; i++) {
    if (m.accepting() && rng.uniform() < 0.15) break;
    const ok = ALPHABET.filter((c) => m.allows(c));
    if (!ok.length) break;
    assert.ok(m.advance(ok[Math.floor(rng.uniform() * ok.length)]!));
  }
  assert.ok(m.accepting(), `walk ended incomplete: ${m.text}`);
  return m.text;
}

const SCHEMAS: unknown[] = [
  { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 14 } }, required: ['city', 'days'] },
  { type: 'object', properties: { x: { type: 'number', minimum: -2.5, maximum: 3 }, flag: { type: 'boolean' }, tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 3, minItems: 1 } }, required: ['x', 'tags'] },
  { type: 'object', properties: { inner: { type: 'object', properties: { a: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 100 }, b: { type: ['string', 'null'], maxLength: 4 } }, required: ['a', 'b'] }, n: { const: 7 } }, required: ['inner'] },
  { type: 'object' },
  { type: 'object', properties: { v: { anyOf: [{ type: 'integer', minimum: 1000 }, { type: 'string', minLength: 2, maxLength: 3 }] }, r: { $ref: '#/$defs/p' } }, required: ['v', 'r'], $defs: { p: { type: 'array', items: { type: 'integer', minimum: -5, maximum: -3 }, maxItems: 4 } } },
];

test('random walks through schema grammars give JSON that validates', () => {
  const rng = new Rng(1);
  for (const [k, schema] of SCHEMAS.entries()) {
    const g = schemaGrammar(schema, { maxStringLength: 16, maxItems: 4, maxKeys: 4 });
    const check = z.fromJSONSchema(schema as never);
    for (let i = 0; i < 60; i++) {
      const text = walk(g, rng);
      const v = JSON.parse(text);
      assert.ok(check.safeParse(v).success, `schema ${k}: ${text}`);
    }
  }
});

test('matcher: allows, advance, accepting', () => {
  const m = new GrammarMatcher(schemaGrammar({ type: 'object', properties: { n: { type: 'integer', maximum: 50 } }, required: ['n'] }));
  assert.ok(m.allows('{"n": 4'));
  assert.ok(!m.allows('{"n": 5000'));
  assert.ok(!m.allows('{"m"'));
  assert.ok(!m.allows('{}'));
  assert.ok(!m.allows('{"n":  4'), 'at most one space');
  assert.ok(m.advance('{"n": 42}'));
  assert.ok(m.accepting());
  assert.ok(!m.allows(' '));
});

test('numbers: ranges, leading zeros, fractions', () => {
  const m = (s: unknown) => new GrammarMatcher(schemaGrammar(s));
  assert.ok(!m({ type: 'integer' }).allows('01'));
  assert.ok(!m({ type: 'integer' }).allows('1.5'));
  assert.ok(m({ type: 'number' }).allows('-0.5'));
  assert.ok(!m({ type: 'integer', minimum: 0 }).allows('-'));
  assert.ok(m({ type: 'integer', minimum: 10, maximum: 20 }).allows('1'));
  assert.ok(!m({ type: 'integer', minimum: 10, maximum: 20 }).allows('3'));
  const x = m({ type: 'integer', minimum: 10, maximum: 20 });
  x.advance('1');
  assert.ok(!x.accepting());
});

test('bad schemas are InputErrors', () => {
  for (const s of [{ type: 'frob' }, { type: 'string', minLength: 5, maxLength: 2 }, { type: 'integer', minimum: 3, maximum: 2 }, { $ref: 'http://x' }, { enum: [] }, false, 3,
    { type: 'object', properties: {}, required: ['a'] }])
    assert.throws(() => schemaGrammar(s), InputError, JSON.stringify(s));
});

test('tool-call grammar: required calls parse and validate; auto allows prose first', () => {
  const tools = [
    { name: 'get_weather', parameters: SCHEMAS[0] },
    { name: 'get', parameters: { type: 'object', properties: { id: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['id'] } },
  ];
  const rng = new Rng(2);
  for (let i = 0; i < 50; i++) {
    const text = walk(toolCallGrammar(tools, 'required', true, { maxStringLength: 10 }), rng);
    const { calls, content } = parseToolCalls(text, tools);
    assert.equal(content, '');
    assert.ok(calls.length >= 1, text);
  }
  const auto = new GrammarMatcher(toolCallGrammar(tools, 'auto', false));
  assert.ok(auto.advance('Let me check. <tool_call>{"name": "get", "arguments": {"id": 3}}</tool_call>'));
  assert.ok(auto.accepting());
  assert.ok(!auto.allows('<tool_call>'), 'parallel_tool_calls false: one call');
  assert.ok(!new GrammarMatcher(toolCallGrammar(tools, 'auto', true)).allows('x<tool_call>{"name": "nope"'));
});
