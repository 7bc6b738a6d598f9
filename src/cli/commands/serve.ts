/** `vista serve`: an OpenAI- and Ollama-compatible HTTP server for a vision-language model. */
import path from 'node:path';
import { InputError } from '../../errors.ts';
import { VisionLanguageModel } from '../../runtime/vlm.ts';
import { DEFAULT_LIMITS, type ServerLimits } from '../../server/app.ts';
import { serve } from '../../server/serve.ts';
import { parse } from '../args.ts';
import { resolveModelPaths } from './chat.ts';

const USAGE = `Usage: vista serve [--model LM.gguf --mmproj P.gguf] [options]

Serves POST /v1/chat/completions, GET /v1/models (OpenAI), POST /api/chat, GET /api/tags (Ollama) and GET /health.
Without --model, serves the bundled default model.

Options:
  --host H               address to listen on (default 127.0.0.1)
  --port N               port (default 8080; 0 = any free port)
  --api-key KEY          require "Authorization: Bearer KEY" (default: $VISTA_API_KEY, else none)
  --name NAME            model name reported to clients (default: the model file's name)
  --max-body BYTES       largest request body (default ${DEFAULT_LIMITS.maxBodyBytes})
  --max-images N         most images per request (default ${DEFAULT_LIMITS.maxImages})
  --max-tokens N         most tokens per answer (default ${DEFAULT_LIMITS.maxTokens})
  --timeout SECONDS      time limit per request (default ${DEFAULT_LIMITS.timeoutMs / 1000})
  --concurrency N        sequences decoding at once (default ${DEFAULT_LIMITS.maxActive})
  --queue N              requests waiting beyond those before 429 (default ${DEFAULT_LIMITS.maxQueue})
  --allow-private-urls   let image URLs reach loopback and private addresses`;

function int(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

/** Parse flags, load the model, listen, print the URL; resolves with the exit code when the server closes (SIGINT/SIGTERM). */
export async function runServe(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    model: { type: 'string' }, mmproj: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
    'api-key': { type: 'string' }, name: { type: 'string' }, 'max-body': { type: 'string' }, 'max-images': { type: 'string' },
    'max-tokens': { type: 'string' }, timeout: { type: 'string' }, concurrency: { type: 'string' }, queue: { type: 'string' },
    'allow-private-urls': { type: 'boolean' },
  }, USAGE);
  if (values.help) return void console.log(USAGE), 0;
  const { model, mmproj } = resolveModelPaths(values.model, values.mmproj);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new InputError(`--timeout must be a number of seconds > 0, got '${values.timeout}'`);
  const limits: Partial<ServerLimits> = Object.fromEntries(Object.entries({
    maxBodyBytes: int(values['max-body'], 'max-body', 1024), maxImages: int(values['max-images'], 'max-images', 0),
    maxTokens: int(values['max-tokens'], 'max-tokens', 1), timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    maxActive: int(values.concurrency, 'concurrency', 1), maxQueue: int(values.queue, 'queue', 0),
    allowPrivateUrls: values['allow-private-urls'] ?? undefined,
  }).filter(([, v]) => v !== undefined));
  const vlm = await VisionLanguageModel.load({ model, mmproj });
  const server = await serve({
    model: vlm, modelName: values.name ?? path.basename(model).replace(/\.gguf$/i, ''), limits,
    apiKey: values['api-key'] ?? process.env.VISTA_API_KEY, host: values.host ?? '127.0.0.1', port: int(values.port, 'port', 0) ?? 8080,
  });
  console.log(`vista serve: ${server.url}  (OpenAI: ${server.url}/v1, Ollama: ${server.url}/api)`);
  await new Promise<void>((resolve) => {
    const stop = () => void server.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
