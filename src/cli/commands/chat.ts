/** `vista chat`: stream an answer about images from the command line, or chat interactively. */
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../errors.ts';
import { VisionLanguageModel, type ContentPart, type Message } from '../../runtime/vlm.ts';
import type { SamplerOptions } from '../../runtime/sampler.ts';
import { parse } from '../args.ts';

/** The bundled default model (models/default-*.gguf at the package root), if it has been trained. */
export function defaultModelPaths(): { model: string; mmproj: string } | null {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  for (const base of [root, path.resolve(root, '..')]) {
    const model = path.join(base, 'models', 'vista-shapes.gguf');
    const mmproj = path.join(base, 'models', 'mmproj-vista-shapes.gguf');
    if (existsSync(model) && existsSync(mmproj)) return { model, mmproj };
  }
  return null;
}

/** --model/--mmproj as given, or the bundled default model when no --model is named. */
export function resolveModelPaths(model: string | undefined, mmproj: string | undefined): { model: string; mmproj: string | undefined } {
  if (model) return { model, mmproj };
  const d = defaultModelPaths();
  if (!d) throw new InputError('no --model given and the bundled default model is not in models/ (train it with `npm run train:default`)');
  return { model: d.model, mmproj: mmproj ?? d.mmproj };
}

const USAGE = `Usage: vista chat [--model LM.gguf --mmproj P.gguf] [--image a.png ...] [options] ["prompt"]

Without a prompt, starts an interactive chat (images given with --image go with the first message).
Without --model, uses the bundled default model.

Options:
  --image FILE          an image (PNG, JPEG, WebP, GIF); repeatable
  --system TEXT         a system message
  --max-tokens N        most tokens to generate (default 256)
  --temperature T       0 = greedy (default 0)
  --top-k K, --top-p P, --min-p P, --seed S
  --stats               print timing statistics after each answer
  --verbose             stack traces on errors`;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InputError(`--${name} must be a number, got '${v}'`);
  return n;
}

export async function chat(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' }, mmproj: { type: 'string' }, image: { type: 'string', multiple: true },
    system: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' },
    'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' }, seed: { type: 'string' },
    stats: { type: 'boolean' },
  }, USAGE);
  if (values.help) return void console.log(USAGE), 0;
  const { model, mmproj } = resolveModelPaths(values.model, values.mmproj);
  const images = values.image ?? [];
  if (images.length && !mmproj) throw new InputError('--image needs --mmproj (the vision part of the model)');
  for (const f of images) if (!existsSync(f)) throw new InputError(`image not found: ${f}`);
  const vlm = await VisionLanguageModel.load({ model, mmproj });
  const sampler: SamplerOptions = {
    temperature: num(values.temperature, 'temperature') ?? 0,
    topK: num(values['top-k'], 'top-k'), topP: num(values['top-p'], 'top-p'), minP: num(values['min-p'], 'min-p'),
    seed: num(values.seed, 'seed'),
  };
  const maxTokens = num(values['max-tokens'], 'max-tokens') ?? 256;
  const history: Message[] = values.system ? [{ role: 'system', content: values.system }] : [];
  let pendingImages = images;

  const ask = async (prompt: string): Promise<void> => {
    const content: ContentPart[] = [...pendingImages.map((f): ContentPart => ({ type: 'image', image: f })), { type: 'text', text: prompt }];
    pendingImages = [];
    history.push({ role: 'user', content });
    let answer = '';
    for await (const e of vlm.chat(history, { maxTokens, sampler })) {
      answer += e.text;
      process.stdout.write(e.text);
      if (e.type === 'done') {
        process.stdout.write('\n');
        if (values.stats) {
          const s = e.stats;
          console.error(`[${s.promptTokens} prompt tokens (${s.cachedTokens ?? 0} cached), ${s.completionTokens} generated; ` +
            `image encode ${(s.imageEncodeMs ?? 0).toFixed(0)} ms (${s.imagesEncoded ?? 0} encoded), ` +
            `prefill ${s.prefillTokensPerS.toFixed(1)} tok/s, decode ${s.decodeTokensPerS.toFixed(1)} tok/s, first token ${s.timeToFirstTokenMs.toFixed(0)} ms; ${e.finishReason}]`);
        }
      }
    }
    history.push({ role: 'assistant', content: answer });
  };

  if (positionals.length) {
    await ask(positionals.join(' '));
    return 0;
  }
  // the async iterator buffers lines that arrive while an answer is being generated (piped stdin)
  const rl = createInterface({ input: process.stdin, terminal: false });
  process.stdout.write('> ');
  for await (const line of rl) {
    if (line.trim() === '/exit') break;
    if (line.trim() !== '') await ask(line);
    process.stdout.write('> ');
  }
  rl.close();
  process.stdout.write('\n');
  return 0;
}
