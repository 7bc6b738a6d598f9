/**
 * vista llama ↔ Hugging Face (transformers `LlamaForCausalLM`) tensor names, for exchanging weights with
 * PyTorch through safetensors.
 *
 * HF applies RoPE to halves of each head (rotate_half); llama.cpp — and vista's `llama` layout — to
 * adjacent pairs, with the Q/K rows permuted by the converter (../shared/specs/gguf-multimodal.md §2.3):
 * GGUF row (h, 2i + j) = HF row (h, j·D/2 + i). `toHF` undoes the permutation, `fromHF` applies it, so an
 * exported model run by HF's code computes what vista computes.
 */
import { ModelFormatError } from '../errors.ts';
import { writeSafetensors, readSafetensors, safetensorsToTensor, type SafetensorsWriteTensor } from '../formats/safetensors.ts';
import type { Llama } from '../models/llama.ts';
import { Tensor } from '../tensor/tensor.ts';
import { dequantize } from '../tensor/quant.ts';

const BLOCK: Record<string, string> = {
  attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj', ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

/** HF name of a vista (GGUF-named) llama tensor. */
export function hfName(name: string): string {
  if (name === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (name === 'output_norm.weight') return 'model.norm.weight';
  if (name === 'output.weight') return 'lm_head.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  if (m && BLOCK[m[2]!]) return `model.layers.${m[1]}.${BLOCK[m[2]!]}.weight`;
  throw new ModelFormatError(`no Hugging Face name for tensor '${name}'`);
}

/**
 * Reorder the rows of a Q or K weight (heads·D, in) between the GGUF (adjacent pairs) and HF (halves)
 * layouts. `toHF` true: GGUF → HF.
 */
export function permuteQK(w: Tensor, heads: number, toHF: boolean): Tensor {
  const [rows, cols] = w.shape as [number, number];
  const D = rows / heads;
  const src = w.toArray();
  const out = Tensor.empty([rows, cols]);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++) {
        const g = h * D + 2 * i + j; // GGUF row
        const f = h * D + j * (D / 2) + i; // HF row
        const [from, to] = toHF ? [g, f] : [f, g];
        out.data.set(src.subarray(from * cols, (from + 1) * cols), to * cols);
      }
  return out;
}

/** The model's tensors under HF names (f32, Q/K rows in HF order) as safetensors bytes. */
export function llamaToHFSafetensors(lm: Llama): Uint8Array {
  const c = lm.config;
  const tensors: SafetensorsWriteTensor[] = [];
  for (const [name, t] of lm.namedParameters()) {
    let w = t.dtype === 'f32' ? t : dequantize(t);
    if (/\.attn_q\.weight$/.test(name)) w = permuteQK(w, c['attention.head_count'], true);
    if (/\.attn_k\.weight$/.test(name)) w = permuteQK(w, c['attention.head_count_kv'], true);
    tensors.push({ name: hfName(name), dtype: 'F32', shape: [...w.shape], data: new Uint8Array(w.toArray().buffer) });
  }
  return writeSafetensors(tensors, { format: 'pt' });
}

/**
 * Load HF-named safetensors into a vista llama (strict: every missing, unexpected or mis-shaped tensor is
 * reported at once by `loadParameters`). Q/K rows are permuted into vista's adjacent-pair layout.
 */
export function loadHFSafetensors(lm: Llama, bytes: Uint8Array): void {
  const file = readSafetensors(bytes);
  const byHF = new Map(file.tensors.map((t) => [t.name, t]));
  const c = lm.config;
  const out = new Map<string, Tensor>();
  const missing: string[] = [];
  for (const name of lm.namedParameters().keys()) {
    const info = byHF.get(hfName(name));
    if (!info) {
      missing.push(hfName(name));
      continue;
    }
    byHF.delete(info.name);
    let w = safetensorsToTensor(file, info, { keep: 'f32' });
    if (/\.attn_q\.weight$/.test(name)) w = permuteQK(w, c['attention.head_count'], false);
    if (/\.attn_k\.weight$/.test(name)) w = permuteQK(w, c['attention.head_count_kv'], false);
    out.set(name, w);
  }
  const unexpected = [...byHF.keys()].filter((n) => !n.endsWith('rotary_emb.inv_freq'));
  if (missing.length || unexpected.length)
    throw new ModelFormatError(`cannot load HF llama weights:${missing.map((n) => `\n  missing ${n}`).join('')}${unexpected.map((n) => `\n  unexpected ${n}`).join('')}`);
  lm.loadParameters(out);
}
