/** Small HTTP helpers shared by the routes: JSON bodies and streamed responses (SSE, NDJSON). */
import type { Context } from 'hono';
import { HttpError } from './errors.ts';

/** The request body as JSON; malformed JSON is a 400. (Size is limited by the body-limit middleware.) */
export async function readJson(c: Context): Promise<unknown> {
  let text: string;
  try {
    text = await c.req.text();
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, 'could not read the request body', 'invalid_body');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON', 'invalid_json');
  }
}

type Producer = () => AsyncGenerator<object, void, undefined>;

function stream(c: Context, produce: Producer, encode: (o: object) => string, end: string, log: (m: string) => void, onCancel: () => void): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let it: AsyncGenerator<object, void, undefined> | null = null;
  // a client that goes away may never pull or cancel again: end the generation from the signal too
  c.req.raw.signal.addEventListener('abort', onCancel, { once: true });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      it ??= produce();
      try {
        const r = await it.next();
        if (r.done) {
          if (end) controller.enqueue(enc.encode(end));
          controller.close();
        } else controller.enqueue(enc.encode(encode(r.value)));
      } catch (e) {
        log(`stream failed: ${(e as Error).stack ?? e}`);
        controller.close();
      }
    },
    cancel() {
      onCancel();
      void it?.return(undefined);
    },
  });
}

const STREAM_HEADERS = { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/** Server-sent events: `data: {json}\n\n` per object, then `data: [DONE]`. */
export function eventStream(c: Context, log: (m: string) => void, produce: Producer, onCancel: () => void): Response {
  const body = stream(c, produce, (o) => `data: ${JSON.stringify(o)}\n\n`, 'data: [DONE]\n\n', log, onCancel);
  return c.newResponse(body, 200, { ...STREAM_HEADERS, 'content-type': 'text/event-stream; charset=utf-8' });
}

/** Newline-delimited JSON (Ollama's streaming). */
export function ndjsonStream(c: Context, log: (m: string) => void, produce: Producer, onCancel: () => void): Response {
  const body = stream(c, produce, (o) => `${JSON.stringify(o)}\n`, '', log, onCancel);
  return c.newResponse(body, 200, { ...STREAM_HEADERS, 'content-type': 'application/x-ndjson' });
}
