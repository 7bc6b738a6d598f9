/**
 * For the web UI tests: Debian's Chromium driven by playwright-core, a UI server whose completion endpoint is
 * scripted by the test, a trap listener that counts every connection, and small PNGs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { getRequestListener } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { uiRoutes } from '../../src/server/ui/routes.ts';

/** Debian's Chromium (override with VISTA_CHROMIUM). */
export const CHROMIUM = process.env.VISTA_CHROMIUM || '/usr/bin/chromium';
/** Why the browser tests are skipped, or false when they run. */
export const SKIP: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set VISTA_CHROMIUM to run the web UI browser tests`;

export const OUTPUT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tmp/test-output/ui');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export function outputPath(name: string): string {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  return path.join(OUTPUT_DIR, name);
}

/** A solid-colour PNG (optionally with a differently coloured rectangle in it). */
export async function png(width: number, height: number, rgb: [number, number, number], rect?: { left: number; top: number; width: number; height: number; rgb: [number, number, number] }): Promise<Buffer> {
  let img = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  if (rect) {
    const patch = await sharp({ create: { width: rect.width, height: rect.height, channels: 3, background: { r: rect.rgb[0], g: rect.rgb[1], b: rect.rgb[2] } } }).png().toBuffer();
    img = img.composite([{ input: patch, left: rect.left, top: rect.top }]);
  }
  return img.png().toBuffer();
}

export interface CompletionCall {
  body: { messages: { role: string; content: unknown }[]; stream?: boolean; tools?: unknown[]; [k: string]: unknown };
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** Resolves when the client closes the connection before the answer ended. */
  aborted: Promise<void>;
  isAborted(): boolean;
}

export type Responder = (call: CompletionCall) => void | Promise<void>;

export interface UiServer {
  url: string;
  /** Every completion request, in order. */
  calls: CompletionCall[];
  /** The next completions are answered by these, in order. */
  answer(...r: Responder[]): void;
  close(): Promise<void>;
}

/** The UI (the real route module) plus a scripted OpenAI-style /v1 on 127.0.0.1:0. */
export async function uiServer(): Promise<UiServer> {
  const serveUi = getRequestListener(uiRoutes().fetch);
  const queue: Responder[] = [];
  const calls: CompletionCall[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'fake-vlm', object: 'model' }] }));
      return;
    }
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
      void serveUi(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let aborted = false;
      let onAbort!: () => void;
      const abortedP = new Promise<void>((r) => (onAbort = r));
      res.on('close', () => {
        if (!res.writableFinished) {
          aborted = true;
          onAbort();
        }
      });
      const call: CompletionCall = { body: JSON.parse(Buffer.concat(chunks).toString('utf8')), req, res, aborted: abortedP, isAborted: () => aborted };
      calls.push(call);
      const r = queue.shift();
      if (!r) {
        res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { message: 'no scripted answer' } }));
        return;
      }
      void Promise.resolve(r(call)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, calls,
    answer: (...r) => queue.push(...r),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 0, model: 'fake-vlm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

export function startSse(res: http.ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.write(chunk({ role: 'assistant', content: '' }));
}
export const writeText = (res: http.ServerResponse, text: string) => res.write(chunk({ content: text }));
export const writeToolCalls = (res: http.ServerResponse, calls: { name: string; arguments: string }[]) =>
  res.write(chunk({ tool_calls: calls.map((c, index) => ({ index, id: `call_${index}`, type: 'function', function: c })) }));
export function endSse(res: http.ServerResponse, finish = 'stop'): void {
  res.write(chunk({}, finish));
  res.end('data: [DONE]\n\n');
}

/** Answers with these text pieces (each its own SSE chunk) and optional tool calls. */
export const says = (pieces: string[], toolCalls: { name: string; arguments: string }[] = []): Responder => ({ res }) => {
  startSse(res);
  for (const p of pieces) writeText(res, p);
  if (toolCalls.length) writeToolCalls(res, toolCalls);
  endSse(res, toolCalls.length ? 'tool_calls' : 'stop');
};

/** A TCP listener that counts connections (and answers nothing useful). */
export async function trap(): Promise<{ port: number; count(): number; close(): Promise<void> }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    count: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Attach PNGs through the hidden file input. */
export async function attachViaPicker(page: Page, files: { name: string; buffer: Buffer }[]): Promise<void> {
  await page.setInputFiles('#file', files.map((f) => ({ name: f.name, mimeType: 'image/png', buffer: f.buffer })));
}

/** Type a message and press Enter. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  await page.fill('#prompt', text);
  await page.press('#prompt', 'Enter');
}
