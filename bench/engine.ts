/**
 * Engine benchmark: f32 GEMM (GFLOP/s), decode-shaped matrix–vector products with f32/f16/q8_0/q4_0
 * weights (GB/s of weight bytes: x (1×4096) · W^T, W = 4096 rows × 4096 in GGUF layout), gelu_tanh
 * forward and backward on 1M elements (Melem/s) and one training step of the reference VLM
 * (bench/train_step.ts), each with 1 and 2 threads on a fresh wasm backend. PyTorch's figures from
 * ../shared/bench/torch_ref.py are measured in the same run when /usr/bin/python3 has torch (ratios on
 * stderr). Options: --quick, --no-ref.
 *
 * Last stdout line: {"suite":"engine","machine":{…},"figures":[{name,threads,value,unit,ref}]}
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { log, machine, median, root, sharedDir, type Figure } from './common.ts';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/index.ts';
import type { MatmulParams } from '../src/tensor/kernels.ts';
import type { DType } from '../src/tensor/dtype.ts';

/** median seconds per call over `samples` samples of ≥ minMs each (after warm-up) */
function timeIt(fn: () => void, samples: number, minMs: number): number {
  fn();
  fn();
  let t = performance.now();
  fn();
  const one = Math.max(performance.now() - t, 1e-3);
  const inner = Math.max(1, Math.round(minMs / one));
  const res: number[] = [];
  for (let s = 0; s < samples; s++) {
    t = performance.now();
    for (let i = 0; i < inner; i++) fn();
    res.push((performance.now() - t) / inner / 1e3);
  }
  return median(res);
}

function f32(be: WasmBackend, n: number, seed: number): Float32Array {
  const r = be.allocator.alloc(n * 4);
  const a = new Float32Array(r.buffer, r.byteOffset, n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

/** random weight bytes of a valid GGUF layout (finite, moderate scales) */
function weights(be: WasmBackend, type: DType, rows: number, K: number): Uint8Array {
  const bytes = type === 'f16' || type === 'bf16' ? rows * K * 2 : type === 'q8_0' ? (rows * K / 32) * 34 : (rows * K / 32) * 18;
  const r = be.allocator.alloc(bytes);
  const w = new Uint8Array(r.buffer, r.byteOffset, bytes);
  let s = 12345;
  for (let i = 0; i < bytes; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    w[i] = s & 0xff;
  }
  const dv = new DataView(w.buffer, w.byteOffset, w.byteLength);
  if (type === 'f16') for (let i = 0; i < bytes; i += 2) dv.setUint16(i, (dv.getUint16(i, true) & 0x83ff) | (12 << 10), true);
  else if (type === 'bf16') for (let i = 0; i < bytes; i += 2) dv.setUint16(i, (dv.getUint16(i, true) & 0x807f) | (120 << 7), true);
  else {
    const bb = type === 'q8_0' ? 34 : 18;
    for (let o = 0; o < bytes; o += bb) dv.setUint16(o, 0x2000 | (dv.getUint16(o, true) & 0x3ff), true);
  }
  return w;
}

function gemmParams(a: Float32Array, b: Float32Array | Uint8Array, bType: DType, c: Float32Array, M: number, N: number, K: number, transB: boolean): MatmulParams {
  return {
    batch: 1, M, N, K, a, aOff: 0, transA: false, lda: K, strideA: 0,
    b, bType, bOff: 0, transB, ldb: transB ? K : N, strideB: 0,
    c, cOff: 0, ldc: N, strideC: 0, accumulate: false,
  };
}

function engineFigures(threads: number, quick: boolean): { figures: Figure[]; features: unknown } {
  const be = createWasmBackend(threads);
  const figures: Figure[] = [];
  const samples = quick ? 3 : 7;
  for (const n of [256, 512, 1024, 2048]) {
    const a = f32(be, n * n, 1), b = f32(be, n * n, 2), c = f32(be, n * n, 3);
    const p = gemmParams(a, b, 'f32', c, n, n, n, false);
    const sec = timeIt(() => be.matmul(p), samples, quick ? 60 : 200);
    const value = (2 * n ** 3) / sec / 1e9;
    figures.push({ name: `matmul_f32_${n}`, threads, value: +value.toFixed(2), unit: 'GFLOP/s', ref: null });
    log(`  [threads=${threads}] matmul_f32_${n}: ${value.toFixed(1)} GFLOP/s`);
  }
  const K = 4096, N = 4096;
  const x = f32(be, K, 4), y = f32(be, N, 5);
  for (const type of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
    const w = type === 'f32' ? f32(be, N * K, 6) : weights(be, type, N, K);
    const p = gemmParams(x, w, type, y, 1, N, K, true);
    const sec = timeIt(() => be.matmul(p), samples * 2, quick ? 30 : 100);
    const value = w.byteLength / sec / 1e9;
    figures.push({ name: `matvec_${type}_4096`, threads, value: +value.toFixed(2), unit: 'GB/s', ref: null });
    log(`  [threads=${threads}] matvec_${type}_4096: ${value.toFixed(1)} GB/s`);
  }
  // activations of a training step (the tower's MLP is gelu_tanh): forward exact (f64), backward f32x4
  const n = 1 << 20;
  const ax = f32(be, n, 7), ay = f32(be, n, 8), ag = f32(be, n, 9);
  for (const [name, fn] of [
    ['gelu_tanh_fwd', () => be.unary('gelu_tanh', n, ax, 0, ay)],
    ['gelu_tanh_bwd', () => be.unaryBackward('gelu_tanh', n, ax, 0, ag, ay)],
  ] as const) {
    const sec = timeIt(fn, samples, quick ? 30 : 100);
    const value = n / sec / 1e6;
    figures.push({ name: `${name}_1M`, threads, value: +value.toFixed(1), unit: 'Melem/s', ref: null });
    log(`  [threads=${threads}] ${name}_1M: ${value.toFixed(0)} Melem/s`);
  }
  const features = be.features;
  be.close();
  return { figures, features };
}

async function trainFigure(threads: number, quick: boolean): Promise<Figure | null> {
  const file = path.join(root, 'bench', 'train_step.ts');
  if (!existsSync(file)) {
    log('  train_step_reference_vlm: skipped (bench/train_step.ts not there yet)');
    return null;
  }
  try {
    const mod = (await import('./train_step.ts' as string)) as { trainStepMs(t: number, steps: number): Promise<{ ms: number }> };
    const { ms } = await mod.trainStepMs(threads, quick ? 3 : 6);
    log(`  [threads=${threads}] train_step_reference_vlm: ${ms.toFixed(1)} ms`);
    return { name: 'train_step_reference_vlm', threads, value: +ms.toFixed(2), unit: 'ms', ref: null };
  } catch (e) {
    log(`  train_step_reference_vlm: failed: ${(e as Error).stack ?? String(e)}`);
    return null;
  }
}

type TorchResult = { by_threads: Record<string, { matmul_gflops?: Record<string, number>; train_step?: { ms_per_step?: number } }> };

function torchRef(quick: boolean): TorchResult | null {
  const py = '/usr/bin/python3';
  const script = path.join(sharedDir, 'bench', 'torch_ref.py');
  if (!existsSync(script)) {
    log(`PyTorch reference: ${script} not found (set VISTA_SHARED)`);
    return null;
  }
  if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
    log('PyTorch reference: /usr/bin/python3 cannot import torch; skipped');
    return null;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' };
  delete env.OPENBLAS_L2_SIZE;
  const args = [script, '--threads', '1,2', '--skip', 'decode', '--train-steps', quick ? '3' : '5'];
  if (quick) args.push('--quick');
  log(`PyTorch reference: ${py} ${args.join(' ')}`);
  const r = spawnSync(py, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as TorchResult;
  } catch {
    log(`PyTorch reference: no JSON output (exit ${r.status})`);
    return null;
  }
}

function refFor(f: Figure, t: TorchResult | null): { name: string; value: number } | null {
  const r = t?.by_threads[String(f.threads)];
  if (!r) return null;
  const m = /^matmul_f32_(\d+)$/.exec(f.name);
  if (m && r.matmul_gflops?.[`fp32_${m[1]}`] !== undefined) return { name: `fp32_${m[1]}`, value: r.matmul_gflops[`fp32_${m[1]}`]! };
  if (f.name === 'matvec_f32_4096' && r.matmul_gflops?.gemv_linear_GBps !== undefined)
    return { name: 'gemv_linear_GBps', value: r.matmul_gflops.gemv_linear_GBps };
  if (f.name === 'train_step_reference_vlm' && r.train_step?.ms_per_step !== undefined)
    return { name: 'train_step.ms_per_step', value: r.train_step.ms_per_step };
  return null;
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const noRef = args.includes('--no-ref');
  const figures: Figure[] = [];
  let features: unknown = null;
  for (const threads of [1, 2]) {
    log(`engine: wasm backend, ${threads} thread(s)`);
    const e = engineFigures(threads, quick);
    features = e.features;
    figures.push(...e.figures);
  }
  for (const threads of [1, 2]) {
    const f = await trainFigure(threads, quick);
    if (f) figures.push(f);
  }
  const torch = noRef ? null : torchRef(quick);
  for (const f of figures) {
    f.ref = refFor(f, torch);
    if (f.ref) {
      const ratio = f.unit === 'ms' ? f.ref.value / f.value : f.value / f.ref.value;
      log(`  ${f.name} @${f.threads}: vista ${f.value} ${f.unit} vs PyTorch ${f.ref.value} → ${ratio.toFixed(2)}× PyTorch speed`);
    }
  }
  console.log(JSON.stringify({ suite: 'engine', machine: { ...machine(), backend: features }, figures }));
  process.exit(0);
}
