// A two-layer MLP classifier and its training step, shared by the optimiser, overfit and determinism tests.
import * as T from '../../src/tensor/index.ts';
import { Tensor, Rng, AdamW } from '../../src/tensor/index.ts';

export interface Mlp {
  w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor;
}

/** Parameters for in → hidden → classes, seeded. */
export function makeMlp(seed: number, inDim = 6, hidden = 32, classes = 4): Mlp {
  const rng = new Rng(seed);
  return {
    w1: T.randn([hidden, inDim], rng, 1 / Math.sqrt(inDim)).param(),
    b1: Tensor.zeros([hidden]).param(),
    w2: T.randn([classes, hidden], rng, 1 / Math.sqrt(hidden)).param(),
    b2: Tensor.zeros([classes]).param(),
  };
}

export const mlpParams = (m: Mlp): Tensor[] => [m.w1, m.b1, m.w2, m.b2];

/** 8 random samples with random labels (nothing to generalise: only memorisation drives the loss to 0). */
export function makeData(seed: number, n = 8, inDim = 6, classes = 4): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  const x = T.keep(T.randn([n, inDim], rng));
  const y = Int32Array.from({ length: n }, () => rng.int(classes));
  return { x, y };
}

export function mlpLoss(m: Mlp, x: Tensor, y: Int32Array): Tensor {
  const h = T.gelu(T.linear(x, m.w1, m.b1)); // (n, hidden)
  return T.crossEntropy(T.linear(h, m.w2, m.b2), y); // scalar
}

/** AdamW with no decay on biases (a two-group setup, as real training uses). */
export function makeAdamW(m: Mlp, lr = 1e-2): AdamW {
  return new AdamW([{ params: [m.w1, m.w2] }, { params: [m.b1, m.b2], weightDecay: 0 }], { lr, weightDecay: 0.01 });
}

/** One step: zero grads, forward, backward, clip, update. Returns the loss before the update. */
export function trainStep(m: Mlp, opt: AdamW, x: Tensor, y: Int32Array): number {
  return T.tidy(() => {
    opt.zeroGrad();
    const loss = mlpLoss(m, x, y);
    T.backward(loss);
    T.clipGradNorm(mlpParams(m), 5);
    opt.step();
    return loss.item();
  });
}
