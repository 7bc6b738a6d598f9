/**
 * Training, top to bottom: config → data → tokenizer → model → (per stage: parameters → optimizer → loop)
 * → export. No trainer class and no callbacks; the stages differ only in what they train and which loss
 * they compute:
 *
 * | stage    | trains                          | data                      | loss                                  |
 * | -------- | ------------------------------- | ------------------------- | ------------------------------------- |
 * | vision   | ViT (+ a throwaway text encoder) | captions: (image, caption) | CLIP InfoNCE, symmetric (./clip.ts)   |
 * | lm       | LM (or its LoRA)                | captions + dialogues, text | next token on every token             |
 * | align    | projector                       | captions                  | next token on the assistant's caption |
 * | instruct | projector + LM (or LM LoRA)     | dialogues                 | next token on assistant tokens        |
 *
 * A stage with `dense > 0` (vision, or instruct with the tower unfrozen) adds the dense per-patch loss of
 * ./dense.ts, weighted by `dense`, on the same forward pass of the tower.
 *
 * Every step runs inside `tidy`; the same seed gives the same losses, and a run resumed from a checkpoint
 * continues bit-identically (model, optimiser buffers and the data position are all in the checkpoint;
 * shuffles are a pure function of (seed, stage, epoch)).
 *
 * Legend: B batch, T padded tokens, D LM width, V vocabulary.
 */
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { ConfigError, InputError } from '../errors.ts';
import { initBackend } from '../backend/index.ts';
import { Llava } from '../models/llava.ts';
import { VisionLanguageModel } from '../runtime/vlm.ts';
import { loadVlmGGUF, llamaToGGUF, mmprojToGGUF } from '../runtime/gguf-vlm.ts';
import { readGGUF, writeGGUF, type GGUFFile, type GGUFValue } from '../formats/gguf.ts';
import { readFileChecked } from '../platform/fs.ts';
import { Tokenizer, trainBPE, DEFAULT_SPECIAL_TOKENS } from '../tokenizer/index.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from '../tokenizer/chat-template.ts';
import { Tensor, noGrad, withoutInit } from '../tensor/tensor.ts';
import { tidy } from '../tensor/storage.ts';
import { backward } from '../tensor/autograd.ts';
import { dequantize } from '../tensor/quant.ts';
import { AdamW, clipGradNorm } from '../tensor/optim.ts';
import { warmupCosine } from '../tensor/schedule.ts';
import { concat, gather } from '../tensor/ops/shape.ts';
import { reshape } from '../tensor/ops/view.ts';
import { crossEntropy } from '../tensor/ops/nn.ts';
import { add, scale } from '../tensor/ops/elementwise.ts';
import { stageData, stageGroups, stageTrainDir, vlmConfigOf, type DataFile, type StageConfig, type TrainConfig } from './config.ts';
import {
  EpochOrder, ImageCache, collate, encodeSamples, firstTurns, loadLlava, questionsInPlace, singleTurns, textOnly, type Batch, type Encoded, type Sample,
} from './data.ts';
import { ClipHead, bagOfWords, clipLoss } from './clip.ts';
import { DenseHead, denseLoss, denseTargets, loadDenseIndex, type DenseTargets } from './dense.ts';
import { attendLoss, attendTargets, imageKeys, questionKeys, turnBoxes, turnWords, type AttendTargets } from './attend.ts';
import { wordAlignLoss, wordAlignTargets, type WordAlignTargets } from './wordalign.ts';
import type { AttentionTap } from '../models/llama.ts';
import { Module } from '../nn/module.ts';
import { addLora, mergeLora } from './lora.ts';
import {
  CHECKPOINT_FILE, readCheckpoint, saveCheckpoint, type EvalEntry, type HistoryEntry, type LoadedCheckpoint, type TrainState,
} from './checkpoint.ts';
import { evaluateSamples, type TaskScores } from './evaluate.ts';
import { loadSceneIndex } from './grading.ts';
import { Progress } from './progress.ts';
import { writeLossCurve } from './plot.ts';

/** vista's own vocabularies: the defaults plus llama.cpp's idefics3 image wrapper tokens. */
export const VISTA_SPECIAL_TOKENS = [...DEFAULT_SPECIAL_TOKENS, '<fake_token_around_image>', '<global-img>'];

export interface TrainOptions {
  /** continue from checkpoint.dir/checkpoint.safetensors */
  resume?: boolean;
  /** stop (with a checkpoint) once this many steps are done in total */
  maxSteps?: number;
  /** print progress to stderr (default true) */
  progress?: boolean;
  /** checkpoint writer (tests simulate crashes with it) */
  write?: (file: string, bytes: Uint8Array) => Promise<void>;
  /** called after every optimizer step: its wall time (data loading included) and real tokens (bench/train.ts) */
  onStep?: (s: { step: number; stage: string; loss: number; ms: number; tokens: number }) => void;
}

export interface TrainResult {
  state: TrainState;
  vlm: Llava;
  tokenizer: Tokenizer;
  /** files written at the end (null when stopped early by maxSteps) */
  outputs: { model: string; mmproj: string; summary: string; curve: string } | null;
}

/** One LM batch ready for the forward pass. */
interface LmBatch {
  batch: Batch;
  px: Float32Array | null;
  attend: AttendAux[];
  /** per scored position, a weight (the follow-up answers'); null: all alike */
  weights: Float32Array | null;
}

/** Run (or resume) the training described by `config`. */
export async function train(config: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  initBackend();
  const t0 = performance.now();
  const write = opts.write;
  const key = configKey(config);

  // ---- resume point --------------------------------------------------------------------------
  const ckpt = opts.resume ? await readCheckpoint(path.join(config.checkpoint.dir, CHECKPOINT_FILE)) : null;
  // at a stage boundary (a finished run, or one stopped between stages) the stages still to come may differ:
  // the run continues a config that shares the finished ones (older checkpoints: only appended stages)
  const appended = ckpt !== null && ckpt.state.configKey !== key && ckpt.state.stageStep === 0
    && (ckpt.state.doneKey ?? ckpt.state.configKey) === configKey(config, ckpt.state.stage);
  if (ckpt && appended) ckpt.state.configKey = key;
  if (ckpt && ckpt.state.configKey !== key)
    throw new ConfigError(`checkpoint in ${config.checkpoint.dir} was made with a different config (seed, model, tokenizer, data or stages changed); ` +
      'start a fresh run or restore the config');

  // ---- data ----------------------------------------------------------------------------------
  const needed = new Set(config.stages.flatMap((s) => stageData(s)));
  // the run's train split (which alone trains the tokenizer) and the splits stages bring of their own
  const trainFiles = new Map<DataFile, Sample[]>();
  for (const f of needed) trainFiles.set(f, await loadLlava(config.data.train, f));
  const stageFiles = new Map<string, Map<DataFile, Sample[]>>([[config.data.train, trainFiles]]);
  for (const st of config.stages) {
    const dir = stageTrainDir(config, st);
    const m = stageFiles.get(dir) ?? new Map<DataFile, Sample[]>();
    stageFiles.set(dir, m);
    for (const f of stageData(st)) if (!m.has(f)) m.set(f, await loadLlava(dir, f));
  }
  const filesOf = (st: StageConfig) => stageFiles.get(stageTrainDir(config, st))!;
  const valFiles = new Map<DataFile, Sample[]>();
  if (config.data.val) for (const f of needed) valFiles.set(f, (await loadLlava(config.data.val, f)).slice(0, config.eval.samples));
  const valScenes = config.data.val ? await loadSceneIndex(config.data.val) : null;
  // scene metadata, from the splits of the stages that use it (a stage on plain LLaVA data needs none)
  const usesScenes = (s: StageConfig) => s.dense > 0 || (s.wordAlign ?? 0) > 0 || (s.attend ?? 0) > 0 || (s.attendQuestion ?? 0) > 0 || s.maxObjects !== undefined;
  const sceneDirs = new Set(config.stages.filter(usesScenes).map((s) => stageTrainDir(config, s)));
  const denseIndex = sceneDirs.size ? new Map((await Promise.all([...sceneDirs].map(loadDenseIndex))).flatMap((m) => [...m])) : null;

  // ---- tokenizer -----------------------------------------------------------------------------
  const init = await readInit(config);
  const tokMeta = ckpt?.state.tokenizer ?? await tokenizerMetadata(config, [...trainFiles.values()].flat(), init);
  const tokenizer = Tokenizer.fromGGUFMetadata(tokMeta);

  // ---- model ---------------------------------------------------------------------------------
  const vlm = buildModel(config, tokenizer.vocabSize, init);
  if (vlm.config.lm.vocab_size < tokenizer.vocabSize)
    throw new ConfigError(`model.lm.vocab_size ${vlm.config.lm.vocab_size} is smaller than the tokenizer's ${tokenizer.vocabSize} tokens`);
  const runtime = new VisionLanguageModel(vlm.lm, vlm, tokenizer, (tokMeta['tokenizer.chat_template'] as string | undefined) ?? DEFAULT_CHAT_TEMPLATE);
  const fmt = runtime.promptFormat();
  const pp = runtime.preprocess!;
  checkImagePolicy(config, pp.policy, pp.algo);
  const images = new ImageCache(pp, config.image.cacheMB * 2 ** 20);
  const N = vlm.imageTokens;
  const maxLen = vlm.config.lm.context_length;

  // tokenize once per (kind, files) — stages that share data share the encoding
  const encoded = new Map<string, { train: Encoded[]; val: Encoded[]; samples: Sample[] }>();
  const encode = (st: StageConfig): { train: Encoded[]; val: Encoded[]; samples: Sample[] } => {
    const files = stageData(st);
    const all = st.name === 'lm';
    const train = filesOf(st);
    const k = `${stageTrainDir(config, st)}:${all}:${files.join('+')}:${st.maxObjects ?? ''}:${st.turns ?? ''}:${st.singleTurns ?? ''}:${st.tasks?.join('+') ?? ''}:${st.singles?.join('+') ?? ''}:${st.inPlace?.join('+') ?? ''}`;
    if (!encoded.has(k)) {
      const cut = (s: Sample): Sample[] => (st.inPlace ? questionsInPlace(s, st.inPlace)
        : st.singleTurns ? singleTurns(s) : [st.turns === undefined ? s : firstTurns(s, st.turns)]);
      const pick = (m: Map<DataFile, Sample[]>, keep = (_: Sample) => true, form = (s: Sample): Sample[] => [s]) =>
        files.flatMap((f) => m.get(f) ?? []).flatMap(form).filter(keep).map((s) => (all ? textOnly(s) : s));
      // a curriculum stage keeps the simple scenes (or first turns) of the train split; val stays whole, so evals
      // stay comparable
      const small = (s: Sample) => st.maxObjects === undefined
        || s.images.every((f) => (denseIndex!.get(f) ?? noScene(f)).length <= st.maxObjects!);
      const firstTask = (s: Sample) => (s.record.tasks as { task?: string }[] | undefined)?.[0]?.task;
      const asked = (s: Sample) => st.tasks === undefined || st.tasks.includes(firstTask(s) ?? '');
      const samples = pick(train, (s) => small(s) && asked(s), cut);
      // the mixed-in single questions of the asked tasks (a single's record holds its own turn's task only, first)
      if (st.singles)
        samples.push(...(train.get('instruct') ?? []).flatMap(singleTurns).filter((s) => small(s) && st.singles!.includes(firstTask(s) ?? '')));
      if (!samples.length)
        throw new ConfigError(`stage '${st.name}': no training dialogue fits its filters (maxObjects ${st.maxObjects ?? '-'}, tasks ${st.tasks?.join(', ') ?? '-'})`);
      encoded.set(k, { train: encodeSamples(samples, fmt, { maxLen, all }), val: encodeSamples(pick(valFiles), fmt, { maxLen, all }), samples });
    }
    return encoded.get(k)!;
  };

  // ---- stages --------------------------------------------------------------------------------
  const total = config.stages.reduce((s, st) => s + st.steps, 0);
  const progress = new Progress({ total, every: config.logEvery, enabled: opts.progress ?? true });
  const state: TrainState = ckpt?.state ?? {
    stage: 0, stageStep: 0, step: 0, pos: { epoch: 0, cursor: 0 }, history: [], evals: [], tokenizer: tokMeta, configKey: key,
    seconds: 0, samples: 0, tokens: 0,
  };
  const secondsBefore = state.seconds;
  const runStart = performance.now();
  let loaded: LoadedCheckpoint | null = ckpt;
  // the training heads: the contrastive head lives for its vision stage; the dense head lives for the whole run, so
  // every stage with dense supervision continues the one trained before it instead of starting a random one (whose
  // first gradients would pull the tower toward random targets while it re-learns)
  const kept = new StageHeads();
  const visionWidth = vlm.config.vision.embedding_length;
  // every checkpoint (mid-stage or boundary) holds the dense head, and a run branched from a kept stage
  // (`init.checkpoint`) continues it too
  const source = ckpt ?? (init && 'checkpoint' in init ? init.checkpoint : null);
  if (source) kept.dense = savedDense(source, visionWidth);
  // a checkpoint at a stage boundary (step 0 of a stage, or after the last) holds only the (merged) model besides:
  // the stage starts as it would have — seeded adapters, a fresh optimiser, data position 0
  if (ckpt && ckpt.state.stageStep === 0) {
    ckpt.loadModel(vlm.namedParameters());
    loaded = null;
  }

  for (let si = state.stage; si < config.stages.length; si++) {
    const st = config.stages[si]!;
    if (state.stageStep === 0 && opts.maxSteps !== undefined && state.step >= opts.maxSteps) {
      await save(config, vlm, kept, null, state, secondsBefore + (performance.now() - runStart) / 1000, write);
      progress.stop();
      return { state, vlm, tokenizer, outputs: null };
    }
    // what this stage trains: everything else frozen
    vlm.setTrainable(false);
    const groups = stageGroups(st);
    if (groups.includes('vision')) vlm.v.setTrainable(true);
    if (groups.includes('projector')) vlm.mm.setTrainable(true);
    if (groups.includes('lm')) vlm.lm.setTrainable(true);
    if (st.lora) addLora(vlm.lm, st.lora.rank, st.lora.alpha, config.seed + 1000 * (si + 1));
    const resume = loaded?.state.stage === si ? loaded : null;
    const heads = stageHeads(st, kept, tokenizer.vocabSize, visionWidth, config.seed + si);

    // optimizer: per group (vision / projector / lm / lora), matrices decay, norms and biases do not
    const named: [string, Tensor, string][] = [];
    for (const [n, t] of vlm.namedParameters()) {
      if (!t.requiresGrad) continue;
      const g = n.includes('.lora_') ? 'lora' : n.startsWith('v.') ? 'vision' : n.startsWith('mm.') ? 'projector' : 'lm';
      named.push([n, t, g]);
    }
    if (heads) for (const [n, t] of heads.namedParameters()) named.push([n, t, 'vision']);
    const specs: { params: Tensor[]; group: 'vision' | 'projector' | 'lm' | 'lora'; weightDecay: number }[] = [];
    for (const g of groups)
      for (const decay of [true, false]) {
        const params = named.filter(([, t, gg]) => gg === g && (t.ndim >= 2) === decay).map(([, t]) => t);
        if (params.length) specs.push({ params, group: g, weightDecay: decay ? st.weightDecay : 0 });
      }
    const opt = new AdamW(specs.map((s) => ({ params: s.params, weightDecay: s.weightDecay })), { betas: [0.9, 0.95], eps: 1e-8 });
    const scheds = specs.map((s) => warmupCosine({ baseLr: st.lr[s.group]!, warmupSteps: st.warmup, totalSteps: st.steps, minLr: st.minLr }));
    const params = specs.flatMap((s) => s.params);

    // data of this stage, in a seeded order
    const data = st.name === 'vision' ? null : encode(st);
    const pairs = st.name === 'vision' ? captionPairs(filesOf(st).get('captions')!, tokenizer) : null;
    const valPairs = st.name === 'vision' ? captionPairs(valFiles.get('captions') ?? [], tokenizer) : null;
    const orderSeed = st.orderSeed ?? config.seed;
    const order = pairs ? new EpochOrder(pairs.length, orderSeed, si)
      : new EpochOrder(data!.train.length, orderSeed, si, { lengths: data!.train.map((e) => e.ids.length), batchSize: st.batchSize });

    if (resume) {
      // exact resume: parameters (incl. adapters and the training heads), optimiser buffers, data position
      resume.loadModel(vlm.namedParameters());
      if (kept.clip) resume.loadHeads(kept.clip.namedParameters('clip'), 'clip');
      opt.loadState({ step: resume.optStep, groups: opt.groups.map((g) => ({ lr: g.lr, weightDecay: g.weightDecay })), tensors: resume.optTensors() });
      order.pos = { ...resume.state.pos };
      loaded = null;
    } else {
      state.stage = si;
      state.stageStep = 0;
    }

    const G = vlm.config.vision.image_size / vlm.config.vision.patch_size;
    const dense = (files: readonly string[]): DenseAux | null => {
      if (!heads?.dense) return null;
      const t = denseTargets(files.map((f) => denseIndex!.get(f) ?? noScene(f)), G);
      return { head: heads.dense, targets: t, weight: st.dense, scene: st.denseScene ?? 0, objects: st.denseObjectWeight ?? 1, position: st.densePosition ?? 0 };
    };
    // grounded attention supervision (./attend.ts): the boxes, and the words naming them, of each turn of each sample
    const supervised = ((st.attend ?? 0) > 0 || (st.attendQuestion ?? 0) > 0) && data;
    const sceneOf = (s: Sample) => (s.images.length === 1 ? denseIndex!.get(s.images[0]!) ?? noScene(s.images[0]!) : null);
    const turnBoxesOf = supervised ? data.samples.map((s) => { const o = sceneOf(s); return o && turnBoxes(s.record.tasks, o); }) : null;
    const turnWordsOf = supervised ? data.samples.map((s) => { const o = sceneOf(s); return o && turnWords(s.record.tasks, o); }) : null;
    const vocabText = supervised ? Array.from({ length: tokenizer.vocabSize }, (_, id) => tokenizer.decode([id])) : [];
    const attendLayer = st.attendLayer ?? Math.floor(vlm.config.lm.block_count / 2);
    if (supervised && attendLayer >= vlm.config.lm.block_count)
      throw new ConfigError(`stages[${si}].attendLayer: ${attendLayer} is not a layer of the ${vlm.config.lm.block_count}-layer LM`);
    if (supervised && (st.attendQuestion ?? 0) > 0 && attendLayer < 1)
      throw new ConfigError(`stages[${si}].attendQuestion: the question hop runs in the layer below attendLayer, which is 0`);
    const attend = (ids: number[], batch: Batch): AttendAux[] => {
      if (!supervised) return [];
      const es = ids.map((i) => data.train[i]!);
      const at = new Map(ids.map((i) => [data.train[i]!, i] as const));
      const out: AttendAux[] = [];
      const img = (st.attend ?? 0) > 0 ? attendTargets(batch, es, imageKeys(N, (e) => turnBoxesOf![at.get(e)!] ?? null)) : null;
      if (img) out.push({ targets: img, weight: st.attend!, layer: attendLayer, head: 0 });
      const q = (st.attendQuestion ?? 0) > 0 ? attendTargets(batch, es, questionKeys((e) => turnWordsOf![at.get(e)!] ?? null, (id) => vocabText[id] ?? '')) : null;
      if (q) out.push({ targets: q, weight: st.attendQuestion!, layer: attendLayer - 1, head: 0 });
      return out;
    };
    // word alignment (./wordalign.ts): the image tokens of each batch image and the words naming their objects
    const gridN = Math.round(Math.sqrt(N));
    const spelt = new Map<string, number[]>();
    const wordIds = (w: string): number[] => spelt.get(w) ?? spelt.set(w, tokenizer.encode(w, { addBos: false, parseSpecial: false })).get(w)!;
    const words = (files: readonly string[]): WordAlignAux | null => (st.wordAlign ?? 0) > 0 && files.length
      ? { targets: wordAlignTargets(files.map((f) => denseIndex!.get(f) ?? noScene(f)), gridN, wordIds), weight: st.wordAlign! } : null;
    const loss = (b: LmBatch): Tensor => lmLoss(vlm, b.batch, b.px, N, dense(b.batch.images), b.attend, words(b.batch.images),
      st.answerWeight ?? 0, b.weights);
    const nextLm = async (ids: number[]): Promise<LmBatch> => {
      const batch = collate(ids.map((i) => data!.train[i]!), N);
      const weights = st.followUpWeight !== undefined && st.followUpWeight !== 1
        ? followUpWeights(batch, ids.map((i) => data!.samples[i]!), st.followUpWeight) : null;
      return { batch, px: batch.images.length ? await images.batch(batch.images) : null, attend: attend(ids, batch), weights };
    };

    // validation loss of this stage's objective on the first eval.samples val items (+ graded answers for instruct)
    const evaluate = async (s: StageConfig, step: number): Promise<EvalEntry> => {
      let sum = 0;
      let n = 0;
      if (valPairs) {
        for (let i = 0; i + 1 < valPairs.length; i += s.batchSize) {
          const chunk = valPairs.slice(i, i + s.batchSize);
          if (chunk.length < 2) break;
          const px = await images.batch(chunk.map((p) => p.image));
          const bow = bagOfWords(chunk.map((p) => p.caption), tokenizer.vocabSize);
          sum += noGrad(() => tidy(() => clipLoss(heads!.clip!, vlm.v.forward(Tensor.from(px, [chunk.length, 3, pp.imageSize, pp.imageSize])), bow).item())) * chunk.length;
          n += chunk.length;
        }
      } else {
        const val = data!.val;
        for (let i = 0; i < val.length; i += s.batchSize) {
          const batch = collate(val.slice(i, i + s.batchSize), N);
          const px = batch.images.length ? await images.batch(batch.images) : null;
          sum += noGrad(() => tidy(() => lmLoss(vlm, batch, px, N).item())) * batch.scored.length;
          n += batch.scored.length;
        }
      }
      const entry: EvalEntry = { step, stage: s.name, valLoss: n ? sum / n : NaN };
      if (s.name === 'instruct' && config.eval.generate > 0) {
        const samples = (valFiles.get('instruct') ?? []).slice(0, config.eval.generate);
        entry.scores = flatScores(await evaluateSamples(runtime, samples, valScenes));
      }
      return entry;
    };

    while (state.stageStep < st.steps) {
      if (opts.maxSteps !== undefined && state.step >= opts.maxSteps) {
        state.pos = { ...order.pos };
        await save(config, vlm, kept, opt, state, secondsBefore + (performance.now() - runStart) / 1000, write);
        progress.stop();
        return { state, vlm, tokenizer, outputs: null };
      }
      // ---- one optimizer step: gradAccum micro-batches --------------------------------------
      const stepStart = performance.now();
      let lossSum = 0;
      let tokens = 0;
      for (let micro = 0; micro < st.gradAccum; micro++) {
        const ids = order.next(st.batchSize);
        if (pairs) {
          const px = await images.batch(ids.map((i) => pairs[i]!.image));
          const bow = bagOfWords(ids.map((i) => pairs[i]!.caption), tokenizer.vocabSize);
          const aux = dense(ids.map((i) => pairs[i]!.image));
          lossSum += tidy(() => {
            const feats = vlm.v.forward(Tensor.from(px, [ids.length, 3, pp.imageSize, pp.imageSize]));
            let l = clipLoss(heads!.clip!, feats, bow);
            if (aux) l = add(l, scale(denseLoss(aux.head, feats, aux.targets, aux.scene, aux.objects, aux.position), aux.weight));
            backward(scale(l, 1 / st.gradAccum));
            return l.item();
          });
          tokens += ids.length * (pp.imageSize / vlm.config.vision.patch_size) ** 2;
        } else {
          const b = await nextLm(ids);
          lossSum += tidy(() => {
            const l = loss(b);
            backward(scale(l, 1 / st.gradAccum));
            return l.item();
          });
          tokens += b.batch.tokens;
        }
      }
      if (st.clip > 0) clipGradNorm(params, st.clip);
      const k = state.stageStep + 1;
      opt.groups.forEach((g, i) => (g.lr = scheds[i]!(k)));
      opt.step();
      opt.zeroGrad();
      heads?.clip?.clampScale();

      state.stageStep = k;
      state.step++;
      state.samples += st.batchSize * st.gradAccum;
      state.tokens += tokens;
      const stepLoss = lossSum / st.gradAccum;
      state.history.push({ step: state.step, stage: st.name, loss: stepLoss, lr: opt.groups[0]!.lr });
      const stepMs = performance.now() - stepStart;
      progress.update(state.step, st.name, stepLoss, tokens / (stepMs / 1000));
      opts.onStep?.({ step: state.step, stage: st.name, loss: stepLoss, ms: stepMs, tokens });

      if (config.eval.every > 0 && state.step % config.eval.every === 0 && state.stageStep < st.steps)
        state.evals.push(await evaluate(st, state.step));
      if (config.checkpoint.every > 0 && state.step % config.checkpoint.every === 0) {
        state.pos = { ...order.pos };
        await save(config, vlm, kept, opt, state, secondsBefore + (performance.now() - runStart) / 1000, write);
      }
    }
    // ---- end of stage ---------------------------------------------------------------------------
    if (config.data.val && config.eval.samples > 0) {
      const e = await evaluate(st, state.step);
      state.evals.push(e);
      progress.log(`[${st.name}] done at step ${state.step}: val loss ${e.valLoss.toFixed(4)}${e.scores ? ` ${JSON.stringify(e.scores)}` : ''}`);
    }
    if (st.lora) mergeLora(vlm.lm);
    kept.clip = null;
    state.pos = { epoch: 0, cursor: 0 };
    state.stage = si + 1;
    state.stageStep = 0;
    // a boundary checkpoint: a resumed run may change the stages still to come
    if ((config.checkpoint.every > 0 || config.checkpoint.keepStages) && si + 1 < config.stages.length) {
      await save(config, vlm, kept, null, state, secondsBefore + (performance.now() - runStart) / 1000, write,
        config.checkpoint.keepStages ? `stage-${si}-${st.name}` : undefined);
    }

  }

  // ---- export --------------------------------------------------------------------------------
  progress.stop();
  const seconds = secondsBefore + (performance.now() - runStart) / 1000;
  await save(config, vlm, kept, null, state, seconds, write);
  const outputs = await exportModel(config, vlm, tokMeta, state, seconds, (performance.now() - t0) / 1000);
  return { state, vlm, tokenizer, outputs };
}

/**
 * Mean next-token loss of a right-padded batch. Text embeddings (B·T, D) and image embeddings
 * (images·N, D) are stacked and one gather puts every image embedding at its slot; only scored
 * positions reach the output projection. `answerWeight` p weighs each scored token by 1/len(its answer)^p;
 * `weights` (one per scored position) multiply in.
 */
export function lmLoss(vlm: Llava, b: Batch, px: Float32Array | null, N: number,
  aux: DenseAux | null = null,
  att: readonly AttendAux[] = [], words: WordAlignAux | null = null, answerWeight = 0, weights: Float32Array | null = null): Tensor {
  let feats: Tensor | null = null;
  if (px) {
    const S = vlm.config.vision.image_size;
    feats = vlm.v.forward(Tensor.from(px, [b.images.length, 3, S, S])); // (images, P, E)
  }
  const terms: Tensor[] = [];
  const tap: AttentionTap | null = att.length && feats ? (layer, q, k) => {
    for (const a of att) if (a.layer === layer) terms.push(scale(attendLoss(q, k, a.head, a.targets), a.weight));
  } : null;
  const img = feats ? vlm.mm.forward(feats) : null;
  let w: Float32Array | null = answerWeight > 0 ? Float32Array.from(b.answerLen, (n) => n ** -answerWeight) : null;
  if (weights) w = w ? w.map((x, i) => x * weights[i]!) : weights;
  let l = crossEntropy(scoredLogits(vlm, b, img, N, tap), b.targets, -100, w);
  if (img && words && words.targets.rows.length) l = add(l, scale(wordAlignLoss(img, vlm.lm.token_embd.weight, words.targets), words.weight));
  if (feats && aux) l = add(l, scale(denseLoss(aux.head, feats, aux.targets, aux.scene, aux.objects, aux.position), aux.weight));
  for (const t of terms) l = add(l, t);
  return l;
}

/**
 * Per scored position of a batch, `f` if it belongs to the answer of a follow-up turn, else 1. A sample's answers
 * are its runs of consecutive scored positions, in turn order, matched one to one with its record's task metadata
 * (`tasks[k].followUp`); a sample without metadata (a caption) weighs 1. A count mismatch is an InputError naming
 * the sample — never a silently misweighted one.
 */
export function followUpWeights(b: Batch, samples: readonly Sample[], f: number): Float32Array {
  const rowOf = Int32Array.from(b.scored, (p) => Math.floor(p / b.T));
  const answers = new Int32Array(b.B);
  rowOf.forEach((r, i) => (answers[r] = b.answerTurn[i]! + 1));
  const tasks = samples.map((s) => s.record.tasks as { followUp?: boolean }[] | undefined);
  tasks.forEach((t, r) => {
    if (t && t.length !== answers[r])
      throw new InputError(`sample ${samples[r]!.id}: ${answers[r]} answers for ${t.length} turns of task metadata`);
  });
  return Float32Array.from(rowOf, (r, i) => (tasks[r]?.[b.answerTurn[i]!]?.followUp === true ? f : 1));
}

/** The dense loss of one batch (./dense.ts): head, targets, its weight, the scene-summary, object and position-digit weights. */
export interface DenseAux { head: DenseHead; targets: DenseTargets; weight: number; scene: number; objects: number; position?: number }

/** Word alignment of one batch's image tokens (./wordalign.ts) and its weight. */
export interface WordAlignAux { targets: WordAlignTargets; weight: number }

/** Grounded attention supervision of one batch (./attend.ts): targets, weight, and which layer and head. */
export interface AttendAux { targets: AttendTargets; weight: number; layer: number; head: number }

/**
 * Logits (scored, V) of a batch's scored positions, with image embeddings `img` (images, N, D) at their slots.
 * `tap` sees each layer's rotated queries and keys.
 */
export function scoredLogits(vlm: Llava, b: Batch, img: Tensor | null, N: number, tap: AttentionTap | null = null): Tensor {
  const D = vlm.config.lm.embedding_length;
  // the LM runs on the R real tokens only (Llama.hidden's packed rows); pads are never computed
  let x = reshape(vlm.lm.embed(b.realIds), [b.tokens, D]); // (R, D)
  if (img) x = gather(concat([x, reshape(img, [b.images.length * N, D])], 0), 0, b.realRows); // (R, D)
  const h = vlm.lm.hidden(x, { tap, packed: b.packed }); // (R, D)
  return vlm.lm.logits(gather(h, 0, b.scoredReal)); // (scored, V)
}

/** The throwaway heads trained beside the model: contrastive (a vision stage's) and dense (the run's). */
class StageHeads extends Module {
  clip: ClipHead | null = null;
  dense: DenseHead | null = null;
}

/**
 * The heads stage `st` trains, set in `kept`: a seeded contrastive head for a vision stage; for dense supervision the
 * dense head kept from an earlier stage (given a scene or position head if this stage asks for one), else a seeded new one.
 * Null when the stage trains no head (a kept dense head waits for the next stage that does).
 */
function stageHeads(st: StageConfig, kept: StageHeads, vocab: number, visionWidth: number, seed: number): StageHeads | null {
  kept.clip = st.name === 'vision' ? new ClipHead(vocab, visionWidth, st.clipDim, seed) : null;
  if (st.dense > 0) {
    const scene = (st.denseScene ?? 0) > 0;
    const position = (st.densePosition ?? 0) > 0;
    if (!kept.dense) kept.dense = new DenseHead(visionWidth, seed, { scene, position });
    else {
      if (scene) kept.dense.addScene(seed);
      if (position) kept.dense.addPosition(seed);
    }
  }
  const h = new StageHeads();
  h.clip = kept.clip;
  h.dense = st.dense > 0 ? kept.dense : null;
  return h.clip || h.dense ? h : null;
}

/** The dense head a checkpoint holds (`heads.dense.*`, with or without its scene and position heads), loaded; null if none. */
function savedDense(ckpt: LoadedCheckpoint, visionWidth: number): DenseHead | null {
  const names = ckpt.headNames();
  if (!names.some((n) => n.startsWith('dense.'))) return null;
  const head = new DenseHead(visionWidth, 0, { scene: names.includes('dense.scene.weight'), position: names.includes('dense.position.weight') });
  ckpt.loadHeads(head.namedParameters('dense'), 'dense');
  return head;
}

function noScene(file: string): never {
  throw new InputError(`dense supervision: no scene metadata for image ${file} in the training split's metadata.jsonl`);
}

/** (image, caption token ids) pairs of caption samples: the caption is the first assistant answer. */
function captionPairs(samples: readonly Sample[], tok: Tokenizer): { image: string; caption: number[] }[] {
  return samples.filter((s) => s.images.length).map((s) => {
    const a = s.messages.find((m) => m.role === 'assistant');
    const text = typeof a?.content === 'string' ? a.content : '';
    return { image: s.images[0]!, caption: tok.encode(text, { addBos: false, parseSpecial: false }) };
  });
}

/** The run's starting point, read once: a GGUF pair or a finished checkpoint, with its tokenizer's metadata. */
type InitSource = { file: string; tokenizer: Record<string, GGUFValue> }
  & ({ model: GGUFFile; mmproj: GGUFFile } | { checkpoint: LoadedCheckpoint });

async function readInit(config: TrainConfig): Promise<InitSource | null> {
  const init = config.init;
  if (!init) return null;
  if ('checkpoint' in init) {
    const checkpoint = await readCheckpoint(init.checkpoint);
    return { file: checkpoint.file, tokenizer: checkpoint.state.tokenizer as Record<string, GGUFValue>, checkpoint };
  }
  const model = readGGUF(await readFileChecked(init.model));
  return { file: init.model, tokenizer: tokenizerOf(model), model, mmproj: readGGUF(await readFileChecked(init.mmproj)) };
}

/** The `tokenizer.*` metadata of a GGUF file. */
function tokenizerOf(f: GGUFFile): Record<string, GGUFValue> {
  return Object.fromEntries(Object.entries(f.metadata).filter(([k]) => k.startsWith('tokenizer.')));
}

/**
 * The tokenizer's GGUF metadata: trained on the rendered training conversations, taken from a GGUF, or, when the
 * config names none, the init's (a GGUF model or a checkpoint). An init's embeddings are indexed by its own
 * tokenizer's ids, so a configured tokenizer that differs from the init's is an error, not a silent remapping.
 */
async function tokenizerMetadata(config: TrainConfig, samples: readonly Sample[], init: InitSource | null): Promise<Record<string, GGUFValue>> {
  const t = config.tokenizer;
  let meta: Record<string, GGUFValue>;
  if (t && 'train' in t) {
    const texts = samples.map((s) => renderChatTemplate(DEFAULT_CHAT_TEMPLATE, s.messages as ChatMessage[], { tools: s.tools }));
    meta = trainBPE(texts, { vocabSize: t.train.vocabSize, pre: 'smollm', specialTokens: VISTA_SPECIAL_TOKENS }) as Record<string, GGUFValue>;
  } else if (t && 'gguf' in t) meta = tokenizerOf(readGGUF(await readFileChecked(t.gguf)));
  else if (init) return init.tokenizer;
  else throw new ConfigError('training config: tokenizer: no source');
  if (init && !sameTokens(meta, init.tokenizer))
    throw new ConfigError(`training config: tokenizer: differs from the tokenizer of init ${init.file}, whose embeddings are indexed by its own ids; leave 'tokenizer' out to use init's`);
  return meta;
}

/** Whether two tokenizers' metadata list the same tokens in the same order. */
function sameTokens(a: Record<string, GGUFValue>, b: Record<string, GGUFValue>): boolean {
  const ta = a['tokenizer.ggml.tokens'], tb = b['tokenizer.ggml.tokens'];
  return Array.isArray(ta) && Array.isArray(tb) && ta.length === tb.length && ta.every((v, i) => v === tb[i]);
}

/** A fresh model from the config, or one started from a GGUF pair / a finished checkpoint (all f32, trainable). */
function buildModel(config: TrainConfig, vocab: number, init: InitSource | null): Llava {
  if (init && 'model' in init) {
    const vlm = loadVlmGGUF(init.model, init.mmproj);
    const f32 = new Map<string, Tensor>();
    for (const [n, t] of vlm.namedParameters()) f32.set(n, t.dtype === 'f32' ? t : dequantize(t));
    const fresh = withoutInit(() => new Llava(vlm.config));
    fresh.loadParameters(f32);
    return fresh;
  }
  const vlm = new Llava(vlmConfigOf(config, vocab), config.seed);
  if (init) init.checkpoint.loadModel(vlm.namedParameters());
  return vlm;
}

function checkImagePolicy(c: TrainConfig, policy: string, algo: string): void {
  if (c.image.policy && c.image.policy !== policy)
    throw new ConfigError(`training config: image.policy: '${c.image.policy}' differs from the '${policy}' the runtime uses for this projector type; trained and served images must be prepared alike`);
  if (c.image.algo && c.image.algo !== algo)
    throw new ConfigError(`training config: image.algo: '${c.image.algo}' differs from the '${algo}' the runtime uses for this projector type`);
}

/** The fields a resumed run must share with the checkpoint. */
function configKey(c: TrainConfig, stages = c.stages.length): string {
  return JSON.stringify({ seed: c.seed, model: c.model, init: c.init, tokenizer: c.tokenizer, data: c.data.train, stages: c.stages.slice(0, stages) });
}

async function save(config: TrainConfig, vlm: Llava, heads: StageHeads | null, opt: AdamW | null, state: TrainState, seconds: number,
  write?: (file: string, bytes: Uint8Array) => Promise<void>, keepAs?: string): Promise<void> {
  state.seconds = seconds;
  state.doneKey = configKey(config, state.stage);
  const o = opt ? opt.state() : { step: 0, tensors: {} };
  await saveCheckpoint(config.checkpoint.dir, { model: vlm.namedParameters(), heads: heads ? heads.namedParameters() : null, opt: o }, state, write, keepAs);
}

function flatScores(s: TaskScores): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [task, v] of Object.entries(s)) for (const [m, x] of Object.entries(v.metrics)) out[`${task}.${m}`] = x;
  return out;
}

/** Write the LM + mmproj GGUFs, the loss curve and a JSON summary to output.dir. */
async function exportModel(config: TrainConfig, vlm: Llava, tokMeta: Record<string, unknown>, state: TrainState, seconds: number,
  wall: number): Promise<NonNullable<TrainResult['outputs']>> {
  const o = config.output;
  await mkdir(o.dir, { recursive: true });
  const files = {
    model: path.join(o.dir, `${o.name}.gguf`),
    mmproj: path.join(o.dir, `mmproj-${o.name}.gguf`),
    curve: path.join(o.dir, `${o.name}.loss.png`),
    summary: path.join(o.dir, `${o.name}.summary.json`),
  };
  const meta = { 'tokenizer.chat_template': DEFAULT_CHAT_TEMPLATE, ...tokMeta } as Record<string, GGUFValue>;
  await writeFile(files.model, writeGGUF(llamaToGGUF(vlm.lm, meta, { type: o.type, name: o.name })));
  await writeFile(files.mmproj, writeGGUF(mmprojToGGUF(vlm, { type: o.type, name: o.name })));
  await writeLossCurve(files.curve, state.history, state.evals, `${o.name}: training loss`);
  const finals: Record<string, number> = {};
  for (const h of state.history) finals[h.stage] = h.loss;
  const summary = {
    name: o.name, type: o.type, steps: state.step, trainSeconds: +seconds.toFixed(2), wallSecondsThisRun: +wall.toFixed(2),
    samplesPerSecond: +(state.samples / Math.max(seconds, 1e-9)).toFixed(3),
    tokensPerSecond: +(state.tokens / Math.max(seconds, 1e-9)).toFixed(1),
    finalTrainLoss: finals, lastEvals: lastPerStage(state.evals), params: vlm.numParams(),
  };
  await writeFile(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return files;
}

function lastPerStage(evals: readonly EvalEntry[]): Record<string, EvalEntry> {
  const out: Record<string, EvalEntry> = {};
  for (const e of evals) out[e.stage] = e;
  return out;
}

export type { HistoryEntry, EvalEntry };
