// Does the LM read the image? Mean answer-token loss of a training checkpoint on 96 val dialogues with the true
// image and with the neighbouring sample's image; the gap (nats) is how much the answers depend on the image.
// usage (after npm run build): node scripts/probe-image-gap.mjs [CHECKPOINT] [CONFIG] [VAL_DIR]
import { initBackend } from '../dist/src/backend/index.js';
import { readCheckpoint } from '../dist/src/train/checkpoint.js';
import { loadTrainConfig, vlmConfigOf } from '../dist/src/train/config.js';
import { Llava } from '../dist/src/models/llava.js';
import { ImageCache, loadLlava, encodeSamples, collate } from '../dist/src/train/data.js';
import { lmLoss } from '../dist/src/train/loop.js';
import { Tokenizer } from '../dist/src/tokenizer/index.js';
import { VisionLanguageModel } from '../dist/src/runtime/vlm.js';
import { DEFAULT_CHAT_TEMPLATE } from '../dist/src/tokenizer/chat-template.js';
import { noGrad } from '../dist/src/tensor/tensor.js';
import { tidy } from '../dist/src/tensor/storage.js';
initBackend();
const [ckptFile = 'runs/shapes-default/ckpt/checkpoint.safetensors', configFile = 'configs/shapes-default.json', valDir = 'data/shapes/val'] = process.argv.slice(2);
const ck = await readCheckpoint(ckptFile);
const cfg = await loadTrainConfig(configFile);
const tok = Tokenizer.fromGGUFMetadata(ck.state.tokenizer);
const vlm = new Llava(vlmConfigOf(cfg, tok.vocabSize), 0);
ck.loadModel(vlm.namedParameters());
const rt = new VisionLanguageModel(vlm.lm, vlm, tok, DEFAULT_CHAT_TEMPLATE);
const fmt = rt.promptFormat();
const samples = (await loadLlava(valDir, 'instruct')).slice(0, 96);
const enc = encodeSamples(samples, fmt, { maxLen: 1024 });
const cache = new ImageCache(rt.preprocess, 2 ** 28);
let a = 0, b = 0;
for (let i = 0; i < enc.length; i += 16) {
  const chunk = enc.slice(i, i + 16);
  const batch = collate(chunk, vlm.imageTokens);
  const px = await cache.batch(batch.images);
  const shuffled = await cache.batch([...batch.images.slice(1), batch.images[0]]);
  a += noGrad(() => tidy(() => lmLoss(vlm, batch, px, vlm.imageTokens).item()));
  b += noGrad(() => tidy(() => lmLoss(vlm, batch, shuffled, vlm.imageTokens).item()));
}
const n = Math.ceil(enc.length / 16);
console.log(JSON.stringify({ trueImage: +(a / n).toFixed(4), otherImage: +(b / n).toFixed(4), gap: +((b - a) / n).toFixed(4) }));
