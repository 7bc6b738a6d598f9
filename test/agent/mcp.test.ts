import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { connectMcp, fromMcpResult, loadAgentConfig, parseAgentConfig, type McpConnection, type McpServerConfig } from '../../src/agent/mcp.ts';
import { runAgent } from '../../src/agent/loop.ts';
import { ToolRegistry } from '../../src/agent/tools.ts';
import { createPolicy } from '../../src/agent/policy.ts';
import { ConfigError } from '../../src/errors.ts';
import { startHttpMcp } from '../fixtures/agent/mcp-server.ts';
import { call, scriptedModel, trap } from './helpers.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/agent/mcp-server.ts');
const dir = tempDir('vista-mcp-');
let leak: Awaited<ReturnType<typeof trap>>;
let http: Awaited<ReturnType<typeof startHttpMcp>>;
const spyStdio = path.join(dir, 'spy-stdio.txt');
const spyHttp = path.join(dir, 'spy-http.txt');

before(async () => {
  leak = await trap();
  http = await startHttpMcp({ spyFile: spyHttp, leakUrl: `${leak.url}/link` });
});
after(async () => {
  await http.close();
  await leak.close();
});

const stdioServer = (): McpServerConfig => ({
  command: process.execPath, args: ['--import', 'tsx', FIXTURE], env: { SPY_FILE: spyStdio, LEAK_URL: `${leak.url}/link`, PATH: process.env.PATH ?? '' },
  cwd: path.resolve(import.meta.dirname, '../..'), readOnly: ['echo', 'snapshot', 'note'],
});

test('config: servers and policy parsed; mistakes are ConfigErrors naming the field', async () => {
  const c = parseAgentConfig({ servers: { a: { command: 'x', args: ['y'] }, b: { url: 'http://127.0.0.1:1/mcp' } }, policy: { tools: { a__rm: 'deny' } } });
  assert.deepEqual(Object.keys(c.servers), ['a', 'b']);
  assert.equal(c.policy.tools.a__rm!.tainted, 'deny');
  assert.ok(Object.isFrozen(c.policy));
  for (const [bad, re] of [
    [{ servers: { a: { command: 'x', extra: 1 } } }, /servers\.a/],
    [{ servers: { a: { url: 'file:///etc/passwd' } } }, /servers\.a/],
    [{ servers: { 'bad name': { command: 'x' } } }, /servers\.bad name/],
    [{ servers: {}, policy: { tools: { x: 'sure' } } }, /tools\.x/],
    [{ servers: {}, other: 1 }, /other|unrecognized/i],
  ] as const) assert.throws(() => parseAgentConfig(bad), (e: Error) => e instanceof ConfigError && re.test(e.message), JSON.stringify(bad));
  const file = path.join(dir, 'agent.json');
  writeFileSync(file, '{"servers": {');
  await assert.rejects(loadAgentConfig(file), /cannot read agent config/);
});

for (const kind of ['stdio', 'http'] as const) {
  test(`${kind}: tools listed with schemas, called through the SDK; images decoded; links never fetched; injected text changes nothing`, async () => {
    const spy = kind === 'stdio' ? spyStdio : spyHttp;
    const server: McpServerConfig = kind === 'stdio' ? stdioServer() : { url: http.url, readOnly: ['echo', 'snapshot', 'note'] };
    const conn: McpConnection = await connectMcp({ fixture: server }, { stderr: 'ignore' });
    try {
      assert.deepEqual(conn.tools.map((t) => [t.name, t.readOnly]), [
        ['fixture__echo', true], ['fixture__snapshot', true], ['fixture__note', true],
        ['fixture__delete_files', false], // the server's readOnlyHint is not believed
      ]);
      assert.deepEqual(conn.tools[0]!.parameters, { type: 'object', properties: { text: { type: 'string', maxLength: 40 } }, required: ['text'] });
      const model = scriptedModel([
        call('fixture__echo', { text: 'hello' }) + call('fixture__snapshot', {}),
        call('fixture__note', {}),
        call('fixture__delete_files', { paths: ['/'] }),
        'done',
      ]);
      const r = await runAgent({ model, prompt: 'use the tools', tools: new ToolRegistry(conn.tools), policy: createPolicy(), maxSteps: 5 });
      assert.deepEqual(r.calls.map((c) => [c.name, c.decision, c.status]), [
        ['fixture__echo', 'allow', 'ok'], ['fixture__snapshot', 'allow', 'ok'], ['fixture__note', 'allow', 'ok'],
        ['fixture__delete_files', 'confirm', 'refused'],
      ]);
      assert.deepEqual(r.calls[0]!.result.content, [{ type: 'text', text: 'hello' }]);
      const snap = r.calls[1]!.result.content;
      assert.equal(snap[0]!.type, 'image');
      assert.deepEqual(snap[0]!.type === 'image' && [snap[0].image.width, snap[0].image.height], [24, 16]);
      assert.match(snap[1]!.type === 'text' ? snap[1].text : '', /^\[link full size http:\/\/127\.0\.0\.1:\d+\/link \(not opened\)\]$/);
      assert.equal(r.images.length, 1);
      // no image in the prompt, yet everything is tainted: MCP tool descriptions are third-party text
      assert.ok(r.calls[0]!.taint.sources.includes('tooldef:mcp:fixture'));
      assert.equal(existsSync(spy), false, 'delete_files ran on the server');
      assert.equal(leak.connections(), 0);
      // approved by a person, it does run on the server
      const ok = await runAgent({
        model: scriptedModel([call('fixture__delete_files', { paths: ['a'] }), 'done']), prompt: 'x', tools: new ToolRegistry(conn.tools), policy: createPolicy(), confirm: async () => true,
      });
      assert.equal(ok.calls[0]!.status, 'ok');
      assert.equal(existsSync(spy), true);
    } finally {
      await conn.close();
    }
    if (kind === 'http') assert.ok(http.requests() > 0);
  });
}

test('connect failures are ConfigErrors naming the server', async () => {
  await assert.rejects(connectMcp({ broken: { command: path.join(dir, 'no-such-binary') } }, { stderr: 'ignore', timeoutMs: 5000 }), (e: Error) => e instanceof ConfigError && /'broken'/.test(e.message));
  await assert.rejects(connectMcp({ down: { url: `${leak.url.replace(/:\d+$/, ':9')}/mcp` } }, { timeoutMs: 5000 }), /'down'/);
});

test('fromMcpResult: resources, blobs, audio, structured content and long text', async () => {
  const png = (await sharp({ create: { width: 3, height: 2, channels: 3, background: '#00f' } }).png().toBuffer()).toString('base64');
  const r = await fromMcpResult({
    content: [
      { type: 'resource', resource: { uri: 'file:///a.txt', text: 'A' } },
      { type: 'resource', resource: { uri: 'file:///b.png', blob: png, mimeType: 'image/png' } },
      { type: 'resource', resource: { uri: 'file:///c.bin', blob: 'AAAA', mimeType: 'application/octet-stream' } },
      { type: 'audio', data: 'AAAA', mimeType: 'audio/wav' },
      { type: 'image', data: 'bm90IGFuIGltYWdl', mimeType: 'image/png' },
    ],
    isError: true,
  });
  assert.equal(r.isError, true);
  assert.deepEqual(r.content.map((c) => (c.type === 'text' ? c.text.slice(0, 26) : `${c.image.width}x${c.image.height}`)),
    ['[resource file:///a.txt]\nA', '3x2', '[resource file:///c.bin (a', '[audio content not shown]', '[image/png could not be de']);
  assert.deepEqual((await fromMcpResult({ content: [], structuredContent: { a: 1 } })).content, [{ type: 'text', text: '{"a":1}' }]);
  const long = await fromMcpResult({ content: [{ type: 'text', text: 'x'.repeat(50) }, { type: 'text', text: 'y'.repeat(50) }] }, 60);
  assert.deepEqual(long.content.map((c) => (c.type === 'text' ? c.text.length : 0)), [50, 10 + '… [cut]'.length]);
});
