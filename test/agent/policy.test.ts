import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicy, decide, isPolicy, mayRun } from '../../src/agent/policy.ts';
import { TRUSTED, describeTaint, isTainted, join, taintOf } from '../../src/agent/taint.ts';
import type { AgentTool } from '../../src/agent/tools.ts';
import { ConfigError } from '../../src/errors.ts';

const tool = (name: string, readOnly: boolean): AgentTool => ({
  name, readOnly, description: name, parameters: { type: 'object' }, run: async () => ({ content: [] }),
});
const tainted = taintOf('image:message0.0');

test('taint: union, sorted and deduplicated; trusted is empty', () => {
  assert.equal(isTainted(TRUSTED), false);
  const t = join(taintOf('tool:b#1', 'image:a'), taintOf('image:a'), TRUSTED);
  assert.deepEqual(t.sources, ['image:a', 'tool:b#1']);
  assert.ok(Object.isFrozen(t) && Object.isFrozen(t.sources));
  assert.equal(describeTaint(TRUSTED), 'trusted');
  assert.match(describeTaint(taintOf('a', 'b', 'c', 'd', 'e', 'f')), /and 2 more/);
});

test('defaults: read-only allowed; side effects allowed when trusted, confirmed when tainted; unknown denied', () => {
  const p = createPolicy();
  assert.equal(decide(p, tool('crop', true), 'crop', tainted).decision, 'allow');
  assert.equal(decide(p, tool('rm', false), 'rm', TRUSTED).decision, 'allow');
  assert.equal(decide(p, tool('rm', false), 'rm', tainted).decision, 'confirm');
  assert.equal(decide(p, undefined, 'nope', TRUSTED).decision, 'deny');
});

test('per-tool rules win; unknown tools stay denied whatever the config says', () => {
  const p = createPolicy({ tools: { rm: 'deny', crop: { trusted: 'allow', tainted: 'confirm' }, ghost: 'allow' }, readOnly: 'confirm' });
  assert.equal(decide(p, tool('rm', false), 'rm', TRUSTED).decision, 'deny');
  assert.equal(decide(p, tool('crop', true), 'crop', TRUSTED).decision, 'allow');
  assert.equal(decide(p, tool('crop', true), 'crop', tainted).decision, 'confirm');
  assert.equal(decide(p, tool('zoom', true), 'zoom', TRUSTED).decision, 'confirm');
  assert.equal(decide(p, undefined, 'ghost', TRUSTED).decision, 'deny');
  assert.equal(mayRun(p, tool('rm', false)), false);
  assert.equal(mayRun(p, tool('crop', true)), true);
});

test('the policy is deeply frozen and has no prototype lookups', () => {
  const p = createPolicy({ tools: { rm: 'confirm' } });
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.tools) && Object.isFrozen(p.tools.rm) && Object.isFrozen(p.sideEffecting));
  assert.throws(() => {
    (p.tools as Record<string, unknown>).rm = { trusted: 'allow', tainted: 'allow' };
  }, TypeError);
  assert.throws(() => {
    (p as { sideEffecting: unknown }).sideEffecting = { trusted: 'allow', tainted: 'allow' };
  }, TypeError);
  assert.throws(() => {
    (p.sideEffecting as { tainted: string }).tainted = 'allow';
  }, TypeError);
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
    assert.equal(decide(p, tool(name, false), name, tainted).decision, 'confirm', name);
  assert.equal(decide(p, tool('rm', false), 'rm', tainted).decision, 'confirm');
});

test('only createPolicy builds a policy; malformed configs are ConfigErrors naming the entry', () => {
  const forged = { tools: {}, readOnly: { trusted: 'allow', tainted: 'allow' }, sideEffecting: { trusted: 'allow', tainted: 'allow' } };
  assert.equal(isPolicy(forged), false);
  assert.equal(isPolicy(createPolicy()), true);
  assert.throws(() => createPolicy({ tools: { rm: 'yes' as never } }), (e: Error) => e instanceof ConfigError && /tools\.rm/.test(e.message));
  assert.throws(() => createPolicy({ tools: { rm: { trusted: 'allow' } as never } }), /tools\.rm\.tainted/);
  assert.throws(() => createPolicy({ tools: { rm: { trusted: 'allow', tainted: 'allow', extra: 1 } as never } }), /unknown key/);
  assert.throws(() => createPolicy({ allowAll: true } as never), /unknown key/);
  assert.throws(() => createPolicy({ tools: [] as never }), ConfigError);
});
