/** Shared by the agent tests: a scripted model, a connection-counting trap on 127.0.0.1, text rendered into PNGs. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { readGGUF, tensorData, writeGGUF } from '../../src/formats/gguf.ts';
import { VisionLanguageModel } from '../../src/runtime/vlm.ts';
import { writeTinyVlm, type TinyVlmFiles } from '../helpers/tiny-vlm.ts';
import type { AgentModel } from '../../src/agent/loop.ts';
import type { Message } from '../../src/runtime/vlm.ts';
import type { GenerationEvent } from '../../src/runtime/generate.ts';

/** A model whose turn i says `script(messages, i)` (or the i-th string), in two token events and a done event. */
export function scriptedModel(script: readonly string[] | ((messages: readonly Message[], turn: number) => string)): AgentModel & { seen: Message[][] } {
  const seen: Message[][] = [];
  return {
    seen,
    async *chat(messages): AsyncGenerator<GenerationEvent> {
      const turn = seen.length;
      seen.push(messages.map((m) => ({ ...m })));
      const text = typeof script === 'function' ? script(messages, turn) : (script[turn] ?? 'done');
      const half = Math.floor(text.length / 2);
      yield { type: 'token', id: 0, text: text.slice(0, half) };
      yield { type: 'token', id: 0, text: text.slice(half) };
      yield {
        type: 'done', finishReason: 'stop', text: '',
        stats: { promptTokens: 0, completionTokens: 2, prefillMs: 0, prefillTokensPerS: 0, decodeMs: 0, decodeTokensPerS: 0, timeToFirstTokenMs: 0 },
      };
    },
  };
}

export const call = (name: string, args: unknown): string => `<tool_call>${JSON.stringify({ name, arguments: args })}</tool_call>`;

/** An HTTP listener on 127.0.0.1 that counts every TCP connection (anything fetched from it). */
export async function trap(): Promise<{ port: number; url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server: Server = createServer((_req, res) => res.end('secret-page'));
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port, url: `http://127.0.0.1:${port}`, connections: () => connections,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A PNG with `lines` of black text on white (SVG <text> rendered by sharp), optionally with a red circle. */
export async function textPng(lines: readonly string[], opts: { width?: number; circle?: boolean } = {}): Promise<Buffer> {
  const width = opts.width ?? 640;
  const height = 40 + 28 * lines.length + (opts.circle ? 80 : 0);
  const text = lines.map((l, i) => `<text x="12" y="${32 + 28 * i}" font-family="sans-serif" font-size="20" fill="#000">${xml(l)}</text>`).join('');
  const circle = opts.circle ? `<circle cx="${width / 2}" cy="${height - 44}" r="30" fill="#e02020"/>` : '';
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${text}${circle}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

let tiny: Promise<{ files: TinyVlmFiles; model: VisionLanguageModel }> | null = null;

/**
 * The tiny random VLM of test/helpers, with its LM's context raised from 512 to 4096 positions (a metadata
 * rewrite of the GGUF; random weights and RoPE do not care): tool definitions in the prompt take ~1 token
 * per character with its 400-token vocabulary.
 */
export function tinyAgentModel(): Promise<{ files: TinyVlmFiles; model: VisionLanguageModel }> {
  tiny ??= (async () => {
    const files = await writeTinyVlm();
    const f = readGGUF(readFileSync(files.model));
    const metadata = { ...f.metadata, 'llama.context_length': 4096 };
    const tensors = f.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: tensorData(f, t) }));
    writeFileSync(files.model, writeGGUF({ metadata, metadataTypes: f.metadataTypes, tensors, alignment: f.alignment }));
    return { files, model: await VisionLanguageModel.load({ model: files.model, mmproj: files.mmproj }) };
  })();
  return tiny;
}
