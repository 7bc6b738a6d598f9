/**
 * Runtime benchmark: prefill and decode tokens/s of a 168 M-parameter llama GGUF (Q8_0 and F16, made by
 * ../shared/fixtures/make_gguf.py as ../shared/bench/README.md describes), side by side in the same run
 * with llama.cpp through node-llama-cpp (../shared/bench/llama_ref.mjs); image encode ms of a ViT-B/16 at
 * 224² (random weights); and the peak RSS of a process generating with the Q8_0 model.
 * Options: --quick (1 rep), --no-ref, --threads 1,2.
 *
 * Last stdout line: {"suite":"runtime","machine":{…},"figures":[{name,threads,value,unit,ref}]}
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { log, machine, median, root, sharedDir as shared, type Figure } from './common.ts';
import { initBackend } from '../src/backend/index.ts';
import { openGGUF } from '../src/platform/gguf-file.ts';
import { loadLlamaGGUF } from '../src/runtime/gguf-llama.ts';
import { Decoder } from '../src/runtime/generate.ts';
import { argmaxLogits } from '../src/runtime/sampler.ts';
import { VisionTower } from '../src/models/vit.ts';
import { Rng, randn, noGrad, tidy } from '../src/tensor/index.ts';

const cacheDir = path.join(root, '.bench');
const PROMPT = 128;
const GEN = 64;

/** The same deterministic prompt as llama_ref.mjs: BOS + LCG ids in [259, vocab). */
function makePrompt(n: number, vocab: number): number[] {
  let x = 12345;
  const t = [1];
  while (t.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    t.push(259 + (x % (vocab - 259)));
  }
  return t;
}

function ensureModel(type: 'q8_0' | 'f16'): string {
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `big-${type}.gguf`);
  if (existsSync(file)) return file;
  log(`runtime: writing ${file} with make_gguf.py`);
  const r = spawnSync('python3', [path.join(shared, 'fixtures', 'make_gguf.py'), 'write', file, '--type', type, '--dim', '1024', '--layers', '8',
    '--heads', '16', '--ff', '2816', '--vocab', '32000'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`make_gguf.py failed (exit ${r.status}); it needs python3 with numpy`);
  return file;
}

/** vista prefill/decode tok/s (median over reps after one warmup) and the first generated tokens. */
function vistaSpeed(file: string, threads: number, reps: number): { prefill: number; decode: number; first: number[] } {
  initBackend({ threads });
  const h = openGGUF(file);
  const model = loadLlamaGGUF(h.file, h.read.bind(h));
  h.close();
  const prompt = makePrompt(PROMPT, model.config.vocab_size);
  const pre: number[] = [];
  const dec: number[] = [];
  let first: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const d = new Decoder(model, PROMPT + GEN);
    const t0 = performance.now();
    let logits = d.feed(prompt, true)!;
    const t1 = performance.now();
    let tok = argmaxLogits(logits);
    const toks = [tok];
    const t2 = performance.now();
    while (toks.length < GEN) {
      logits = d.feed([tok], true)!;
      tok = argmaxLogits(logits);
      toks.push(tok);
    }
    const t3 = performance.now();
    d.dispose();
    if (r > 0) {
      pre.push(PROMPT / ((t1 - t0) / 1e3));
      dec.push((GEN - 1) / ((t3 - t2) / 1e3));
    }
    first = toks.slice(0, 8);
  }
  return { prefill: median(pre), decode: median(dec), first };
}

type LlamaRef = { models: Record<string, { by_threads: Record<string, { prompt_tok_s: number; gen_tok_s: number; first_generated_tokens: number[] }> }> };

function llamaRef(files: string[], threads: number[], reps: number): LlamaRef | null {
  const script = path.join(shared, 'bench', 'llama_ref.mjs');
  if (!existsSync(script) || !existsSync(path.join(root, 'node_modules', 'node-llama-cpp'))) {
    log('llama.cpp reference: llama_ref.mjs or node-llama-cpp missing; skipped');
    return null;
  }
  const args = [script, '--models', files.join(','), '--threads', threads.join(','), '--reps', String(reps), '--prompt', String(PROMPT), '--gen', String(GEN)];
  log(`llama.cpp reference: node ${args.join(' ')}`);
  const r = spawnSync(process.execPath, args, { cwd: root, env: { ...process.env, NLC_DIR: root }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  try {
    return JSON.parse((r.stdout ?? '').trim().split('\n').pop() ?? '') as LlamaRef;
  } catch {
    log(`llama.cpp reference: no JSON output (exit ${r.status})`);
    return null;
  }
}

/** Peak RSS (MB) of a fresh process that loads the model and generates, measured by the OS. */
function rssPeak(file: string, threads: number): number {
  const child = `
    import { initBackend } from ${JSON.stringify(path.join(root, 'src/backend/index.ts'))};
    import { openGGUF } from ${JSON.stringify(path.join(root, 'src/platform/gguf-file.ts'))};
    import { loadLlamaGGUF } from ${JSON.stringify(path.join(root, 'src/runtime/gguf-llama.ts'))};
    import { greedyTokens } from ${JSON.stringify(path.join(root, 'src/runtime/generate.ts'))};
    initBackend({ threads: ${threads} });
    const h = openGGUF(${JSON.stringify(file)});
    const model = loadLlamaGGUF(h.file, h.read.bind(h));
    h.close();
    greedyTokens(model, Array.from({ length: ${PROMPT} }, (_, i) => 259 + i), ${GEN});
    console.log(JSON.stringify({ maxRSS: process.resourceUsage().maxRSS }));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const kb = JSON.parse((r.stdout ?? '').trim().split('\n').pop() ?? '{}').maxRSS as number;
  return kb / 1024;
}

/** ViT-B/16 at 224² (random weights): median ms to encode one image. */
function encodeVit(threads: number, reps: number): number {
  initBackend({ threads });
  const tower = new VisionTower({
    image_size: 224, patch_size: 16, embedding_length: 768, feed_forward_length: 3072, block_count: 12,
    'attention.head_count': 12, 'attention.layer_norm_epsilon': 1e-6, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
    activation: 'gelu_tanh', class_token: false, patch_bias: true, pre_ln: false, post_ln: true,
  }, 0);
  const px = randn([1, 3, 224, 224], new Rng(1));
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    noGrad(() => tidy(() => void tower.forward(px)));
    if (r > 0) times.push(performance.now() - t0);
  }
  return median(times);
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const noRef = args.includes('--no-ref');
  const ti = args.indexOf('--threads');
  const threadsList = ti >= 0 ? args[ti + 1]!.split(',').map(Number) : [1, 2];
  const reps = quick ? 1 : 3;
  const files = { q8_0: ensureModel('q8_0'), f16: ensureModel('f16') };
  const figures: Figure[] = [];
  const ref = noRef ? null : llamaRef([files.q8_0, files.f16], threadsList, reps);
  for (const type of ['q8_0', 'f16'] as const) {
    for (const threads of threadsList) {
      const s = vistaSpeed(files[type], threads, reps);
      const r = ref?.models[path.basename(files[type])]?.by_threads[String(threads)];
      log(`  ${type} @${threads}: vista prefill ${s.prefill.toFixed(1)} decode ${s.decode.toFixed(1)} tok/s` +
        (r ? ` | llama.cpp prefill ${r.prompt_tok_s} decode ${r.gen_tok_s} tok/s → ${(s.prefill / r.prompt_tok_s).toFixed(2)}×, ${(s.decode / r.gen_tok_s).toFixed(2)}×` : '') +
        ` | first tokens vista ${s.first.join(',')}${r ? ` llama.cpp ${r.first_generated_tokens.join(',')}` : ''}`);
      figures.push({ name: `prefill_${type}_168m`, threads, value: +s.prefill.toFixed(1), unit: 'tok/s', ref: r ? { name: 'llama.cpp prompt_tok_s', value: r.prompt_tok_s } : null });
      figures.push({ name: `decode_${type}_168m`, threads, value: +s.decode.toFixed(1), unit: 'tok/s', ref: r ? { name: 'llama.cpp gen_tok_s', value: r.gen_tok_s } : null });
    }
  }
  for (const threads of threadsList) {
    const ms = encodeVit(threads, quick ? 1 : 3);
    log(`  encode_vit_b16_224 @${threads}: ${ms.toFixed(1)} ms`);
    figures.push({ name: 'encode_vit_b16_224', threads, value: +ms.toFixed(1), unit: 'ms', ref: null });
  }
  const t = Math.max(...threadsList);
  const rss = rssPeak(files.q8_0, t);
  log(`  rss_peak_q8_0_168m @${t}: ${rss.toFixed(0)} MB (file ${(readFileSync(files.q8_0).length / 1e6).toFixed(0)} MB)`);
  figures.push({ name: 'rss_peak_q8_0_168m', threads: t, value: +rss.toFixed(0), unit: 'MB', ref: null });
  console.log(JSON.stringify({ suite: 'runtime', machine: machine(), figures }));
  process.exit(0);
}
