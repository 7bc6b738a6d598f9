/**
 * The web chat UI: plain static files in this folder (no build step), served as `GET /` (index.html) and
 * `GET /ui/<file>` from a fixed allow-list, with a strict Content-Security-Policy (nothing remote can load).
 *
 * The files are read from this module's folder; when running compiled from `dist/src/server/ui/` (where tsc
 * copies no static files) they are taken from the checkout's `src/server/ui/`.
 *
 * @example app.route('/', uiRoutes());
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Hono } from 'hono';

export const UI_CSP = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** The folder holding the UI files (src/server/ui, also when running from dist). */
export function uiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [here, path.resolve(here, '../../../../src/server/ui')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? here;
}

export function uiRoutes(dir: string = uiDir()): Hono {
  const cache = new Map<string, Buffer>();
  const load = (name: string): Buffer | null => {
    let b = cache.get(name);
    if (!b) {
      try {
        b = readFileSync(path.join(dir, name));
      } catch {
        return null;
      }
      cache.set(name, b);
    }
    return b;
  };
  const send = (name: string): Response | null => {
    const type = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
    const body = type ? load(name) : null;
    if (!type || !body) return null;
    return new Response(new Uint8Array(body), {
      headers: {
        'Content-Type': type, 'Content-Security-Policy': UI_CSP, 'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY', 'Cache-Control': 'no-cache',
      },
    });
  };
  const ui = new Hono();
  ui.get('/', (c) => send('index.html') ?? c.notFound());
  ui.get('/ui/:file', (c) => send(c.req.param('file')) ?? c.notFound());
  ui.get('/favicon.ico', (c) => send('favicon.svg') ?? c.notFound());
  return ui;
}
