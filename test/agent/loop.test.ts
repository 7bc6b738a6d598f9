import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { runAgent, type AgentEvent, type ConfirmRequest } from '../../src/agent/loop.ts';
import { createPolicy } from '../../src/agent/policy.ts';
import { ToolRegistry, type AgentTool } from '../../src/agent/tools.ts';
import { imageTools } from '../../src/agent/tools/image-tools.ts';
import { solidImage } from '../../src/image/index.ts';
import { VisionLanguageModel } from '../../src/runtime/vlm.ts';
import { validatesAgainst } from '../../src/runtime/constrain.ts';
import type { TinyVlmFiles } from '../helpers/tiny-vlm.ts';
import { call, scriptedModel, tinyAgentModel } from './helpers.ts';

const red = solidImage(40, 30, [220, 40, 40]);

function spyTool(name: string, readOnly: boolean): AgentTool & { runs: Record<string, unknown>[] } {
  const runs: Record<string, unknown>[] = [];
  return {
    runs, name, readOnly, description: name,
    parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    async run(args) {
      runs.push(args);
      return { content: [{ type: 'text', text: `${name} ok` }] };
    },
  };
}

test('a tool call runs, its text and image go back as a tool message, and the next turn answers', async () => {
  const model = scriptedModel([`Let me click.${call('click', { x: 500, y: 500 })}`, 'The circle is in the middle.']);
  const events: AgentEvent[] = [];
  const r = await runAgent({
    model, prompt: 'Click the red circle', images: [red], tools: new ToolRegistry(imageTools()), policy: createPolicy(), onEvent: (e) => events.push(e),
  });
  assert.equal(r.stopReason, 'answer');
  assert.equal(r.answer, 'The circle is in the middle.');
  assert.equal(r.steps, 2);
  assert.equal(r.images.length, 1);
  assert.deepEqual(r.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
  const asst = r.messages[1]!;
  assert.equal(asst.content, 'Let me click.');
  assert.deepEqual(asst.tool_calls, [{ id: 'call_1_0', type: 'function', function: { name: 'click', arguments: '{"x":500,"y":500}' } }]);
  const tool = r.messages[2]!;
  assert.equal(tool.tool_call_id, 'call_1_0');
  assert.ok(Array.isArray(tool.content) && tool.content.some((p) => p.type === 'image') && tool.content.some((p) => p.type === 'text'));
  // the second turn saw the tool message with its image
  assert.equal(model.seen[1]!.length, 3);
  assert.deepEqual(r.calls.map((c) => [c.name, c.decision, c.status]), [['click', 'allow', 'ok']]);
  assert.deepEqual(events.map((e) => e.type).filter((t) => t !== 'delta'), ['step', 'assistant', 'tool_call', 'tool_result', 'step', 'assistant', 'done']);
  // taint: the image makes everything after it untrusted
  assert.deepEqual(r.taints[0]!.sources, ['image:message0.0']);
  assert.ok(r.taints[2]!.sources.includes('tool:click#call_1_0'));
  assert.deepEqual(r.answerTaint.sources, ['image:message0.0', 'tool:click#call_1_0']);
});

test('click on the image a previous tool returned (zoom, then click on the zoomed image)', async () => {
  const model = scriptedModel([call('zoom', { x: 500, y: 500, factor: 2 }) + call('click', { x: 0, y: 0 }), 'ok']);
  const r = await runAgent({ model, prompt: 'zoom and click', images: [red], tools: new ToolRegistry(imageTools()), policy: createPolicy() });
  assert.equal(r.images.length, 2);
  assert.deepEqual([r.images[1]!.width, r.images[1]!.height], [40, 30]); // zoomed 20×15 → back to 40×30
  assert.deepEqual(Array.from(r.images[1]!.data.subarray(0, 3)), [255, 0, 255]);
});

test('maxSteps ends a run that keeps calling tools; malformed, unknown and schema-invalid calls are refused with a reason', async () => {
  const spy = spyTool('write_note', false);
  const model = scriptedModel(() => '<tool_call>{not json}</tool_call>' + call('nope', {}) + call('write_note', { path: 7 }) + call('crop', { x0: 0 }));
  const r = await runAgent({ model, prompt: 'go', tools: new ToolRegistry([...imageTools(), spy]), policy: createPolicy(), maxSteps: 3 });
  assert.equal(r.stopReason, 'max_steps');
  assert.equal(r.steps, 3);
  assert.equal(r.calls.length, 12);
  assert.ok(r.calls.every((c) => c.status === 'refused' && c.decision === 'deny'));
  assert.equal(spy.runs.length, 0);
  const reasons = r.calls.slice(0, 4).map((c) => (c.result.content[0] as { text: string }).text);
  assert.match(reasons[0]!, /not valid JSON/);
  assert.match(reasons[1]!, /not a registered tool/);
  assert.match(reasons[2]!, /schema/);
  assert.match(reasons[3]!, /schema/);
});

test('trusted context: a side-effecting tool runs; with an image in context it needs confirmation', async () => {
  const spy = spyTool('write_note', false);
  const tools = new ToolRegistry([spy]);
  const script = [call('write_note', { path: 'a.txt' }), 'done'];
  const plain = await runAgent({ model: scriptedModel(script), prompt: 'write a note', tools, policy: createPolicy() });
  assert.deepEqual(plain.calls.map((c) => [c.decision, c.status]), [['allow', 'ok']]);
  assert.equal(plain.calls[0]!.taint.sources.length, 0);
  assert.equal(spy.runs.length, 1);

  const asked: ConfirmRequest[] = [];
  const withImage = await runAgent({
    model: scriptedModel(script), prompt: 'write a note', images: [red], tools, policy: createPolicy(), confirm: async (c) => (asked.push(c), false),
  });
  assert.deepEqual(withImage.calls.map((c) => [c.decision, c.status, c.approved]), [['confirm', 'refused', false]]);
  assert.equal(asked.length, 1);
  assert.deepEqual(asked[0]!.taint.sources, ['image:message0.0']);
  assert.deepEqual(asked[0]!.arguments, { path: 'a.txt' });
  assert.equal(spy.runs.length, 1);
  assert.match((withImage.messages[2]!.content as { text: string }[])[0]!.text, /^refused: .*did not approve/);

  const approved = await runAgent({ model: scriptedModel(script), prompt: 'write a note', images: [red], tools, policy: createPolicy(), confirm: async () => true });
  assert.deepEqual(approved.calls.map((c) => [c.decision, c.status, c.approved]), [['confirm', 'ok', true]]);
  assert.equal(spy.runs.length, 2);

  // no confirmer, a confirmer that throws, a confirmer that answers something truthy but not `true`: refused
  for (const confirm of [undefined, async () => Promise.reject(new Error('tty closed')), async () => 'yes' as unknown as boolean]) {
    const r = await runAgent({ model: scriptedModel(script), prompt: 'x', images: [red], tools, policy: createPolicy(), ...(confirm ? { confirm } : {}) });
    assert.equal(r.calls[0]!.status, 'refused');
  }
  assert.equal(spy.runs.length, 2);
});

test('history handed in: assistant and tool messages are untrusted; only data: image URLs are accepted', async () => {
  const spy = spyTool('write_note', false);
  const r = await runAgent({
    model: scriptedModel([call('write_note', { path: 'x' })]), tools: new ToolRegistry([spy]), policy: createPolicy(), maxSteps: 1,
    messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'call write_note please' }, { role: 'user', content: 'ok' }],
  });
  assert.equal(r.calls[0]!.decision, 'confirm');
  assert.deepEqual(r.calls[0]!.taint.sources, ['history:assistant#1']);
  assert.equal(spy.runs.length, 0);
  await assert.rejects(runAgent({
    model: scriptedModel(['x']), tools: new ToolRegistry(), policy: createPolicy(),
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1:9/a.png' } }] }],
  }), /does not fetch/);
  await assert.rejects(runAgent({ model: scriptedModel(['x']), prompt: 'x', tools: new ToolRegistry(), policy: { ...createPolicy() } }), /createPolicy/);
});

test('a tool that throws or returns garbage becomes an error result, not an exception', async () => {
  const boom: AgentTool = { name: 'boom', description: '', readOnly: true, parameters: { type: 'object' }, run: async () => Promise.reject(new Error('kaput')) };
  const junk: AgentTool = { name: 'junk', description: '', readOnly: true, parameters: { type: 'object' }, run: async () => ({ content: [{ type: 'image', image: { width: 2, height: 2, data: new Uint8Array(3) } }] }) };
  const r = await runAgent({ model: scriptedModel([call('boom', {}) + call('junk', {}), 'fine']), prompt: 'x', tools: new ToolRegistry([boom, junk]), policy: createPolicy() });
  assert.deepEqual(r.calls.map((c) => c.status), ['error', 'error']);
  assert.match((r.calls[0]!.result.content[0] as { text: string }).text, /kaput/);
  assert.equal(r.answer, 'fine');
});

test('abort before the first step stops the run', async () => {
  const ac = new AbortController();
  ac.abort();
  const r = await runAgent({ model: scriptedModel(['x']), prompt: 'x', tools: new ToolRegistry(), policy: createPolicy(), signal: ac.signal });
  assert.equal(r.stopReason, 'abort');
  assert.equal(r.steps, 0);
});

let tiny: { files: TinyVlmFiles; model: VisionLanguageModel };
before(async () => {
  tiny = await tinyAgentModel();
});

test('tiny random VLM at T=1: every constrained call parses, validates and runs; results feed back', async () => {
  const tools = new ToolRegistry(imageTools());
  let calls = 0;
  let steps = 0;
  for (let seed = 0; seed < 6; seed++) {
    const r = await runAgent({
      model: tiny.model, prompt: 'Click the red circle', images: [tiny.files.png], tools, policy: createPolicy(),
      maxSteps: 2, toolChoice: 'required', resetToolChoice: false, maxTokens: 96, sampler: { temperature: 1, seed },
      grammar: { maxStringLength: 8 },
    });
    steps += r.steps;
    for (const c of r.calls) {
      calls++;
      assert.equal(c.status, 'ok', `${c.name} ${c.raw}: ${JSON.stringify(c.result.content[0])}`);
      assert.ok(validatesAgainst(tools.get(c.name)!.parameters, JSON.parse(c.raw)));
    }
    assert.ok(['max_steps', 'context', 'length'].includes(r.stopReason), r.stopReason);
  }
  console.log(`tiny VLM agent: ${calls} tool calls in ${steps} turns, all valid and run`);
  assert.ok(calls >= 6, `only ${calls} calls`);
  assert.ok(steps >= 6);
});

test('tiny VLM: a conversation that no longer fits the context stops with "context"', async () => {
  const big = 'word '.repeat(5000);
  const r = await runAgent({ model: tiny.model, prompt: big, tools: new ToolRegistry(), policy: createPolicy() });
  assert.equal(r.stopReason, 'context');
});
