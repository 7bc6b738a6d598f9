/**
 * LoRA on the LM's linear layers (Hu et al. 2021): attach adapters for a stage, and fold them into the
 * weights when it ends (W ← W + (α/r)·B·A), so later stages and the exported GGUF see a plain model.
 */
import { Linear } from '../nn/layers.ts';
import type { Llama } from '../models/llama.ts';
import { Rng } from '../tensor/rng.ts';

/** The LM block linears that get adapters. */
export function loraTargets(lm: Llama): Linear[] {
  const out: Linear[] = [];
  for (const b of lm.blk) out.push(b.attn_q, b.attn_k, b.attn_v, b.attn_output, b.ffn_gate, b.ffn_up, b.ffn_down);
  return out;
}

/** Attach rank-r adapters (weights frozen by Linear.addLora). */
export function addLora(lm: Llama, rank: number, alpha: number, seed: number): void {
  const rng = new Rng(seed, 31);
  for (const l of loraTargets(lm)) l.addLora(rank, alpha, rng);
}

/** Fold every adapter into its weight and remove it. */
export function mergeLora(lm: Llama): void {
  for (const l of loraTargets(lm)) {
    if (!l.lora_a || !l.lora_b) continue;
    const [N, K] = l.weight.shape as [number, number];
    const r = l.lora_a.shape[0]!;
    const A = l.lora_a.toArray(); // (r, K)
    const Bm = l.lora_b.toArray(); // (N, r)
    const W = l.weight.data;
    const o = l.weight.offset;
    const s = l._loraScale;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        let acc = 0;
        for (let j = 0; j < r; j++) acc += Bm[n * r + j]! * A[j * K + k]!;
        W[o + n * K + k]! += s * acc;
      }
    l.lora_a.dispose();
    l.lora_b.dispose();
    l.lora_a = null;
    l.lora_b = null;
    l._loraScale = 0;
  }
}
