// Where does localisation break? Two measurements on one exported model (GGUF + mmproj):
//  1. is an object's position in the image tokens: a ridge regression, fitted on the val split, from the image token
//     under each object's box centre (the LM's input, after the projector) to that centre (0–1000); its mean absolute
//     error on the test split next to the error of always guessing the mean;
//  2. does the LM read it out: the model answers the test split's click and ground dialogues (as `vista eval` does);
//     the Pearson correlation of its click points with the true ones, the share inside, the ground IoU; for all
//     scenes and for one-object scenes (where the LM need not pick an object, only read where it is).
// usage (after npm run build): node scripts/probe-position.mjs [LM.gguf] [MMPROJ.gguf] [DATA_DIR] [N_IMAGES=500] [N_DIALOGUES=200]
// With VISTA_EXPORT=DIR it instead writes the image tokens of one-object scenes (up to 4 000 train, 500 val and 500
// test) as DIR/one-{split}.f32 (scenes × N × D) with DIR/one-{split}.json (N, D and the scenes' boxes), for
// scripts/reference/position-toy.py, and stops.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VisionLanguageModel } from '../dist/src/runtime/vlm.js';
import { decodeImage } from '../dist/src/image/decode.js';
import { loadLlava } from '../dist/src/train/data.js';
import { answerDialogue } from '../dist/src/train/evaluate.js';
import { gradeAnswer, lastTask, loadSceneIndex } from '../dist/src/train/grading.js';

const [model = 'models/vista-shapes.gguf', mmproj = 'models/mmproj-vista-shapes.gguf', data = 'data/shapes', nImages = '500', nDialogues = '200'] = process.argv.slice(2);
const vlm = await VisionLanguageModel.load({ model, mmproj });

if (process.env.VISTA_EXPORT) {
  for (const [split, limit] of [['train', 4000], ['val', 500], ['test', 500]]) {
    const feats = [], boxes = [];
    let shape = [0, 0];
    for (const line of readFileSync(path.join(data, split, 'metadata.jsonl'), 'utf8').trim().split('\n')) {
      const scene = JSON.parse(line);
      if (scene.objects.length !== 1) continue;
      const t = vlm.encodeImages([await decodeImage(path.join(data, split, scene.image))]);
      shape = t.shape.slice(-2);
      feats.push(Buffer.from(Float32Array.from(t.data).buffer));
      boxes.push(scene.objects.map((o) => o.box1000));
      t.dispose();
      if (boxes.length >= limit) break;
    }
    writeFileSync(path.join(process.env.VISTA_EXPORT, `one-${split}.f32`), Buffer.concat(feats));
    writeFileSync(path.join(process.env.VISTA_EXPORT, `one-${split}.json`), JSON.stringify({ tokens: shape[0], width: shape[1], boxes }));
    console.log(JSON.stringify({ split, scenes: boxes.length }));
  }
  process.exit(0);
}

/** (image token under each object's box centre, that centre) pairs of a split's first n scenes */
async function tokenPairs(split, n) {
  const X = [], Y = [];
  const lines = readFileSync(path.join(data, split, 'metadata.jsonl'), 'utf8').trim().split('\n').slice(0, n);
  for (const line of lines) {
    const scene = JSON.parse(line);
    const t = vlm.encodeImages([await decodeImage(path.join(data, split, scene.image))]);
    const [N, D] = t.shape.slice(-2);
    const g = Math.round(Math.sqrt(N));
    for (const o of scene.objects) {
      const [x0, y0, x1, y1] = o.box1000;
      const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
      const r = Math.min(g - 1, Math.floor(cy / 1000 * g)), c = Math.min(g - 1, Math.floor(cx / 1000 * g));
      X.push([...t.data.subarray((r * g + c) * D, (r * g + c + 1) * D), 1]);
      Y.push([cx, cy]);
    }
    t.dispose();
  }
  return { X, Y };
}

/** ridge regression W (d, 2) = (XᵀX + λI)⁻¹ XᵀY by Cholesky */
function ridge(X, Y, lambda) {
  const d = X[0].length;
  const A = new Float64Array(d * d), B = new Float64Array(d * 2);
  for (let n = 0; n < X.length; n++) {
    const x = X[n];
    for (let i = 0; i < d; i++) {
      const xi = x[i];
      for (let j = 0; j <= i; j++) A[i * d + j] += xi * x[j];
      B[i * 2] += xi * Y[n][0]; B[i * 2 + 1] += xi * Y[n][1];
    }
  }
  for (let i = 0; i < d; i++) A[i * d + i] += lambda;
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j];
      for (let k = 0; k < j; k++) s -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = i === j ? Math.sqrt(s) : s / L[j * d + j];
    }
  const W = new Float64Array(d * 2);
  for (let c = 0; c < 2; c++) {
    const z = new Float64Array(d);
    for (let i = 0; i < d; i++) { let s = B[i * 2 + c]; for (let k = 0; k < i; k++) s -= L[i * d + k] * z[k]; z[i] = s / L[i * d + i]; }
    for (let i = d - 1; i >= 0; i--) { let s = z[i]; for (let k = i + 1; k < d; k++) s -= L[k * d + i] * W[k * 2 + c]; W[i * 2 + c] = s / L[i * d + i]; }
  }
  return W;
}

const mean = (a) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
function pearson(a, b) {
  const ma = mean(a), mb = mean(b);
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) ** 2; sbb += (b[i] - mb) ** 2; }
  return saa && sbb ? sab / Math.sqrt(saa * sbb) : 0;
}
const r3 = (v) => Math.round(v * 1000) / 1000;

const fit = await tokenPairs('val', +nImages);
const test = await tokenPairs('test', +nImages);
const W = ridge(fit.X, fit.Y, 10);
const err = [0, 0], base = [0, 0];
const my = [mean(fit.Y.map((y) => y[0])), mean(fit.Y.map((y) => y[1]))];
test.X.forEach((x, n) => {
  for (let c = 0; c < 2; c++) {
    let p = 0;
    for (let i = 0; i < x.length; i++) p += x[i] * W[i * 2 + c];
    err[c] += Math.abs(p - test.Y[n][c]) / test.X.length;
    base[c] += Math.abs(my[c] - test.Y[n][c]) / test.X.length;
  }
});
console.log(JSON.stringify({ probe: 'image token → object centre (ridge, 0–1000)', fit: fit.X.length, test: test.X.length,
  mae: err.map(Math.round), meanGuessMae: base.map(Math.round) }));

const dir = path.join(data, 'test');
const scenes = await loadSceneIndex(dir);
const groups = { all: { px: [], tx: [], py: [], ty: [], inside: [], iou: [] }, oneObject: { px: [], tx: [], py: [], ty: [], inside: [], iou: [] } };
let asked = 0;
for (const s of await loadLlava(dir, 'instruct')) {
  const { task, object } = lastTask(s);
  if (task !== 'click' && task !== 'ground') continue;
  if (asked++ >= +nDialogues) break;
  const objs = scenes.get(s.record.image);
  const answers = await answerDialogue(vlm, s, 64);
  const answer = answers[answers.length - 1] ?? '';
  const g = gradeAnswer(s, answer, scenes);
  for (const [name, grp] of Object.entries(groups)) {
    if (name === 'oneObject' && objs.length !== 1) continue;
    if (task === 'ground') { grp.iou.push(g.metrics.iou); continue; }
    grp.inside.push(g.metrics.inside);
    const m = /"x":\s*(\d+),\s*"y":\s*(\d+)/.exec(answer);
    if (!m || object === undefined) continue;
    const [x0, y0, x1, y1] = objs[object].box1000;
    grp.px.push(+m[1]); grp.tx.push((x0 + x1) / 2); grp.py.push(+m[2]); grp.ty.push((y0 + y1) / 2);
  }
}
for (const [name, g] of Object.entries(groups))
  console.log(JSON.stringify({ readout: name, clicks: g.inside.length, inside: r3(mean(g.inside)), parsed: g.px.length,
    corrX: r3(pearson(g.px, g.tx)), corrY: r3(pearson(g.py, g.ty)), grounds: g.iou.length, iou: r3(mean(g.iou)) }));
