/** The web UI against scripted answers: streaming, attachments (picker, paste, drop), boxes/points, tool calls, stop, safety. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import {
  SKIP, attachViaPicker, endSse, launchBrowser, outputPath, png, says, sendMessage, startSse, trap, uiServer, writeText, type UiServer,
} from './harness.ts';

// Browser globals for the page.evaluate / waitForFunction callbacks (they run in Chromium, not in Node),
// declared for this module only so the project keeps its Node-only type environment.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, window: any, DataTransfer: any, ClipboardEvent: any, DragEvent: any;
/* eslint-enable @typescript-eslint/no-explicit-any */
type HTMLImageElement = { src: string; alt: string };

if (SKIP) console.log(`# skipping the web UI tests: ${SKIP}`);

describe('web UI (scripted completions)', { skip: SKIP }, () => {
  let browser: Browser;
  let server: UiServer;
  let red: Buffer;
  let scene: Buffer;

  before(async () => {
    [browser, server, red, scene] = await Promise.all([
      launchBrowser(), uiServer(), png(40, 30, [220, 40, 40]),
      png(400, 300, [235, 235, 225], { left: 40, top: 60, width: 160, height: 180, rgb: [60, 120, 200] }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url + '/');
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'fake-vlm');
    assert.deepEqual(errors, []);
    return page;
  }

  const assistantText = (page: Page) => page.locator('.msg.assistant').last().locator('.text').innerText();

  it('sends an image from the file picker and shows the answer as it streams', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    server.answer(async ({ res }) => {
      startSse(res);
      writeText(res, 'A red ');
      writeText(res, 'square');
      await released;
      writeText(res, ' on nothing.');
      endSse(res);
    });
    const page = await open();
    await attachViaPicker(page, [{ name: 'red.png', buffer: red }]);
    await page.locator('.thumb img').waitFor();
    await sendMessage(page, 'What is this?');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent === 'A red square');
    assert.equal(await page.locator('.msg.assistant .text.cursor').count(), 1, 'still streaming');
    assert.equal(await page.isVisible('#stop'), true);
    release();
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent === 'A red square on nothing.');
    await page.locator('#send').waitFor();
    assert.equal(await page.locator('.msg.assistant .text.cursor').count(), 0);

    const body = server.calls.at(-1)!.body;
    assert.equal(body.stream, true);
    assert.equal(body.model, 'fake-vlm');
    const user = body.messages.at(-1)!;
    assert.equal(user.role, 'user');
    const parts = user.content as { type: string; text?: string; image_url?: { url: string } }[];
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.image_url!.url, `data:image/png;base64,${red.toString('base64')}`);
    assert.deepEqual(parts[1], { type: 'text', text: 'What is this?' });
    assert.equal(await page.locator('.thumb').count(), 0, 'attachments are cleared once sent');
    assert.equal(await page.locator('.msg.user .images img').count(), 1);
    await page.close();
  });

  it('Enter sends, Shift+Enter adds a new line; the history goes with the next question', async () => {
    server.answer(says(['first answer']), says(['second answer']));
    const page = await open();
    await page.fill('#prompt', 'line one');
    await page.press('#prompt', 'Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal(await page.inputValue('#prompt'), 'line one\nline two');
    const before = server.calls.length;
    await page.press('#prompt', 'Enter');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent === 'first answer');
    assert.equal(server.calls.length, before + 1);
    assert.deepEqual(server.calls.at(-1)!.body.messages, [{ role: 'user', content: 'line one\nline two' }]);
    assert.equal(await page.inputValue('#prompt'), '');
    await page.locator('#send').waitFor();
    await sendMessage(page, 'and?');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant .text')[1]?.textContent === 'second answer');
    assert.deepEqual(server.calls.at(-1)!.body.messages.map((m) => [m.role, m.content]), [
      ['user', 'line one\nline two'], ['assistant', 'first answer'], ['user', 'and?'],
    ]);
    await page.close();
  });

  it('pasted and dropped images are attached (several per message)', async () => {
    server.answer(says(['two images']));
    const page = await open();
    const b64 = red.toString('base64');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.getElementById('prompt')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, b64);
    await page.waitForFunction(() => document.querySelectorAll('.thumb').length === 1);
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      const target = document.getElementById('messages')!;
      for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, b64);
    await page.waitForFunction(() => document.querySelectorAll('.thumb').length === 2);
    assert.equal(await page.isHidden('#drop-hint'), true);
    assert.deepEqual(await page.locator('.thumb img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).alt)), ['pasted.png', 'dropped.png']);

    // a non-image file is refused with a message; removing a thumbnail works
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
    await page.waitForFunction(() => /not an image/.test(document.getElementById('status')!.textContent ?? ''));
    await page.setInputFiles('#file', { name: 'extra.png', mimeType: 'image/png', buffer: red });
    await page.waitForFunction(() => document.querySelectorAll('.thumb').length === 3);
    await page.click('.thumb:nth-child(3) button');
    assert.equal(await page.locator('.thumb').count(), 2);

    await sendMessage(page, 'compare');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent === 'two images');
    const parts = server.calls.at(-1)!.body.messages.at(-1)!.content as { type: string }[];
    assert.deepEqual(parts.map((p) => p.type), ['image_url', 'image_url', 'text']);
    assert.equal(await page.locator('.msg.user .images img').count(), 2);
    await page.close();
  });

  it('draws boxes and points from the answer over the image, and saves a screenshot', async (t) => {
    server.answer(says(['The blue block is at [100, 200, ', '500, 800] and the ', 'cup at [750, 250].']));
    const page = await open();
    await attachViaPicker(page, [{ name: 'scene.png', buffer: scene }]);
    await sendMessage(page, 'Where are the block and the cup?');
    await page.locator('.annotated .ov-point').waitFor();
    await page.locator('#send').waitFor();

    const img = (await page.locator('.annotated img').boundingBox())!;
    assert.ok(img.width > 100 && img.height > 50, `image is shown (${img.width}x${img.height})`);
    assert.ok(Math.abs(img.width / img.height - 4 / 3) < 0.02, 'aspect ratio kept');
    const box = (await page.locator('.annotated .ov-box').boundingBox())!;
    const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1.5, `${what}: ${a} vs ${b}`);
    near(box.x, img.x + 0.1 * img.width, 'box left');
    near(box.y, img.y + 0.2 * img.height, 'box top');
    near(box.x + box.width, img.x + 0.5 * img.width, 'box right');
    near(box.y + box.height, img.y + 0.8 * img.height, 'box bottom');
    assert.equal(await page.locator('.annotated .ov-box').getAttribute('data-coords'), '100,200,500,800');
    assert.equal(await page.locator('.annotated .ov-box .ov-label').innerText(), 'blue block');
    const pt = (await page.locator('.annotated .ov-point').boundingBox())!;
    near(pt.x + pt.width / 2, img.x + 0.75 * img.width, 'point x');
    near(pt.y + pt.height / 2, img.y + 0.25 * img.height, 'point y');
    assert.equal(await page.locator('.annotated .ov-point .ov-label').innerText(), 'cup');
    assert.equal(await page.locator('.annotated .ov-box').count(), 1);
    assert.equal(await page.locator('.annotated .ov-point').count(), 1);
    assert.equal(await assistantText(page), 'The blue block is at [100, 200, 500, 800] and the cup at [750, 250].');

    const file = outputPath('chat-boxes.png');
    await page.screenshot({ path: file });
    t.diagnostic(`screenshot: ${file}`);
    await page.close();
  });

  it('shows tool calls as cards, and a click tool call as a point', async () => {
    server.answer(says(['Clicking the button.'], [
      { name: 'click', arguments: '{"x": 250, "y": 500}' },
      { name: 'lookup', arguments: '{"query":"blue block","limit":3,"filters":{"color":"blue"}}' },
    ]));
    const page = await open();
    await page.click('summary');
    await page.check('#click-tool');
    await page.click('summary');
    await attachViaPicker(page, [{ name: 'scene.png', buffer: scene }]);
    await sendMessage(page, 'Press the button');
    await page.waitForFunction(() => document.querySelectorAll('.tool-call').length === 2);
    await page.locator('#send').waitFor();
    const tools = server.calls.at(-1)!.body.tools as { function: { name: string } }[];
    assert.equal(tools[0]!.function.name, 'click');

    const cards = page.locator('.tool-call');
    assert.equal(await cards.nth(0).locator('.tool-name').innerText(), 'click');
    assert.equal(await cards.nth(0).locator('pre').innerText(), JSON.stringify({ x: 250, y: 500 }, null, 2));
    assert.equal(await cards.nth(1).locator('.tool-name').innerText(), 'lookup');
    assert.equal(await cards.nth(1).locator('pre').innerText(), JSON.stringify({ query: 'blue block', limit: 3, filters: { color: 'blue' } }, null, 2));

    const img = (await page.locator('.annotated img').boundingBox())!;
    const pt = (await page.locator('.annotated .ov-point.click').boundingBox())!;
    assert.ok(Math.abs(pt.x + pt.width / 2 - (img.x + 0.25 * img.width)) < 1.5);
    assert.ok(Math.abs(pt.y + pt.height / 2 - (img.y + 0.5 * img.height)) < 1.5);

    // the next request carries the assistant's tool calls and a tool reply for each
    server.answer(says(['ok']));
    await sendMessage(page, 'next');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 2 && !document.querySelector('.cursor'));
    const msgs = server.calls.at(-1)!.body.messages as { role: string; tool_calls?: { function: { name: string } }[]; tool_call_id?: string }[];
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'user']);
    assert.deepEqual(msgs[1]!.tool_calls!.map((c) => c.function.name), ['click', 'lookup']);
    assert.deepEqual([msgs[2]!.tool_call_id, msgs[3]!.tool_call_id], ['call_0', 'call_1']);
    await page.screenshot({ path: outputPath('chat-tools.png') });
    await page.close();
  });

  it('the stop button aborts the request (the server sees the connection close)', async () => {
    let call!: import('./harness.ts').CompletionCall;
    server.answer((c) => {
      call = c;
      startSse(c.res);
      writeText(c.res, 'thinking');
      // and never ends on its own
    });
    const page = await open();
    await sendMessage(page, 'Talk forever');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .text')?.textContent === 'thinking');
    assert.equal(call.isAborted(), false);
    await page.click('#stop');
    await Promise.race([call.aborted, new Promise((_, rej) => setTimeout(() => rej(new Error('server never saw the abort')), 5000))]);
    assert.equal(call.isAborted(), true);
    await page.locator('.msg.assistant .stopped').waitFor();
    assert.equal(await page.locator('.msg.assistant .stopped').innerText(), 'stopped');
    assert.equal(await page.isVisible('#send'), true);
    assert.equal(await page.isHidden('#stop'), true);
    await page.close();
  });

  it('shows a server error', async () => {
    server.answer(({ res }) => void res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: 'too many images' } })));
    const page = await open();
    await sendMessage(page, 'hi');
    await page.locator('.msg.assistant.error').waitFor();
    assert.match(await page.locator('.msg.assistant .stopped').innerText(), /too many images/);
    await page.close();
  });

  it('loads nothing remote from model output: no request to a trap, no remote <img>, markup stays text', async () => {
    const t = await trap();
    try {
      const base = `http://127.0.0.1:${t.port}`;
      const answer = [
        `Here: ![x](${base}/leak) and <img src=${base}/x> and <img src="${base}/y" onerror="window.__pwned=1">`,
        `\n<script>window.__pwned=2</script><a href="${base}/auto">a</a> [docs](${base}/link) [bad](javascript:window.__pwned=3)`,
        `\n<iframe src="${base}/frame"></iframe><link rel="prefetch" href="${base}/pf"><style>@import url(${base}/css)</style>`,
      ];
      server.answer(says(answer));
      const page = await open();
      const remote: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) remote.push(r.url());
      });
      await attachViaPicker(page, [{ name: 'red.png', buffer: red }]);
      await sendMessage(page, 'leak?');
      await page.locator('#send').waitFor();
      await page.waitForFunction(() => !document.querySelector('.cursor'));
      await page.waitForTimeout(500);

      const text = await assistantText(page);
      assert.match(text, /<img src=http:\/\/127\.0\.0\.1:\d+\/x>/);
      assert.match(text, /<script>window.__pwned=2<\/script>/);
      assert.match(text, /\[bad\]\(javascript:window.__pwned=3\)/, 'a javascript: link stays text');
      const srcs = await page.locator('img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));
      assert.equal(srcs.length, 1, "the only <img> is the user's own image");
      for (const s of srcs) assert.ok(s.startsWith('data:') || s.startsWith('blob:') || s.startsWith(server.url), `img src ${s}`);
      assert.equal(await page.locator('.msg.assistant iframe, .msg.assistant script, .msg.assistant style, .msg.assistant link').count(), 0);

      const placeholder = page.locator('.remote-image');
      assert.equal(await placeholder.count(), 1);
      assert.match(await placeholder.innerText(), /load remote image\?/);
      assert.equal(await placeholder.getAttribute('data-url'), `${base}/leak`);
      const a = page.locator('.msg.assistant a');
      assert.equal(await a.count(), 1, 'only the markdown link is a link');
      assert.equal(await a.getAttribute('href'), `${base}/link`);
      assert.equal(await a.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await a.getAttribute('target'), '_blank');
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

      // and the CSP would stop a remote image even if one were put in the page
      await page.evaluate((u) => {
        const i = document.createElement('img');
        i.src = u;
        document.body.append(i);
      }, `${base}/csp`);
      await page.waitForTimeout(300);
      assert.equal(t.count(), 0, 'connections to the trap');
      assert.deepEqual(remote.filter((u) => !u.endsWith('/csp')), []);
      await page.close();
    } finally {
      await t.close();
    }
  });
});
