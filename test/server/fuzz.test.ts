/**
 * Seeded fuzzing: ≥ 1000 malformed requests and images against a live server → no crash, no 5xx other than
 * deliberate 503s, no internal error logged, and /health still answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { liveServer, tinyModel } from './fixture.ts';
import type { RunningServer } from '../../src/server/serve.ts';
import { Rng } from '../../src/tensor/rng.ts';

let server: RunningServer;
const internal: string[] = [];
let png: Buffer;
let bomb: Buffer;

before(async () => {
  const { files } = await tinyModel();
  png = readFileSync(files.png);
  // 6000×6000 of one colour: tiny file, 36 M pixels (a decompression bomb for the server's 16 M limit)
  bomb = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9 }).toBuffer();
  server = await liveServer({ log: (m) => internal.push(m), limits: { maxBodyBytes: 256 * 1024, maxTokens: 3, maxImages: 3, maxActive: 4, maxQueue: 64 } });
});
after(() => server.close());

const deep = (d: number): unknown => (d === 0 ? {} : { type: 'object', properties: { a: deep(d - 1) }, required: ['a'] });
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function generators(rng: Rng) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)]!;
  const int = (n: number) => Math.floor(rng.uniform() * n);
  const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const corrupt = (b: Uint8Array) => {
    const c = Uint8Array.from(b);
    for (let k = 0; k < 1 + int(8); k++) c[int(c.length)] = int(256);
    return c;
  };
  const weird = (): unknown => pick([null, true, false, 0, -1, 1e308, -1e308, 3.5, '', 'x'.repeat(int(300)), [], {}, [1, 'a'], { a: { b: [] } }, 'NaN', '\u0000\uD800', 2 ** 53 + 1]);
  const image = (): string => {
    const kind = int(9);
    if (kind === 0) return `data:image/png;base64,${b64(corrupt(png))}`;
    if (kind === 1) return `data:image/png;base64,${b64(png.subarray(0, int(png.length)))}`;
    if (kind === 2) return `data:image/png;base64,${b64(randomBytes(int(200)))}`;
    if (kind === 3) return `data:image/png;base64,${b64(bomb)}`;
    if (kind === 4) return `data:text/plain;base64,${b64(png)}`;
    if (kind === 5) return `data:image/png;base64,${'%%%'.repeat(int(5))}!!`;
    if (kind === 6) return pick(['data:', 'data:image/png,', 'javascript:alert(1)', 'http://', 'https://[::1', '//x', 'x'.repeat(50)]);
    if (kind === 7) return `data:image/gif;base64,${b64(Uint8Array.from([...Buffer.from('GIF89a'), ...randomBytes(40)]))}`;
    return `data:image/png;base64,${b64(png)}`;
  };
  const part = (): unknown => {
    const k = int(7);
    if (k === 0) return { type: 'text', text: pick(['hi', '<|im_start|>system', '<tool_call>{"name"', '']) };
    if (k === 1) return { type: 'image_url', image_url: { url: image() } };
    if (k === 2) return { type: 'image_url', image_url: image() };
    if (k === 3) return { type: pick(['audio', 'input_audio', 'file', 'image', 'video', 42, null]), data: weird() };
    if (k === 4) return { type: 'image_url', image_url: weird() };
    if (k === 5) return weird();
    return { type: 'text', text: weird() };
  };
  const message = (): unknown => {
    const k = int(6);
    if (k === 0) return weird();
    if (k === 1) return { role: pick(['user', 'system', 'assistant', 'tool', 'bogus', 7]), content: weird() };
    if (k === 2) return { role: 'user', content: Array.from({ length: int(6) }, part) };
    if (k === 3) return { role: 'assistant', content: null, tool_calls: pick([weird(), [{ function: { name: 'f', arguments: '{' } }], [{ function: weird() }]]) };
    if (k === 4) return { role: 'tool', tool_call_id: 'c', content: [part(), part()] };
    return { role: 'user', content: pick(['x', 'y '.repeat(int(600)), '']) };
  };
  const schema = (): unknown => pick([
    { type: 'frob' }, { type: 'string', minLength: 9, maxLength: 2 }, { type: 'integer', minimum: 5, maximum: 1 }, { $ref: '#/$defs/missing' },
    { type: 'object', properties: weird(), required: weird() }, { enum: [] }, false, 'string', { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] },
    deep(40), { anyOf: [] }, { type: 'array', minItems: 1000 },
  ]);
  const chat = (): unknown => {
    const body: Record<string, unknown> = { model: 'm', max_tokens: 2, messages: Array.from({ length: 1 + int(3) }, message) };
    const fields: [string, () => unknown][] = [
      ['max_tokens', () => pick([0, -1, 1.5, 1e12, 'ten', null, 2])], ['temperature', () => pick([-1, 3, 'hot', 0.5, null, Number('1e400')])],
      ['top_p', () => pick([-0.1, 1.1, 0.5])], ['seed', () => pick([1.5, -3, 2 ** 40, 'x'])], ['stop', () => pick(['', ['a', 'b'], Array(20).fill('x'), 7])],
      ['stream', () => pick([true, false, 'yes'])], ['n', () => pick([1, 2, 0])], ['stream_options', () => pick([{ include_usage: true }, 'x'])],
      ['tools', () => pick([weird(), [{ type: 'function', function: { name: 'f', parameters: schema() } }], [{ type: 'function', function: { name: 'bad name!' } }]])],
      ['tool_choice', () => pick(['required', 'auto', 'none', { type: 'function', function: { name: 'nope' } }, 'always', weird()])],
      ['response_format', () => pick([{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'x', schema: schema() } }, { type: 'xml' }, weird()])],
      ['messages', () => pick([[], weird(), Array(3).fill({ role: 'user', content: Array(4).fill({ type: 'image_url', image_url: { url: `data:image/png;base64,${b64(png)}` } }) })])],
    ];
    for (let k = int(4); k > 0; k--) {
      const [f, v] = pick(fields);
      body[f] = v();
    }
    return body;
  };
  const ollama = (): unknown => ({
    model: 'm', stream: pick([true, false, undefined]), options: pick([{ num_predict: 2 }, { num_predict: 'x' }, weird()]),
    format: pick([undefined, 'json', 'yaml', schema()]),
    messages: [{ role: pick(['user', 'x']), content: pick(['hi', weird()]), images: pick([[b64(corrupt(png))], [b64(bomb)], ['!!!'], weird(), [b64(png)]]) }],
  });
  const raw = (): { body: string | Uint8Array; type?: string } => {
    const k = int(7);
    if (k === 0) return { body: randomBytes(int(500)) };
    if (k === 1) return { body: JSON.stringify(chat()).slice(0, int(200)) };
    if (k === 2) return { body: '['.repeat(5000 + int(100000)) };
    if (k === 3) return { body: JSON.stringify(weird()) };
    if (k === 4) return { body: '{"messages": [{"role": "user", "content": "' + 'A'.repeat(300 * 1024) + '"}]}' }; // over max-body
    if (k === 5) return { body: '', type: pick(['text/plain', 'multipart/form-data; boundary=x']) };
    return { body: '{"messages":[{"role":"user","content":"\\ud800"}],"max_tokens":2}' };
  };
  return { pick, int, chat, ollama, raw };
}

test('≥ 1000 malformed requests: no crash, no 5xx but deliberate 503s, health answers', async () => {
  const rng = new Rng(2024);
  const g = generators(rng);
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  const N = 1200;
  const one = async (i: number) => {
    const k = g.int(10);
    let path = '/v1/chat/completions';
    let method = 'POST';
    let body: string | Uint8Array | undefined;
    let type = 'application/json';
    if (k < 5) body = JSON.stringify(g.chat());
    else if (k < 7) {
      path = '/api/chat';
      body = JSON.stringify(g.ollama());
    } else if (k < 9) {
      const r = g.raw();
      body = r.body;
      type = r.type ?? type;
      if (g.int(4) === 0) path = '/api/chat';
    } else {
      [method, path] = g.pick([['GET', '/v1/chat/completions'], ['PUT', '/v1/models'], ['GET', '/nope'], ['DELETE', '/api/chat'], ['POST', '/v1/models'], ['GET', '/v1/models/x']]);
    }
    let res: Response;
    try {
      res = await fetch(`${server.url}${path}`, { method, body, headers: { 'content-type': type } });
    } catch (e) {
      bad.push(`#${i} ${method} ${path} → connection error ${(e as Error).cause ?? e}: ${String(body).slice(0, 120)} (${body?.length} bytes)`);
      return;
    }
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500 && res.status !== 503) bad.push(`#${i} ${method} ${path} → ${res.status}: ${String(body).slice(0, 200)}`);
  };
  for (let i = 0; i < N; i += 16) await Promise.all(Array.from({ length: 16 }, (_, k) => one(i + k)));
  console.log(`fuzz: ${N} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  assert.deepEqual(bad, []);
  assert.deepEqual(internal, [], 'internal errors were logged');
  const h = await fetch(`${server.url}/health`);
  assert.equal(h.status, 200);
  assert.equal(((await h.json()) as { admitted: number }).admitted, 0);
});
