/**
 * Server benchmark: N concurrent streaming clients × M requests each, every request with an image, against
 * a live `serve()` on 127.0.0.1 with the tiny random VLM (test/helpers/tiny-vlm.ts).
 * Options: --clients N (32), --requests M (10), --max-tokens T (16), --concurrency C (server's active sequences, 8).
 *
 * Last stdout line: {"suite":"serve","machine":{…},"figures":[{name,threads,value,unit,ref}]}
 */
import { readFileSync } from 'node:fs';
import { writeTinyVlm } from '../test/helpers/tiny-vlm.ts';
import { VisionLanguageModel } from '../src/runtime/vlm.ts';
import { serve } from '../src/server/serve.ts';
import { flag, log, machine, type Figure } from './common.ts';

const quantile = (xs: number[], q: number): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** One streaming request; returns latency (ms) and completion tokens. */
async function streamOnce(url: string, body: string, deadline: number): Promise<{ ms: number; tokens: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const text = await res.text();
  if (!text.trimEnd().endsWith('data: [DONE]')) throw new Error('stream ended without [DONE]');
  let tokens = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('data: {') && line.includes('"usage"')) tokens = (JSON.parse(line.slice(6)) as { usage: { completion_tokens: number } }).usage.completion_tokens;
  return { ms: performance.now() - t0, tokens };
}

export async function run(args: string[]): Promise<void> {
  const clients = flag(args, 'clients', 32);
  const requests = flag(args, 'requests', 10);
  const maxTokens = flag(args, 'max-tokens', 16);
  const concurrency = flag(args, 'concurrency', 8);
  const files = await writeTinyVlm();
  const model = await VisionLanguageModel.load({ model: files.model, mmproj: files.mmproj });
  const server = await serve({
    model, modelName: 'vista-tiny', host: '127.0.0.1', port: 0, log: (m) => log(m),
    limits: { maxActive: concurrency, maxQueue: clients, maxTokens, timeoutMs: 120_000 },
  });
  const png = `data:image/png;base64,${readFileSync(files.png).toString('base64')}`;
  log(`serve: ${clients} clients × ${requests} requests, ${maxTokens} tokens each, ${concurrency} decoding at once, at ${server.url}`);

  const latencies: number[] = [];
  let tokens = 0;
  let errors = 0;
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const deadline = Date.now() + 10 * 60_000; // the whole run is bounded in time as well as in count
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let r = 0; r < requests && Date.now() < deadline; r++) {
      const body = JSON.stringify({
        model: 'vista-tiny', stream: true, stream_options: { include_usage: true }, max_tokens: maxTokens, temperature: 0.8, seed: c * 1000 + r,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: png } }, { type: 'text', text: 'What is in the image?' }] }],
      });
      try {
        const x = await streamOnce(server.url, body, deadline);
        latencies.push(x.ms);
        tokens += x.tokens;
      } catch (e) {
        errors++;
        if (errors <= 5) log(`serve: request failed: ${(e as Error).message}`);
      }
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  await server.close();

  const p50 = quantile(latencies, 0.5);
  const p99 = quantile(latencies, 0.99);
  log(`serve: ${latencies.length} ok, ${errors} errors in ${wall.toFixed(1)} s; latency p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms; ` +
    `${(tokens / wall).toFixed(1)} tokens/s; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
  const figures: Figure[] = [
    { name: 'serve_latency_p50', threads: 1, value: p50, unit: 'ms', ref: null },
    { name: 'serve_latency_p99', threads: 1, value: p99, unit: 'ms', ref: null },
    { name: 'serve_tokens_per_s', threads: 1, value: tokens / wall, unit: 'tokens/s', ref: null },
    { name: 'serve_requests_per_s', threads: 1, value: latencies.length / wall, unit: 'requests/s', ref: null },
    { name: 'serve_errors', threads: 1, value: errors, unit: 'count', ref: null },
    { name: 'serve_peak_rss', threads: 1, value: peakRss / 2 ** 20, unit: 'MiB', ref: null },
  ];
  console.log(JSON.stringify({ suite: 'serve', machine: { ...machine(), clients, requests, maxTokens, concurrency }, figures }));
}
