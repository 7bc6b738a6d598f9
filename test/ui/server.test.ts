/** The web UI on the real vista server (createServer's route registration, CSP) with the tiny random VLM. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { liveServer, tinyModel } from '../server/fixture.ts';
import type { RunningServer } from '../../src/server/serve.ts';
import { UI_CSP } from '../../src/server/ui/routes.ts';
import { SKIP, attachViaPicker, launchBrowser, outputPath, sendMessage } from './harness.ts';

// The browser global used in waitForFunction callbacks (they run in Chromium, not in Node),
// declared for this module only so the project keeps its Node-only type environment.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
/* eslint-enable @typescript-eslint/no-explicit-any */

const CSP_REQUIRED = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'";

describe('web UI routes on the vista server', () => {
  let s: RunningServer;
  before(async () => {
    s = await liveServer({ apiKey: 'k3y' });
  });
  after(() => s?.close());

  it('GET / serves the page with a strict CSP; assets from an allow-list only; the API still needs its key', async () => {
    const page = await fetch(`${s.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('content-security-policy'), UI_CSP);
    assert.ok(UI_CSP.startsWith(CSP_REQUIRED));
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/ui\/app.js"><\/script>/);
    assert.doesNotMatch(html, /https?:\/\//, 'no remote URL in the page');
    assert.doesNotMatch(html, /<script>|<style>| style=| on[a-z]+=/, 'nothing inline (the CSP would block it)');
    for (const [p, type] of [['/ui/app.js', 'text/javascript'], ['/ui/style.css', 'text/css'], ['/ui/favicon.svg', 'image/svg+xml']] as const) {
      const r = await fetch(s.url + p);
      assert.equal(r.status, 200, p);
      assert.ok(r.headers.get('content-type')!.startsWith(type), p);
      assert.doesNotMatch(await r.text(), /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${p} refers to no remote URL`);
    }
    for (const p of ['/ui/routes.ts', '/ui/..%2Fapp.ts', '/ui/%2e%2e%2Fapp.ts', '/ui/', '/index.html', '/ui/nope.js'])
      assert.equal((await fetch(s.url + p)).status, 404, p);
    assert.equal((await fetch(`${s.url}/v1/models`)).status, 401);
  });
});

describe('web UI end to end with the tiny VLM', { skip: SKIP }, () => {
  let browser: Browser;
  let s: RunningServer;
  const requests: { status: number; stream: boolean; body: Promise<string> }[] = [];

  before(async () => {
    [browser, s] = await Promise.all([launchBrowser(), liveServer()]);
  });
  after(async () => {
    await browser?.close();
    await s?.close();
  });

  it('uploads an image with the file picker, sends it, and shows the streamed answer', async (t) => {
    const { files } = await tinyModel();
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    page.setDefaultTimeout(30_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => {
      if (r.url().endsWith('/v1/chat/completions')) requests.push({ status: r.status(), stream: /text\/event-stream/.test(r.headers()['content-type'] ?? ''), body: r.text() });
    });
    await page.goto(`${s.url}/`);
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'vista-tiny');
    await page.click('summary');
    await page.fill('#max-tokens', '12');
    await page.fill('#temperature', '1');
    await page.click('summary');

    await attachViaPicker(page, [{ name: 'red.png', buffer: readFileSync(files.png) }]);
    await page.locator('.thumb img').waitFor();
    await sendMessage(page, 'What color is the circle?');
    await page.locator('.msg.assistant').waitFor();
    await page.waitForFunction(() => !document.querySelector('.cursor') && !document.getElementById('send')!.hidden);
    assert.deepEqual(errors, []);
    assert.equal(await page.locator('.msg.assistant.error').count(), 0, await page.locator('.msg.assistant').innerText());
    assert.deepEqual(requests.map((r) => [r.status, r.stream]), [[200, true]]);
    // what is shown is what the server streamed, chunk by chunk
    const events = (await requests[0]!.body).split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)));
    const streamed = events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
    assert.ok(events.length >= 2, 'SSE events (role, …, finish)');
    const shown = (await page.locator('.msg.assistant .text').count()) ? await page.locator('.msg.assistant .text').textContent() : '';
    assert.equal(shown, streamed);
    t.diagnostic(`tiny VLM said: ${JSON.stringify(shown)} in ${events.length} events`);
    assert.equal(await page.locator('.msg.user .images img').count(), 1);
    await page.screenshot({ path: outputPath('chat-tiny-vlm.png') });
    await page.close();
  });
});
