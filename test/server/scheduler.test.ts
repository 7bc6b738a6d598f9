import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/server/scheduler.ts';
import { HttpError } from '../../src/server/errors.ts';
import { liveServer } from './fixture.ts';

/** A fake sequence: `n` steps, recording each step and whether its finally ran. */
function fakeSeq(name: string, n: number, log: string[], freed: Set<string>): AsyncGenerator<string, void, undefined> {
  return (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        log.push(name);
        yield `${name}${i}`;
      }
    } finally {
      freed.add(name);
    }
  })();
}

test('scheduler: round-robin, one step at a time', async () => {
  const s = new Scheduler({ maxActive: 3, maxQueue: 0 });
  const log: string[] = [];
  const freed = new Set<string>();
  const sig = new AbortController().signal;
  const drain = async (name: string, n: number) => {
    const out: string[] = [];
    for await (const e of s.run(s.admit(), fakeSeq(name, n, log, freed), sig)) out.push(e);
    return out;
  };
  const [a, b, c] = await Promise.all([drain('A', 3), drain('B', 3), drain('C', 2)]);
  assert.deepEqual(a, ['A0', 'A1', 'A2']);
  assert.deepEqual(b, ['B0', 'B1', 'B2']);
  assert.deepEqual(c, ['C0', 'C1']);
  assert.deepEqual(log, ['A', 'B', 'C', 'A', 'B', 'C', 'A', 'B']);
  assert.equal(s.stats.admitted, 0);
});

test('scheduler: bounded queue → 429 with Retry-After; abort frees a sequence', async () => {
  const s = new Scheduler({ maxActive: 1, maxQueue: 1 });
  s.admit();
  const t2 = s.admit();
  assert.throws(() => s.admit(), (e: unknown) => e instanceof HttpError && e.status === 429 && e.headers['Retry-After'] === '1');
  const ac = new AbortController();
  const log: string[] = [];
  const freed = new Set<string>();
  const seen: string[] = [];
  for await (const e of s.run(t2, fakeSeq('X', 1000, log, freed), ac.signal)) {
    seen.push(e);
    if (seen.length === 3) ac.abort();
  }
  assert.ok(seen.length <= 4);
  assert.ok(freed.has('X'), 'the generator finally ran (its KV cache is freed)');
  assert.equal(s.stats.admitted, 1);
});

test('live: client disconnect cancels generation and frees its place', async () => {
  const server = await liveServer({ limits: { maxActive: 1, maxQueue: 1, timeoutMs: 60_000, maxTokens: 2000 } });
  try {
    const ac = new AbortController();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ max_tokens: 2000, stream: true, temperature: 0, messages: [{ role: 'user', content: 'go' }] }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const steps = server.app.scheduler.steps;
    ac.abort();
    const t0 = Date.now();
    for (let i = 0; i < 200 && (server.app.scheduler.stats.admitted > 0 || server.app.scheduler.stats.active > 0); i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.app.scheduler.stats.admitted, 0);
    assert.equal(server.app.scheduler.stats.active, 0);
    assert.ok(Date.now() - t0 < 500, 'cancelled promptly, long before the 60 s limit');
    assert.ok(server.app.scheduler.steps - steps < 100, `${server.app.scheduler.steps - steps} steps after the disconnect`);
  } finally {
    await server.close();
  }
});

test('live: time limit ends with length; queue full → 429', async () => {
  const server = await liveServer({ limits: { maxActive: 1, maxQueue: 1, timeoutMs: 150, maxTokens: 2000 } });
  try {
    const body = (n: number, stream = false) => JSON.stringify({ model: 'm', max_tokens: n, stream, temperature: 0, messages: [{ role: 'user', content: 'go' }] });
    const post = (b: string, signal?: AbortSignal) => fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: b, signal, headers: { 'content-type': 'application/json' } });

    // time limit: a whole context (~490 tokens) does not fit in 100 ms → ends with 'length'
    const t0 = Date.now();
    const res = await post(body(2000));
    if (res.status === 503) assert.equal(res.headers.get('retry-after'), '1'); // a slow machine: the limit came before the first token
    else {
      assert.equal(res.status, 200);
      const r = await res.json() as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
      assert.equal(r.choices[0]!.finish_reason, 'length');
      assert.ok(r.usage.completion_tokens < 480, `${r.usage.completion_tokens} tokens: the limit did not cut`);
    }
    assert.ok(Date.now() - t0 < 3000);

    // 1 active + 1 queued; the third is refused
    const all = await Promise.all([post(body(200)), post(body(200)), post(body(200))]);
    const statuses = all.map((x) => x.status).sort();
    assert.ok(statuses.includes(429), `statuses ${statuses}`);
    const refused = all.find((x) => x.status === 429)!;
    assert.equal(refused.headers.get('retry-after'), '1');
    const err = await refused.json() as { error: { type: string; code: string } };
    assert.equal(err.error.type, 'rate_limit_error');
    for (const x of all) if (x.status !== 429) assert.ok([200, 503].includes(x.status), `status ${x.status}`);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  } finally {
    await server.close();
  }
});

test('app.fetch works without a socket', async () => {
  const { createServer } = await import('../../src/server/app.ts');
  const { tinyModel } = await import('./fixture.ts');
  const app = createServer({ model: (await tinyModel()).model, modelName: 'm', log: () => {} });
  assert.equal((await app.fetch(new Request('http://x/health'))).status, 200);
  const r = await app.fetch(new Request('http://x/v1/chat/completions', { method: 'POST', body: '{"messages": 3}' }));
  assert.equal(r.status, 400);
  const j = await r.json() as { error: { message: string; type: string; param: string; code: string } };
  assert.equal(j.error.type, 'invalid_request_error');
  assert.equal(j.error.param, 'messages');
});

test('prompts over the context, too many images and image bombs are 400s', async () => {
  const { createServer } = await import('../../src/server/app.ts');
  const { tinyModel } = await import('./fixture.ts');
  const { model, pngDataUrl } = await tinyModel();
  const app = createServer({ model, modelName: 'm', log: () => {}, limits: { maxImages: 2 } });
  const post = async (messages: unknown) => {
    const r = await app.fetch(new Request('http://x/v1/chat/completions', { method: 'POST', body: JSON.stringify({ max_tokens: 2, messages }) }));
    return { status: r.status, message: ((await r.json()) as { error?: { message: string } }).error?.message ?? '' };
  };
  const long = await post([{ role: 'user', content: 'red circle '.repeat(400) }]);
  assert.equal(long.status, 400);
  assert.match(long.message, /context/);
  const img = { type: 'image_url', image_url: { url: pngDataUrl } };
  const many = await post([{ role: 'user', content: [img, img, img] }]);
  assert.equal(many.status, 400);
  assert.match(many.message, /too many images/);
  // a PNG header claiming 100000×100000 pixels
  const bomb = Buffer.from('89504e470d0a1a0a0000000d49484452000186a0000186a00802000000', 'hex');
  const b = await post([{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${bomb.toString('base64')}` } }] }]);
  assert.equal(b.status, 400);
  assert.match(b.message, /pixels/);
});
