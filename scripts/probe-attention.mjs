// Where does the LM look while it answers? For a training checkpoint on val dialogues, per task: the attention
// mass that each head of one layer puts, at the positions predicting answer tokens, on the image tokens of the
// objects the turn is about ("target"), on the image tokens of any object ("objects"), and on the image at all
// ("image"). A head that looks at the right object has target ≈ objects ≫ 0; a head that finds objects but not
// the asked one has objects ≫ target in scenes of several objects.
// usage (after npm run build): node scripts/probe-attention.mjs [LAYER] [CHECKPOINT] [CONFIG] [VAL_DIR]
import { initBackend } from '../dist/src/backend/index.js';
import { readCheckpoint } from '../dist/src/train/checkpoint.js';
import { loadTrainConfig, vlmConfigOf } from '../dist/src/train/config.js';
import { Llava } from '../dist/src/models/llava.js';
import { ImageCache, loadLlava, encodeSamples, collate } from '../dist/src/train/data.js';
import { scoredLogits } from '../dist/src/train/loop.js';
import { attendTargets, headAttention, imageKeys, turnBoxes } from '../dist/src/train/attend.js';
import { loadDenseIndex } from '../dist/src/train/dense.js';
import { Tokenizer } from '../dist/src/tokenizer/index.js';
import { VisionLanguageModel } from '../dist/src/runtime/vlm.js';
import { DEFAULT_CHAT_TEMPLATE } from '../dist/src/tokenizer/chat-template.js';
import { Tensor, noGrad } from '../dist/src/tensor/tensor.js';
import { tidy } from '../dist/src/tensor/storage.js';
initBackend();
const [layerArg, ckptFile = 'runs/shapes-default/ckpt/checkpoint.safetensors', configFile = 'configs/shapes-default.json', valDir = 'data/shapes/val'] = process.argv.slice(2);
const ck = await readCheckpoint(ckptFile);
const cfg = await loadTrainConfig(configFile);
const tok = Tokenizer.fromGGUFMetadata(ck.state.tokenizer);
const vlm = new Llava(vlmConfigOf(cfg, tok.vocabSize), 0);
ck.loadModel(vlm.namedParameters());
const layer = layerArg === undefined ? Math.floor(vlm.config.lm.block_count / 2) : Number(layerArg);
const rt = new VisionLanguageModel(vlm.lm, vlm, tok, DEFAULT_CHAT_TEMPLATE);
const samples = (await loadLlava(valDir, 'instruct')).slice(0, 96);
const enc = encodeSamples(samples, rt.promptFormat(), { maxLen: 1024 });
const scenes = await loadDenseIndex(valDir);
const N = vlm.imageTokens;
const all = (s) => (s.record.tasks ?? []).map(() => scenes.get(s.images[0]).map((o) => o.box1000));
const cache = new ImageCache(rt.preprocess, 2 ** 28);
const acc = {}; // task → { n, target[h], objects[h], image[h] }
for (let i = 0; i < enc.length; i += 16) {
  const chunk = enc.slice(i, i + 16), ss = samples.slice(i, i + 16);
  const b = collate(chunk, N);
  const at = (f) => attendTargets(b, chunk, imageKeys(N, (e) => f(ss[chunk.indexOf(e)])));
  const tgt = at((s) => turnBoxes(s.record.tasks, scenes.get(s.images[0])));
  if (!tgt) continue;
  // the same queries with every object as target (turns about nothing were dropped by both, in the same way)
  const obj = at((s) => turnBoxes(s.record.tasks, scenes.get(s.images[0])).map((bx, k) => (bx.length ? all(s)[k] : [])));
  // which task each query belongs to
  const taskOfQuery = [...tgt.queries].map((p) => {
    const si = Math.floor(p / b.T), e = chunk[si];
    let k = -1;
    for (let t = 1; t <= p + 1; t++) if (e.learn[t] && !e.learn[t - 1]) k++;
    return ss[si].record.tasks[k].task;
  });
  const px = await cache.batch(b.images);
  noGrad(() => tidy(() => {
    let probs = null;
    const S = vlm.config.vision.image_size;
    const img = vlm.mm.forward(vlm.v.forward(Tensor.from(px, [b.images.length, 3, S, S])));
    scoredLogits(vlm, b, img, N, (L, q, k) => {
      if (L !== layer) return;
      probs = Array.from({ length: q.shape[2] }, (_, h) => headAttention(q, k, h, tgt).data.slice());
    });
    const BT = b.B * b.T;
    taskOfQuery.forEach((task, qi) => {
      const a = (acc[task] ??= { n: 0, target: probs.map(() => 0), objects: probs.map(() => 0), image: probs.map(() => 0) });
      a.n++;
      const s0 = Math.floor(tgt.queries[qi] / b.T) * b.T, start = s0 + chunk[Math.floor(tgt.queries[qi] / b.T)].imageStarts[0];
      probs.forEach((p, h) => {
        for (let j = 0; j < BT; j++) {
          const w = p[qi * BT + j];
          a.target[h] += w * tgt.target[qi * BT + j];
          a.objects[h] += w * obj.target[qi * BT + j];
          if (j >= start && j < start + N) a.image[h] += w;
        }
      });
    });
  }));
}
const r = (x, n) => x.map((v) => +(v / n).toFixed(2));
console.log(JSON.stringify({ layer }));
for (const [task, a] of Object.entries(acc).sort()) console.log(JSON.stringify({ task, n: a.n, target: r(a.target, a.n), objects: r(a.objects, a.n), image: r(a.image, a.n) }));
