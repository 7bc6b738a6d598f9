/**
 * Image URLs cannot reach the server's own network. A trap listener on 127.0.0.1 stands for every private
 * address: the test connector sends every dial that is not the fake public host there, so any hole shows
 * up as a trap connection (and no packet ever leaves loopback). The trap must see none.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { liveServer, tinyModel } from './fixture.ts';
import type { RunningServer } from '../../src/server/serve.ts';
import { blockedReason } from '../../src/server/net.ts';

const FAKE_PUBLIC = '93.184.216.34'; // only a label: the connector below never dials it

let trap: net.Server;
let trapPort = 0;
let trapConnections = 0;
let publicHost: http.Server;
let publicPort = 0;
let server: RunningServer;
let open: RunningServer;
const dials: string[] = [];

const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

before(async () => {
  const { files } = await tinyModel();
  const png = readFileSync(files.png);
  trap = net.createServer((sock) => {
    trapConnections++;
    sock.destroy();
  });
  trapPort = await listen(trap);
  publicHost = http.createServer((req, res) => {
    const u = req.url ?? '/';
    if (u === '/img.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    if (u === '/to-private') return res.writeHead(302, { location: `http://127.0.0.1:${trapPort}/x.png` }).end();
    if (u === '/to-metadata') return res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    if (u === '/to-rebind') return res.writeHead(307, { location: `http://rebind.test:${trapPort}/x.png` }).end();
    if (u === '/to-mapped') return res.writeHead(302, { location: `http://[::ffff:127.0.0.1]:${trapPort}/` }).end();
    if (u.startsWith('/loop')) return res.writeHead(302, { location: `/loop${u.length}` }).end();
    if (u === '/hop1') return res.writeHead(302, { location: '/img.png' }).end();
    if (u === '/big') return res.writeHead(200).end(Buffer.alloc(300_000));
    if (u === '/slow') return; // never answers
    res.writeHead(404).end();
  });
  publicPort = await listen(publicHost);
  const resolve = async (host: string) => {
    if (host === 'img.test') return [{ address: FAKE_PUBLIC, family: 4 }];
    if (host === 'rebind.test' || host === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
    if (host === 'mixed.test') return [{ address: FAKE_PUBLIC, family: 4 }, { address: '10.1.2.3', family: 4 }];
    throw new Error('ENOTFOUND');
  };
  const connect = (address: string) => {
    dials.push(address);
    return address === FAKE_PUBLIC ? { host: '127.0.0.1', port: publicPort } : { host: '127.0.0.1', port: trapPort };
  };
  const limits = { resolve, connect, maxImageBytes: 200_000, fetchTimeoutMs: 500, maxTokens: 2 };
  server = await liveServer({ limits });
  open = await liveServer({ limits: { ...limits, allowPrivateUrls: true } });
});
after(async () => {
  await server.close();
  await open.close();
  trap.close();
  publicHost.close();
});

async function ask(s: RunningServer, url: string): Promise<{ status: number; message: string }> {
  const r = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'x' }] }] }),
  });
  const j = await r.json() as { error?: { message: string } };
  return { status: r.status, message: j.error?.message ?? '' };
}

test('private, loopback, link-local, mapped and odd IP forms are refused before any connection', async () => {
  const p = trapPort;
  const urls = [
    `http://127.0.0.1:${p}/x.png`, `http://localhost:${p}/x.png`, `http://[::1]:${p}/`, `http://10.0.0.1:${p}/`, `http://10.255.255.255/`,
    'http://169.254.169.254/latest/meta-data/', `http://0.0.0.0:${p}/`, `http://0:${p}/`, `http://2130706433:${p}/`, `http://0x7f000001:${p}/`,
    `http://0177.0.0.1:${p}/`, `http://127.1:${p}/`, `http://0x7f.0.0.1:${p}/`, `http://[::ffff:127.0.0.1]:${p}/`, `http://[::ffff:7f00:1]:${p}/`,
    `http://[::ffff:10.0.0.1]/`, `http://[::]:${p}/`, 'http://192.168.1.1/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://100.64.0.1/',
    'http://[fd00::1]/', 'http://[fc00::1]/', 'http://[fe80::1]/', 'http://224.0.0.1/', 'http://[ff02::1]/', 'http://255.255.255.255/',
    'http://[64:ff9b::7f00:1]/', 'http://[2002:7f00:1::]/', 'http://[::127.0.0.1]/', `http://rebind.test:${p}/x.png`, 'http://mixed.test/',
    `http://user:pw@img.test:${publicPort}/img.png`, 'file:///etc/passwd', 'ftp://img.test/x.png', 'gopher://127.0.0.1/', 'http://nowhere.test/',
    `http://img.test:${publicPort}/to-private`, `http://img.test:${publicPort}/to-metadata`, `http://img.test:${publicPort}/to-rebind`,
    `http://img.test:${publicPort}/to-mapped`, `http://img.test:${publicPort}/loop`,
  ];
  for (const url of urls) {
    const r = await ask(server, url);
    assert.equal(r.status, 400, `${url} → ${r.status} ${r.message}`);
  }
  assert.equal(trapConnections, 0, 'the private listener received connections');
  assert.ok(dials.every((d) => d === FAKE_PUBLIC), `dialled ${dials.filter((d) => d !== FAKE_PUBLIC)}`);
});

test('an allowed host is fetched through its checked address; redirects re-checked; size and time limits', async () => {
  const before = dials.length;
  assert.equal((await ask(server, `http://img.test:${publicPort}/img.png`)).status, 200);
  assert.equal((await ask(server, `http://img.test:${publicPort}/hop1`)).status, 200);
  assert.deepEqual(dials.slice(before), [FAKE_PUBLIC, FAKE_PUBLIC, FAKE_PUBLIC], 'the connection goes to the resolved IP');
  const big = await ask(server, `http://img.test:${publicPort}/big`);
  assert.equal(big.status, 400);
  assert.match(big.message, /limit/);
  const t0 = Date.now();
  const slow = await ask(server, `http://img.test:${publicPort}/slow`);
  assert.equal(slow.status, 400);
  assert.match(slow.message, /timed out/);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(trapConnections, 0);
});

test('--allow-private-urls lets loopback through (and only then)', async () => {
  const r = await ask(open, `http://127.0.0.1:${trapPort}/x.png`);
  assert.equal(r.status, 400); // the trap hangs up: a fetch error, but it did connect
  assert.equal(trapConnections, 1);
  trapConnections = 0;
});

test('blockedReason classifies addresses', () => {
  for (const a of ['127.0.0.1', '10.1.1.1', '::1', '::ffff:8.8.8.8', 'fe80::1%eth0', '169.254.1.1', '0.0.0.0', '240.0.0.1']) assert.ok(blockedReason(a), a);
  for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) assert.equal(blockedReason(a), null, a);
});
