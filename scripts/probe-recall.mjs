// Associative recall in vista's own engine: the text form of scripts/reference/recall-toy.py (`"obj": "text"`), to
// compare learning curves with PyTorch's. n objects as colour, shape, separator tokens, then Q shape → colour.
// usage (after npm run build): node scripts/probe-recall.mjs '{"steps":1000}'   prints step, loss, accuracy every 50
import { initBackend } from '../dist/src/backend/index.js';
import { Llama } from '../dist/src/models/llama.js';
import { tidy } from '../dist/src/tensor/storage.js';
import { backward } from '../dist/src/tensor/autograd.js';
import { AdamW, clipGradNorm } from '../dist/src/tensor/optim.js';
import { crossEntropy } from '../dist/src/tensor/ops/nn.js';
initBackend();
const A = { steps: 1500, bs: 32, lr: 1e-3, layers: 2, E: 128, H: 4, n: 5, seed: 1, ...JSON.parse(process.argv[2] ?? '{}') };
console.log(JSON.stringify(A));
// vocab: 0..15 colours, 16..31 shapes, 32 SEP, 33 Q
const V = 40;
const m = new Llama({ vocab_size: V, context_length: 64, embedding_length: A.E, block_count: A.layers, feed_forward_length: A.E * 3,
  'attention.head_count': A.H, 'attention.head_count_kv': A.H, 'attention.layer_norm_rms_epsilon': 1e-5, 'rope.freq_base': 10000 }, A.seed);
let s = A.seed * 7919 + 1;
const rnd = (k) => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) % k; };
function sample() {
  const shapes = [], cols = [];
  while (shapes.length < A.n) { const x = 16 + rnd(16); if (!shapes.includes(x)) { shapes.push(x); cols.push(rnd(16)); } }
  const ids = []; for (let i = 0; i < A.n; i++) ids.push(cols[i], shapes[i], 32);
  const q = rnd(A.n); ids.push(33, shapes[q], 34); const ans = cols[q];
  const tg = new Array(ids.length).fill(-100); tg[ids.length - 1] = ans;
  return { ids, tg };
}
const params = [...m.namedParameters()].map(([, t]) => t);
const opt = new AdamW([{ params: params.filter((t) => t.ndim >= 2), weightDecay: 0.05 }, { params: params.filter((t) => t.ndim < 2), weightDecay: 0 }], { lr: A.lr, betas: [0.9, 0.95] });
for (let step = 1; step <= A.steps; step++) {
  const b = Array.from({ length: A.bs }, sample);
  const ids = b.flatMap((x) => x.ids), tg = b.flatMap((x) => x.tg);
  let lossV = 0, acc = 0;
  tidy(() => {
    const logits = m.forward(ids, A.bs);
    const loss = crossEntropy(logits, tg);
    lossV = loss.data[0];
    const L = logits.data, T = ids.length / A.bs;
    for (let i = 0; i < A.bs; i++) { const r = (i * T + T - 1) * V; let best = 0; for (let v = 1; v < V; v++) if (L[r + v] > L[r + best]) best = v; if (best === tg[i * T + T - 1]) acc++; }
    opt.zeroGrad(); backward(loss); clipGradNorm(params, 1); opt.step();
  });
  if (step % 50 === 0) console.log(step, lossV.toFixed(3), (acc / A.bs).toFixed(2));
}
