// How fast does a fresh projector + LM learn to read image tokens? A fast A/B harness for the instruct stage.
//
// The vision tower of a finished checkpoint is frozen and its patch features are computed once (cached in the
// OS temp dir), so a step costs only the projector + LM. Every `evalEvery` steps it prints, on val dialogues:
// the answer loss, the image gap (answer loss with another sample's image minus with the true one: 0 = the LM
// ignores the image) and per task the share of answer turns predicted exactly under teacher forcing, and
// (`task:lead`) the share of numbers whose leading digit is predicted right (for ground and click: where it is;
// `task:lead1` the same in one-object scenes only).
//
// usage (after npm run build): node scripts/probe-reading.mjs '{"steps":300,"bs":32,"lrLm":3e-3}'
// options (JSON, all optional):
//   steps, bs, lrLm, lrProj, warmup, seed, evalEvery   the usual
//   nTrain, nVal      how many train / val dialogues to take (before filtering)
//   turns             keep only the first `turns` question–answer pairs of each dialogue
//   only              e.g. ["colour","count"]: keep dialogues whose first question is one of these tasks
//   single            train and score on every self-standing question as its own sample (singleTurns: the
//                     form of a split's eval.jsonl items) instead of whole dialogues
//   noTools           drop tool declarations, and each dialogue's turns from its first click on (shorter samples)
//   embScale          multiply the projector output by this
//   attend            weight of grounded attention supervision (src/train/attend.ts) on head 0 of layer
//                     `attendLayer` (default: the middle one); attendQuestion: weight of its question hop (head 0
//                     of the layer below). Evals then also print `look`: the image-hop head's attention mass on
//                     the asked-about objects / on any object (see scripts/probe-attention.mjs)
//   mask              diagnostic: zero the features of patches no object owns (what if the background were silent?)
//   oracle            diagnostic: replace the features by clean one-hots of each patch's true colour, shape, size,
//                     digit, centre flag, box and grid position (what if the tower were perfect?)
//   oracleConj        diagnostic: like oracle, but each object patch carries one one-hot of its (colour, shape)
//                     conjunction (and its digit), so a mean over tokens keeps which colour goes with which shape
//   oracleWords       diagnostic: add to each image token this multiple of the sum of the LM's own input embeddings of
//                     its object's words (colour, shape, size; 'black', 'digit' and the digit) — word-aligned tokens
//   wordAlign         weight of the loop's word-alignment loss (src/train/wordalign.ts) on the projector output
//   curriculum        e.g. [[150,1],[300,2]]: up to step 150 train only on one-object scenes, up to 300 on ≤ 2 objects
//   inPlace           score each self-standing question of the `only` tasks (ground, say) where the dialogue asks it,
//                     after the turns before it (one sample per such question at turn ≥ 1; the earlier turns are
//                     scored under `task~`): the same questions as `single`, but with a dialogue's context before them
//   valForm           score val in another form than training: 'single', 'inPlace' or 'dialogue'
//   growLm            e.g. [0, null, 1, null]: the LM's blocks after loading, old ones by index, null a fresh identity block
//   keepModel         start from the checkpoint's own projector + LM instead of fresh ones; with "steps": 0 this
//                     just scores a training checkpoint (teacher-forced, per task, with the image gap)
//   export            a directory: write the encoded samples, the frozen tower's features, each image token's
//                     object words and the scenes there for scripts/reference/lab-shapes.py, then stop
//   ckpt, config, train, val   paths (defaults: the default recipe's)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../dist/src/backend/index.js';
import { readCheckpoint } from '../dist/src/train/checkpoint.js';
import { loadTrainConfig, vlmConfigOf } from '../dist/src/train/config.js';
import { Llava } from '../dist/src/models/llava.js';
import { LlamaBlock } from '../dist/src/models/llama.js';
import { Rng } from '../dist/src/tensor/rng.js';
import { ImageCache, loadLlava, encodeSamples, collate, EpochOrder, singleTurns } from '../dist/src/train/data.js';
import { loadDenseIndex, denseTargets } from '../dist/src/train/dense.js';
import { Tokenizer } from '../dist/src/tokenizer/index.js';
import { VisionLanguageModel } from '../dist/src/runtime/vlm.js';
import { DEFAULT_CHAT_TEMPLATE } from '../dist/src/tokenizer/chat-template.js';
import { Tensor, noGrad } from '../dist/src/tensor/tensor.js';
import { tidy } from '../dist/src/tensor/storage.js';
import { backward } from '../dist/src/tensor/autograd.js';
import { AdamW, clipGradNorm } from '../dist/src/tensor/optim.js';
import { warmupCosine } from '../dist/src/tensor/schedule.js';
import { scoredLogits } from '../dist/src/train/loop.js';
import { attendLoss, attendTargets, headAttention, imageKeys, questionKeys, turnBoxes, turnWords } from '../dist/src/train/attend.js';
import { add } from '../dist/src/tensor/ops/elementwise.js';
import { crossEntropy } from '../dist/src/tensor/ops/nn.js';
import { scale } from '../dist/src/tensor/ops/elementwise.js';
import { argmax } from '../dist/src/tensor/ops/reduce.js';
import { matmul } from '../dist/src/tensor/ops/matmul.js';
import { wordAlignLoss, wordAlignTargets } from '../dist/src/train/wordalign.js';

initBackend();
const A = {
  single: false, inPlace: false, valForm: null, steps: 300, bs: 16, lrLm: 1e-3, lrProj: 1e-3, warmup: 30, seed: 1, evalEvery: 100, nTrain: 6000, nVal: 256, turns: Infinity,
  only: null, noTools: false, keepModel: false, oracleConj: false, wordAlign: 0, embScale: 1, mask: false, oracle: false, oracleWords: 0, curriculum: null, attend: 0, attendLayer: null, attendQuestion: 0,
  ckpt: 'runs/shapes-default/ckpt/checkpoint.safetensors', config: 'configs/shapes-default.json', train: 'data/shapes/train', val: 'data/shapes/val',
  ...JSON.parse(process.argv[2] ?? '{}'),
};
console.log(JSON.stringify(A));

const ck = await readCheckpoint(A.ckpt);
const cfg = await loadTrainConfig(A.config);
const tok = Tokenizer.fromGGUFMetadata(ck.state.tokenizer);
/** token ids of the ten digits (the smollm pre-tokenizer splits numbers into single digits) */
const DIGITS = new Set(Array.from({ length: tok.vocabSize }, (_, i) => i).filter((i) => /^[0-9]$/.test(tok.tokenText(i))));
const vc = vlmConfigOf(cfg, tok.vocabSize);
if (A.growLm) { // checked before the features are computed (minutes on a fresh cache)
  const old = vc.lm.block_count, kept = Array.isArray(A.growLm) ? A.growLm.filter((i) => i !== null) : [NaN];
  if (kept.some((i) => !Number.isInteger(i) || i < 0 || i >= old) || new Set(kept).size !== kept.length)
    throw new Error(`growLm: ${JSON.stringify(A.growLm)} must list each kept block of the ${old}-block LM at most once (0–${old - 1}), null for a fresh one`);
}
const tower = new Llava(vc, 0);
ck.loadModel(tower.namedParameters());
const rt = new VisionLanguageModel(tower.lm, tower, tok, DEFAULT_CHAT_TEMPLATE);
const G = vc.vision.image_size / vc.vision.patch_size, P = G * G, E = vc.vision.embedding_length, S = vc.vision.image_size;

// ---- data -------------------------------------------------------------------------------------------
const taskOf = (s) => (s.record.tasks ?? []).map((t) => t.task);
const keep = (s) => (!A.noTools || taskOf(s)[0] !== 'click') && (!A.only || A.only.includes(taskOf(s)[0]));
const cut = (s) => {
  const tools = A.noTools ? undefined : s.tools;
  const tasks = taskOf(s);
  const messages = [];
  let q = 0;
  for (const m of s.messages) {
    if (m.role === 'user' && (q >= A.turns || (A.noTools && tasks[q] === 'click'))) break;
    if (m.role === 'user') q++;
    messages.push(m);
  }
  return { ...s, messages, tools };
};
const trainAll = (await loadLlava(A.train, 'instruct')).slice(0, A.nTrain);
const valAll = (await loadLlava(A.val, 'instruct')).slice(0, A.nVal);
/** `inPlace`: the dialogue up to each self-standing question (turn ≥ 1) of an `only` task, earlier tasks renamed `task~`.
 *  Unlike the loop's `questionsInPlace` (src/train/data.ts), which this measured the case for: turn 0 (the single
 *  form) is left out, the dialogue's tool declaration always stays, and the earlier turns are scored apart. */
const inPlace = (s) => {
  const meta = s.record.tasks ?? [];
  const out = [];
  let k = -1;
  s.messages.forEach((m, i) => {
    if (m.role !== 'user') return;
    k++;
    if (k === 0 || meta[k]?.followUp !== false || (A.only && !A.only.includes(meta[k].task))) return;
    let end = i + 1;
    while (end < s.messages.length && s.messages[end].role !== 'user') end++;
    const tasks = meta.slice(0, k + 1).map((t, j) => (j < k ? { ...t, task: `${t.task}~` } : t));
    out.push({ ...s, id: `${s.id}@${k}`, messages: s.messages.slice(0, end), record: { ...s.record, tasks } });
  });
  return out;
};
const splitAs = (form, ss) => (form === 'inPlace' ? ss.flatMap(inPlace) : (form === 'single' ? ss.flatMap(singleTurns) : ss).filter(keep));
const trainForm = A.inPlace ? 'inPlace' : A.single ? 'single' : 'dialogue';
const trainS = splitAs(trainForm, trainAll), valS = splitAs(A.valForm ?? trainForm, valAll);
const fmt = rt.promptFormat();
const trainE = encodeSamples(trainS.map(cut), fmt, { maxLen: 1024 });
const valE = encodeSamples(valS.map(cut), fmt, { maxLen: 1024 });
console.log(JSON.stringify({ train: trainE.length, val: valE.length, meanTokens: +(trainE.reduce((a, e) => a + e.ids.length, 0) / trainE.length).toFixed(1) }));

// ---- frozen tower features, computed once ------------------------------------------------------------
async function features(samples, name) {
  const files = [...new Set(samples.flatMap((s) => s.images))];
  const idx = new Map(files.map((f, i) => [f, i]));
  const file = path.join(os.tmpdir(), `vista-probe-${path.basename(A.ckpt)}-${fs.statSync(A.ckpt).mtimeMs}-${name}-${files.length}.f32`);
  if (fs.existsSync(file) && fs.statSync(file).size === files.length * P * E * 4) return { idx, buf: readF32(file, files.length * P * E) };
  const cache = new ImageCache(rt.preprocess, 2 ** 26);
  const buf = new Float32Array(files.length * P * E);
  for (let i = 0; i < files.length; i += 32) {
    const chunk = files.slice(i, i + 32);
    const px = await cache.batch(chunk);
    noGrad(() => tidy(() => buf.set(tower.v.forward(Tensor.from(px, [chunk.length, 3, S, S])).data, i * P * E)));
  }
  writeF32(file, buf);
  return { idx, buf };
}
// in pieces of at most 1 GiB, each read or written to the end (one fs call stops at 2 GiB and may do less than
// asked; 40 000 images of features are 2.9 GB)
function pieces(f32, file, flags, io) {
  const u8 = new Uint8Array(f32.buffer), fd = fs.openSync(file, flags);
  try {
    for (let o = 0; o < u8.length;) {
      const n = io(fd, u8, o, Math.min(2 ** 30, u8.length - o), o);
      if (n <= 0) throw new Error(`${file}: stopped at byte ${o} of ${u8.length}`);
      o += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return f32;
}
const writeF32 = (file, f32) => pieces(f32, file, 'w', fs.writeSync);
const readF32 = (file, n) => pieces(new Float32Array(n), file, 'r', fs.readSync);
const FT = await features(trainAll, `train${A.nTrain}`), FV = await features(valAll, `val${A.nVal}`);
if (A.export) {
  const all = new Map([...(await loadDenseIndex(A.train)), ...(await loadDenseIndex(A.val))]);
  const spellW = (w) => tok.encode(w, { addBos: false, parseSpecial: false });
  const Gt = Math.round(Math.sqrt(P / (vc.projector.scale_factor ?? 2) ** 2));
  fs.mkdirSync(A.export, { recursive: true });
  const part = (S, Es, F, name) => {
    const files = [...F.idx.keys()];
    fs.writeFileSync(path.join(A.export, `${name}.f32`), Buffer.from(F.buf.buffer, F.buf.byteOffset, F.buf.byteLength));
    const t = wordAlignTargets(files.map((f) => all.get(f)), Gt, spellW);
    const words = files.map(() => Array.from({ length: Gt * Gt }, () => []));
    t.rows.forEach((r, j) => words[Math.floor(r / (Gt * Gt))][r % (Gt * Gt)].push(t.words[j]));
    return {
      images: files, words, scenes: files.map((f) => all.get(f)),
      samples: Es.map((e, i) => ({ ids: Array.from(e.ids, (x) => (x < 0 ? -1 : x)), learn: Array.from(e.learn), img: e.images.map((f) => F.idx.get(f)), tasks: taskOf(S[i]) })),
    };
  };
  const out = { P, E, G, N: Gt * Gt, vocab: tok.vocabSize, lm: vc.lm, train: part(trainS, trainE, FT, 'train'), val: part(valS, valE, FV, 'val') };
  fs.writeFileSync(path.join(A.export, 'data.json'), JSON.stringify(out));
  console.log(`exported to ${A.export}`);
  process.exit(0);
}
const scenes = A.mask || A.oracle || A.oracleWords || A.wordAlign || A.attend > 0 || A.attendQuestion > 0 ? new Map([...(await loadDenseIndex(A.train)), ...(await loadDenseIndex(A.val))]) : null;

/** Features (images, P, E) of `files`, with the diagnostic rewrites. */
function featureBatch(F, files) {
  const out = new Float32Array(files.length * P * E);
  files.forEach((f, i) => {
    const o = out.subarray(i * P * E, (i + 1) * P * E);
    o.set(F.buf.subarray(F.idx.get(f) * P * E, (F.idx.get(f) + 1) * P * E));
    if (!scenes) return;
    const t = denseTargets([scenes.get(f)], G);
    if (A.mask) {
      const owned = new Set(t.owned);
      for (let p = 0; p < P; p++) if (!owned.has(p)) o.fill(0, p * E, (p + 1) * E);
    }
    if (A.oracleConj) {
      o.fill(0);
      for (let p = 0; p < P; p++) {
        o[p * E + 100 + Math.floor(p / G)] = 3;
        o[p * E + 112 + (p % G)] = 3;
      }
      for (const p of t.owned) {
        o[p * E + t.cls.colour[p] * 7 + t.cls.shape[p]] = 3;
        o[p * E + 70 + t.cls.digit[p]] = 3;
      }
    } else if (A.oracle) {
      o.fill(0);
      const factors = Object.keys(t.cls);
      for (let p = 0; p < P; p++) {
        o[p * E + 60 + Math.floor(p / G)] = 3;
        o[p * E + 80 + (p % G)] = 3;
      }
      t.owned.forEach((p, j) => {
        factors.forEach((f, k) => (o[p * E + 12 * k + t.cls[f][p]] = 3));
        if (t.centre[p]) o[p * E + 50] = 3;
        for (let q = 0; q < 4; q++) o[p * E + 52 + q] = 3 * t.box[j * 4 + q];
      });
    }
  });
  return Tensor.from(out, [files.length, P, E]);
}

// ---- fresh projector + LM ----------------------------------------------------------------------------
const vlm = new Llava(vc, A.seed);
if (A.keepModel) ck.loadModel(vlm.namedParameters());
if (A.growLm) {
  // depth growth: e.g. [0, null, 1, null] keeps the old blocks 0 and 1 and puts a fresh block after each; a fresh block
  // starts as the identity (its attention output and FFN down projections are zero), so the grown LM computes the same
  vlm.lm.blk = A.growLm.map((i, j) => {
    if (i !== null) return vlm.lm.blk[i];
    const b = new LlamaBlock(vc.lm, new Rng(A.seed + 17 + j));
    b.attn_output.weight.data.fill(0);
    b.ffn_down.weight.data.fill(0);
    return b;
  });
}
const N = vlm.imageTokens;
const Gt = Math.round(Math.sqrt(N));
/** diagnostic oracleWords: each image token's bag of its owner object's attribute words (B·N, V), in the LM's own embedding space */
function wordBag(files) {
  const V = tok.vocabSize, out = new Float32Array(files.length * N * V);
  const t = wordAlignTargets(files.map((f) => scenes.get(f)), Gt, spell); // the owner rule and words of the loop's word alignment
  t.rows.forEach((r, j) => (out[r * V + t.words[j]] += 1));
  return Tensor.from(out, [files.length, N, V]);
}
const spell = (w) => tok.encode(w, { addBos: false, parseSpecial: false });
let lastAux = null;
/** wordAlign: the loop's word-alignment loss (src/train/wordalign.ts) on these images' tokens */
const wordAlignTerm = (img, files) => wordAlignLoss(img, vlm.lm.token_embd.weight, wordAlignTargets(files.map((f) => scenes.get(f)), Gt, spell));
let normsShown = false;
function logitsOf(b, F, files, tap = null, train = false) {
  let img = vlm.mm.forward(featureBatch(F, files));
  if (train && A.wordAlign) lastAux = scale(wordAlignTerm(img, files), A.wordAlign);
  if (A.embScale !== 1) img = scale(img, A.embScale);
  if (A.oracleWords) {
    const w = matmul(wordBag(files), vlm.lm.token_embd.weight);
    if (!normsShown) { normsShown = true; const rms = (t) => Math.sqrt(t.data.reduce((a, x) => a + x * x, 0) / t.data.length); console.log(JSON.stringify({ rmsProjector: +rms(img).toFixed(4), rmsWords: +rms(w).toFixed(4) })); }
    img = add(img, scale(w, A.oracleWords));
  }
  return scoredLogits(vlm, b, img, N, tap);
}
const supervised = A.attend > 0 || A.attendQuestion > 0;
const refs = (S, E) => new Map(supervised ? S.map((s, i) => [E[i], { boxes: turnBoxes(s.record.tasks, scenes.get(s.images[0])), words: turnWords(s.record.tasks, scenes.get(s.images[0])) }]) : []);
const trainRefs = refs(trainS, trainE), valRefs = refs(valS, valE);
const vocabText = Array.from({ length: tok.vocabSize }, (_, id) => tok.decode([id]));
const attendLayer = A.attendLayer ?? Math.floor(vlm.lm.blk.length / 2); // of the grown LM under growLm
/** The attention-supervision terms of a batch: [targets, weight, layer]. */
function supervision(b, es, R) {
  const out = [];
  const img = A.attend > 0 && attendTargets(b, es, imageKeys(N, (e) => R.get(e)?.boxes ?? null));
  if (img) out.push([img, A.attend, attendLayer]);
  const q = A.attendQuestion > 0 && attendTargets(b, es, questionKeys((e) => R.get(e)?.words ?? null, (id) => vocabText[id]));
  if (q) out.push([q, A.attendQuestion, attendLayer - 1]);
  return out;
}
vlm.setTrainable(false);
vlm.mm.setTrainable(true);
vlm.lm.setTrainable(true);
const groups = [];
for (const [mod, lr] of [[vlm.mm, A.lrProj], [vlm.lm, A.lrLm]]) {
  const ps = [...mod.namedParameters()].map(([, t]) => t);
  groups.push({ params: ps.filter((t) => t.ndim >= 2), weightDecay: 0.05, lr }, { params: ps.filter((t) => t.ndim < 2), weightDecay: 0, lr });
}
const opt = new AdamW(groups.map((g) => ({ params: g.params, weightDecay: g.weightDecay })), { betas: [0.9, 0.95], eps: 1e-8 });
const scheds = A.steps === 0 ? [] : groups.map((g) => warmupCosine({ baseLr: g.lr, warmupSteps: A.warmup, totalSteps: A.steps, minLr: g.lr / 20 }));
const params = groups.flatMap((g) => g.params);
const t0 = performance.now();

function evaluate(step) {
  const right = {}, n = {};
  const look = { target: 0, objects: 0, n: 0 };
  let lTrue = 0, lOther = 0, nb = 0;
  for (let i = 0; i < valE.length; i += 32) {
    const chunk = valE.slice(i, i + 32);
    const b = collate(chunk, N);
    const other = [...b.images.slice(1), b.images[0]];
    noGrad(() => tidy(() => {
      let lookTap = null;
      if (supervised) {
        const tgt = attendTargets(b, chunk, imageKeys(N, (e) => valRefs.get(e)?.boxes ?? null));
        const objs = attendTargets(b, chunk, imageKeys(N, (e) => { const bx = valRefs.get(e)?.boxes; return bx ? bx.map((x) => (x.length ? scenes.get(e.images[0]).map((o) => o.box1000) : [])) : null; }));
        if (tgt && objs) lookTap = (layer, q, k) => {
          if (layer !== attendLayer) return;
          const p = headAttention(q, k, 0, tgt).data, Q = tgt.queries.length, BT = q.shape[0] * q.shape[1];
          for (let j = 0; j < Q * BT; j++) { look.target += p[j] * tgt.target[j]; look.objects += p[j] * objs.target[j]; }
          look.n += Q;
        };
      }
      const lg = logitsOf(b, FV, b.images, lookTap);
      lTrue += crossEntropy(lg, b.targets).item();
      lOther += crossEntropy(logitsOf(b, FV, other), b.targets).item();
      nb++;
      const pred = argmax(lg);
      // scored positions of a sample come in runs, one run per assistant turn, in task order
      let k = 0;
      chunk.forEach((_, bi) => {
        const tasks = taskOf(valS[i + bi]);
        const ok = [];
        for (let prev = -2; k < b.scored.length && Math.floor(b.scored[k] / b.T) === bi; prev = b.scored[k++]) {
          if (b.scored[k] !== prev + 1) ok.push(true);
          if (pred[k] !== b.targets[k]) ok[ok.length - 1] = false;
          // the leading digit of a number (a coordinate, a count): the target is a digit, the token before it not
          if (DIGITS.has(b.targets[k]) && !DIGITS.has(b.ids[b.scored[k]])) {
            const keys = [`${tasks[ok.length - 1] ?? '?'}:lead`];
            if (valObjects.get(valS[i + bi].images[0]) === 1) keys.push(`${keys[0]}1`); // one-object scenes apart
            for (const key of keys) {
              right[key] = (right[key] ?? 0) + (pred[k] === b.targets[k] ? 1 : 0);
              n[key] = (n[key] ?? 0) + 1;
            }
          }
        }
        ok.forEach((o, t) => {
          const task = tasks[t] ?? '?';
          right[task] = (right[task] ?? 0) + (o ? 1 : 0);
          n[task] = (n[task] ?? 0) + 1;
        });
      });
    }));
  }
  const acc = Object.fromEntries(Object.keys(n).sort().map((t) => [t, +(right[t] / n[t]).toFixed(2)]));
  console.log(JSON.stringify({ step, seconds: Math.round((performance.now() - t0) / 1000), loss: +(lTrue / nb).toFixed(3), gap: +((lOther - lTrue) / nb).toFixed(3), ...acc,
    ...(look.n ? { look: `${(look.target / look.n).toFixed(2)}/${(look.objects / look.n).toFixed(2)}` } : {}) }));
}

const nObj = new Map([...(await loadDenseIndex(A.train))].map(([f, o]) => [f, o.length]));
const valObjects = new Map([...(await loadDenseIndex(A.val))].map(([f, o]) => [f, o.length]));
/** curriculum [[untilStep, maxObjects], ...]: before untilStep, train only on scenes of at most maxObjects objects */
const phases = (A.curriculum ?? []).map(([until, k]) => {
  const sub = trainE.map((e, i) => i).filter((i) => nObj.get(trainE[i].images[0]) <= k);
  return { until, sub, order: new EpochOrder(sub.length, A.seed, 3, { lengths: sub.map((i) => trainE[i].ids.length), batchSize: A.bs }) };
});
const order = new EpochOrder(trainE.length, A.seed, 3, { lengths: trainE.map((e) => e.ids.length), batchSize: A.bs });
let ema = null;
if (A.steps === 0) evaluate(0);
for (let s = 1; s <= A.steps; s++) {
  const ph = phases.find((p) => s <= p.until);
  const es = (ph ? ph.order.next(A.bs).map((j) => ph.sub[j]) : order.next(A.bs)).map((i) => trainE[i]);
  const b = collate(es, N);
  const sup = supervision(b, es, trainRefs);
  const l = tidy(() => {
    const terms = [];
    const tap = sup.length ? (layer, q, k) => { for (const [t, w, L] of sup) if (L === layer) terms.push([L, scale(attendLoss(q, k, 0, t), w)]); } : null;
    const l = crossEntropy(logitsOf(b, FT, b.images, tap, true), b.targets);
    if (lastAux) { terms.push([-1, lastAux]); if (s % 50 === 0) console.log(`step ${s} wordAlign loss ${lastAux.item().toFixed(3)}`); lastAux = null; }
    backward(terms.reduce((acc, [, t]) => add(acc, t), l));
    if (terms.some(([L]) => L >= 0) && (s % 50 === 0 || A.steps < 50)) console.log(`step ${s} attend loss ${terms.filter(([L]) => L >= 0).map(([L, t]) => `layer ${L}: ${t.item().toFixed(3)}`).join(', ')}`);
    return l.item();
  });
  clipGradNorm(params, 1);
  opt.groups.forEach((g, i) => (g.lr = scheds[i](s)));
  opt.step();
  opt.zeroGrad();
  ema = ema === null ? l : 0.95 * ema + 0.05 * l;
  if (s % 50 === 0) console.log(`step ${s} train loss ${ema.toFixed(3)} ${((performance.now() - t0) / s / 1000).toFixed(2)} s/step`);
  if (s % A.evalEvery === 0 || s === A.steps) evaluate(s);
}
