/**
 * One training step of the reference VLM of ../shared/bench/README.md (same model as torch_ref.py):
 * ViT (64×64, patch 8, width 192, 4 blocks, 3 heads, exact GELU, final LN, no class token) → MLP
 * projector 192→256→256 → llama LM (vocab 2048, width 256, 4 blocks, 4 heads, SwiGLU 688, RMSNorm,
 * RoPE on adjacent pairs); 64 image + 128 text tokens, batch 8; loss on text positions; AdamW lr 1e-3.
 */
import { initBackend } from '../src/backend/index.ts';
import { Llava, type VlmConfig } from '../src/models/llava.ts';
import { Rng, randn, tidy, backward, crossEntropy, slice, reshape, contiguous } from '../src/tensor/index.ts';
import { AdamW } from '../src/tensor/optim.ts';

export const REFERENCE_VLM: VlmConfig = {
  vision: {
    image_size: 64, patch_size: 8, embedding_length: 192, feed_forward_length: 768, block_count: 4,
    'attention.head_count': 3, 'attention.layer_norm_epsilon': 1e-5, image_mean: [0, 0, 0], image_std: [1, 1, 1],
    activation: 'gelu_erf', class_token: false, patch_bias: true, pre_ln: false, post_ln: true,
  },
  projector: { projector_type: 'mlp', input_dim: 192, output_dim: 256, hidden_dim: 256, activation: 'gelu_erf' },
  lm: {
    vocab_size: 2048, context_length: 512, embedding_length: 256, block_count: 4, feed_forward_length: 688,
    'attention.head_count': 4, 'attention.head_count_kv': 4, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000,
  },
};

export async function trainStepMs(threads: number, steps: number): Promise<{ ms: number; msAll: number[]; lossFirstLast: [number, number]; params: number }> {
  initBackend({ name: (process.env.VISTA_BACKEND as 'ref' | 'wasm' | undefined) ?? 'wasm', threads });
  const model = new Llava(REFERENCE_VLM, 0);
  const opt = new AdamW([{ params: model.parameters(), lr: 1e-3 }]);
  const rng = new Rng(0);
  const B = 8, T = 128, N = 64, V = 2048;
  const px = randn([B, 3, 64, 64], rng);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  // next-token targets on text positions: logits at N+t predict ids[t+1]; the last text position has none
  const targets = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) targets[b * (T - 1) + t] = ids[b * T + t + 1]!;
  const step = (): number => tidy(() => {
    opt.zeroGrad();
    const logits = model.forwardImageThenText(px, ids, B); // (B, N+T, V)
    const pred = contiguous(slice(logits, 1, N, N + T - 1)); // (B, T-1, V)
    const loss = crossEntropy(reshape(pred, [-1, V]), targets);
    backward(loss);
    opt.step();
    return loss.item();
  });
  const losses: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < 2; i++) losses.push(step()); // warmup
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    losses.push(step());
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { ms: sorted[Math.floor(sorted.length / 2)]!, msAll: times, lossFirstLast: [losses[0]!, losses[losses.length - 1]!], params: model.numParams() };
}
