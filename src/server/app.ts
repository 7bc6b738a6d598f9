/**
 * vista's HTTP API as a Hono app (no sockets here: `app.fetch(request)` works in tests and on any runtime;
 * `serve` in ./serve.ts is the Node adapter). Routes:
 *
 * - `POST /v1/chat/completions`, `GET /v1/models` — OpenAI
 * - `POST /api/chat`, `GET /api/tags` — Ollama
 * - `GET /health`
 *
 * Every error, from any route or middleware, becomes a response in `app.onError` via `errorResponse`.
 *
 * @example
 * const app = createServer({ model: await VisionLanguageModel.load({ model, mmproj }), modelName: 'vista' });
 * const res = await app.fetch(new Request('http://x/health'));
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { VisionLanguageModel } from '../runtime/vlm.ts';
import { HttpError, errorResponse, isInternal } from './errors.ts';
import { Scheduler } from './scheduler.ts';
import { chatCompletions, listModels, type RouteContext } from './openai.ts';
import { ollamaChat, ollamaTags } from './ollama.ts';
import type { Connector, Resolver } from './net.ts';
import type { GrammarLimits } from '../runtime/grammar.ts';
import { uiRoutes } from './ui/routes.ts';

export interface ServerLimits {
  /** Largest request body in bytes (413 above). */
  readonly maxBodyBytes: number;
  readonly maxImages: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  /** Most tokens a request may generate (larger requests are clamped). */
  readonly maxTokens: number;
  /** Whole-request time limit (queue, images, generation). */
  readonly timeoutMs: number;
  /** Time limit for fetching one image URL (all redirects). */
  readonly fetchTimeoutMs: number;
  /** Sequences decoding at once. */
  readonly maxActive: number;
  /** Requests waiting beyond those (429 above). */
  readonly maxQueue: number;
  /** Let image URLs reach loopback / private / link-local addresses. */
  readonly allowPrivateUrls: boolean;
  readonly grammar: GrammarLimits;
  /** For tests: name resolution and dialling of image URL hosts. */
  readonly resolve?: Resolver;
  readonly connect?: Connector;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 20 * 1024 * 1024, maxImages: 8, maxImageBytes: 10 * 1024 * 1024, maxImagePixels: 16e6, maxTokens: 512,
  timeoutMs: 120_000, fetchTimeoutMs: 10_000, maxActive: 4, maxQueue: 32, allowPrivateUrls: false, grammar: { maxStringLength: 256 },
};

export interface ServerOptions {
  readonly model: VisionLanguageModel;
  /** The name clients use in `model` (any name is accepted). */
  readonly modelName: string;
  /** If set, `Authorization: Bearer <apiKey>` is required on /v1 and /api routes. */
  readonly apiKey?: string;
  readonly limits?: Partial<ServerLimits>;
  /** Where internal errors are reported (default: stderr). */
  readonly log?: (msg: string) => void;
}

export type VistaApp = Hono & { readonly scheduler: Scheduler };

export function createServer(opts: ServerOptions): VistaApp {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = opts.log ?? ((m: string) => console.error(`vista serve: ${m}`));
  const scheduler = new Scheduler({ maxActive: limits.maxActive, maxQueue: limits.maxQueue });
  const rc: RouteContext = {
    model: opts.model, modelName: opts.modelName, scheduler, maxTokens: limits.maxTokens, timeoutMs: limits.timeoutMs, log,
    grammar: limits.grammar,
    images: {
      maxImages: limits.maxImages, maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels,
      fetchTimeoutMs: limits.fetchTimeoutMs, allowPrivateUrls: limits.allowPrivateUrls, resolve: limits.resolve, connect: limits.connect,
    },
  };
  const app = new Hono();

  app.onError((e, c) => {
    if (isInternal(e)) log(`internal error on ${c.req.method} ${c.req.path}: ${(e as Error).stack ?? e}`);
    const r = errorResponse(e);
    if (c.req.path.startsWith('/api/')) return c.json({ error: r.body.error.message }, r.status as 400, r.headers);
    return c.json(r.body, r.status as 400, r.headers);
  });
  app.notFound((c) => {
    throw new HttpError(404, `no route for ${c.req.method} ${c.req.path}`, 'not_found');
  });

  app.route('/', uiRoutes()); // the web chat UI: GET / and /ui/*
  app.get('/health', (c) => c.json({ status: 'ok', model: opts.modelName, ...scheduler.stats }));

  if (opts.apiKey) {
    const want = Buffer.from(opts.apiKey);
    const auth = async (c: { req: { header(n: string): string | undefined } }, next: () => Promise<void>) => {
      const got = Buffer.from(/^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1]?.trim() ?? '');
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw new HttpError(401, 'missing or invalid API key (Authorization: Bearer …)', 'invalid_api_key');
      await next();
    };
    app.use('/v1/*', auth);
    app.use('/api/*', auth);
  }
  const limit = bodyLimit({
    maxSize: limits.maxBodyBytes,
    onError: () => {
      throw new HttpError(413, `request body is larger than ${limits.maxBodyBytes} bytes`, 'body_too_large', null, { Connection: 'close' });
    },
  });
  app.use('/v1/*', limit);
  app.use('/api/*', limit);

  app.post('/v1/chat/completions', (c) => chatCompletions(c, rc));
  app.get('/v1/models', (c) => c.json(listModels(rc)));
  app.get('/v1/models/:id', (c) => c.json({ id: c.req.param('id'), object: 'model', created: 0, owned_by: 'vista' }));
  app.post('/api/chat', (c) => ollamaChat(c, rc));
  app.get('/api/tags', (c) => c.json(ollamaTags(rc)));
  app.get('/api/version', (c) => c.json({ version: '0.1.0' }));

  return Object.assign(app, { scheduler });
}
