/**
 * The training config: one JSON file, validated with zod into a readonly typed object. Model keys keep the
 * GGUF spelling (`embedding_length`, `attention.head_count`, …) so a config reads like the file it makes.
 * Relative paths are resolved against the config file's directory. To fine-tune, `init` starts from a GGUF pair
 * (`{ "model", "mmproj" }`) or a training checkpoint (`{ "checkpoint" }`: its file, or the run's checkpoint directory); leave `tokenizer` out to keep init's
 * (a configured tokenizer must equal it: init's embeddings are indexed by its ids).
 *
 * @example
 * {
 *   "seed": 1,
 *   "data": { "train": "data/train", "val": "data/val" },
 *   "model": { "vision": { "image_size": 64, "patch_size": 8, "embedding_length": 96, "feed_forward_length": 256,
 *                          "block_count": 4, "attention.head_count": 4 },
 *              "projector": { "projector_type": "idefics3", "scale_factor": 2 },
 *              "lm": { "embedding_length": 128, "block_count": 4, "feed_forward_length": 320,
 *                      "attention.head_count": 4, "attention.head_count_kv": 2, "context_length": 512 } },
 *   "tokenizer": { "train": { "vocabSize": 1024 } },
 *   "stages": [
 *     { "name": "vision", "steps": 400, "batchSize": 32, "lr": { "vision": 1e-3 } },
 *     { "name": "lm", "steps": 400, "batchSize": 16, "lr": { "lm": 1e-3 } },
 *     { "name": "align", "steps": 300, "batchSize": 16, "lr": { "projector": 1e-3 } },
 *     { "name": "instruct", "steps": 2000, "batchSize": 16, "lr": { "projector": 5e-4, "lm": 5e-4 }, "warmup": 50 }
 *   ],
 *   "eval": { "every": 200, "samples": 64, "generate": 16 },
 *   "checkpoint": { "dir": "runs/shapes/ckpt", "every": 100, "keepStages": true },
 *   "output": { "dir": "models", "name": "vista-shapes", "type": "q8_0" }
 * }
 */
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { TASKS } from '../data/instruct.ts';
import type { VlmConfig } from '../models/llava.ts';

const int = (min: number) => z.number().int().min(min);
const pos = () => int(1);
const rate = () => z.number().min(0).max(10);

const Vision = z.object({
  image_size: pos(),
  patch_size: pos(),
  embedding_length: pos(),
  feed_forward_length: pos(),
  block_count: pos(),
  'attention.head_count': pos(),
  'attention.layer_norm_epsilon': z.number().positive().default(1e-6),
  image_mean: z.tuple([z.number(), z.number(), z.number()]).default([0.5, 0.5, 0.5]),
  image_std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([0.5, 0.5, 0.5]),
  // vista's own towers use llama.cpp's idefics3/SigLIP layout (see runtime/gguf-vlm.ts)
  activation: z.enum(['gelu_erf', 'gelu_tanh', 'quick_gelu', 'silu']).default('gelu_tanh'),
  class_token: z.boolean().default(false),
  patch_bias: z.boolean().default(true),
  pre_ln: z.boolean().default(false),
  post_ln: z.boolean().default(true),
}).strict();

const Projector = z.object({
  projector_type: z.enum(['mlp', 'idefics3']).default('idefics3'),
  scale_factor: pos().optional(),
  hidden_dim: pos().optional(),
  activation: z.enum(['gelu_erf', 'gelu_tanh', 'quick_gelu', 'silu']).optional(),
}).strict();

const Lm = z.object({
  /** default: the tokenizer's vocabulary size */
  vocab_size: pos().optional(),
  context_length: pos().default(512),
  embedding_length: pos(),
  block_count: pos(),
  feed_forward_length: pos(),
  'attention.head_count': pos(),
  'attention.head_count_kv': pos().optional(),
  'attention.layer_norm_rms_epsilon': z.number().positive().default(1e-5),
  'rope.freq_base': z.number().positive().default(10000),
  tied_embeddings: z.boolean().default(false),
}).strict();

const Lr = z.object({ vision: rate(), projector: rate(), lm: rate(), lora: rate() }).partial().strict();

export const STAGE_NAMES = ['vision', 'lm', 'align', 'instruct'] as const;
export type StageName = (typeof STAGE_NAMES)[number];
export type DataFile = 'captions' | 'instruct';

const Stage = z.object({
  name: z.enum(STAGE_NAMES),
  steps: pos(),
  batchSize: pos(),
  gradAccum: pos().default(1),
  lr: Lr,
  warmup: int(0).default(0),
  /** floor of the cosine decay (absolute; must not exceed any group's lr) */
  minLr: z.number().min(0).default(0),
  /** decoupled weight decay on matrices (norm weights and biases never decay) */
  weightDecay: z.number().min(0).default(0.0),
  /** global gradient-norm clip; 0 = off */
  clip: z.number().min(0).default(1),
  lora: z.object({ rank: pos(), alpha: z.number().positive() }).strict().optional(),
  /** which LLaVA files feed the stage (default: vision/align → captions, lm → both, instruct → instruct) */
  data: z.array(z.enum(['captions', 'instruct'])).min(1).optional(),
  /** vision stage: width of the contrastive embedding space */
  clipDim: pos().default(64),
  /** weight of the dense per-patch loss on the vision tower from scene metadata (./dense.ts); 0 = off */
  dense: z.number().min(0).default(0),
  /** weight, inside the dense loss, of the scene summary every patch predicts (./dense.ts); needs dense > 0 */
  denseScene: z.number().min(0).optional(),
  /** weight, inside the dense loss, of the position digits object patches predict (./dense.ts); needs dense > 0 */
  densePosition: z.number().min(0).optional(),
  /** weight of an object patch against a background patch in the dense class losses (./dense.ts); default 1 */
  denseObjectWeight: z.number().positive().optional(),
  /** weight of grounded attention supervision (./attend.ts): one head looks at the objects a turn is about */
  attend: z.number().min(0).optional(),
  /** the layer whose first head is supervised (default: the middle one, block_count / 2 rounded down) */
  attendLayer: int(0).optional(),
  /** weight of the question hop (./attend.ts): the first head of the layer below attendLayer looks, while the
   *  LM answers, at the question's words that name the objects */
  attendQuestion: z.number().min(0).optional(),
  /** weight of word alignment (./wordalign.ts): image tokens that cover an object point at the LM's embeddings of
   *  its words; needs scene metadata and a stage that trains the projector */
  wordAlign: z.number().min(0).optional(),
  /** how the next-token loss weighs answers: each scored token counts 1/len(its answer)^answerWeight, so 0 (the
   *  default) weighs every token alike and 1 every answer alike (a one-word colour as much as a caption) */
  answerWeight: z.number().min(0).max(1).optional(),
  /** how much more the answer to a follow-up turn counts ("What shape is it?": a turn whose object an earlier turn
   *  named, per the generated dialogues' task metadata) than any other answer; default 1 */
  followUpWeight: z.number().positive().optional(),
  /** seeds this stage's data order in place of the run's seed (the stage's index still picks the stream): a
   *  stage re-run from its boundary checkpoint on another order measures how much a result is run-to-run noise */
  orderSeed: int(0).optional(),
  /** curriculum: train only on dialogues whose scene holds at most this many objects (needs scene metadata) */
  maxObjects: pos().optional(),
  /** curriculum: train on each dialogue's first this many question–answer turns only (a first turn never leans
   *  on an earlier one); single-question samples are where a from-scratch LM first learns to look things up */
  turns: pos().optional(),
  /** each question that does not lean on an earlier turn becomes its own single-question sample (the form of
   *  the canonical items in eval.jsonl; ./data.ts singleTurns) */
  singleTurns: z.boolean().optional(),
  /** curriculum: train only on dialogues whose first question is one of these tasks (needs generated dialogues'
   *  task metadata), e.g. the single-lookup tasks before the compound ones */
  tasks: z.array(z.enum(TASKS as unknown as [string, ...string[]])).min(1).optional(),
  /** curriculum: each self-standing question of these tasks where its dialogue asks it, as its own sample (the
   *  dialogue cut after that answer; ./data.ts questionsInPlace) — single questions, in the dialogue's form */
  inPlace: z.array(z.enum(TASKS as unknown as [string, ...string[]])).min(1).optional(),
  /** mix: besides the stage's data, every dialogue turn of these tasks that does not lean on an earlier turn, as its
   *  own single-question sample (./data.ts singleTurns). Mixing in relation, ground and click this way made the
   *  bundled recipe worse on every task (README); off in the default recipe */
  singles: z.array(z.enum(TASKS as unknown as [string, ...string[]])).min(1).optional(),
  /** the stage's own train split (a directory like `data.train`, relative to the config): e.g. a later stage on
   *  freshly generated dialogues instead of more passes over the first split. The tokenizer is still trained on
   *  `data.train` alone, so adding or changing a stage's split never changes it; val stays `data.val` */
  train: z.string().min(1).optional(),
}).strict();

const Paths = z.object({ train: z.string().min(1), val: z.string().min(1).optional(), test: z.string().min(1).optional() }).strict();

const Init = z.union([
  z.object({ model: z.string().min(1), mmproj: z.string().min(1) }).strict(),
  z.object({ checkpoint: z.string().min(1) }).strict(),
]);

const Schema = z.object({
  seed: int(0).default(0),
  data: Paths,
  model: z.object({ vision: Vision, projector: Projector.default({ projector_type: 'idefics3' }), lm: Lm }).strict().optional(),
  init: Init.optional(),
  tokenizer: z.union([
    z.object({ train: z.object({ vocabSize: int(300) }).strict() }).strict(),
    z.object({ gguf: z.string().min(1) }).strict(),
  ]).optional(),
  stages: z.array(Stage).min(1),
  eval: z.object({ every: int(0).default(0), samples: int(0).default(64), generate: int(0).default(0) }).strict().default({ every: 0, samples: 64, generate: 0 }),
  checkpoint: z.object({
    dir: z.string().min(1),
    every: int(0).default(0),
    /** also keep the model after each stage but the last as `stage-<i>-<name>.safetensors` in `dir` (a training
     *  checkpoint: `init: { checkpoint }` branches a new recipe from it without re-running the stages before) */
    keepStages: z.boolean().default(false),
  }).strict(),
  output: z.object({ dir: z.string().min(1), name: z.string().regex(/^[\w.-]+$/), type: z.enum(['f32', 'f16', 'q8_0']).default('f32') }).strict(),
  image: z.object({
    /** must equal what the runtime uses for the projector type (VisionLanguageModel.preprocess); checked */
    policy: z.enum(['stretch', 'letterbox', 'pad-mean']).optional(),
    algo: z.enum(['bilinear', 'bicubic']).optional(),
    /** preprocessed-image cache size */
    cacheMB: int(0).default(512),
  }).strict().default({ cacheMB: 512 }),
  /** log line every N steps when stderr is not a TTY */
  logEvery: pos().default(10),
}).strict();

type Parsed = z.infer<typeof Schema>;
type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

export type TrainConfig = DeepReadonly<Parsed>;
export type StageConfig = TrainConfig['stages'][number];

/** Default data files of each stage. */
export function stageData(s: StageConfig): readonly DataFile[] {
  if (s.data) return s.data;
  return s.name === 'instruct' ? ['instruct'] : s.name === 'lm' ? ['captions', 'instruct'] : ['captions'];
}

/** The train split a stage reads: its own, or the run's. */
export function stageTrainDir(c: TrainConfig, s: StageConfig): string {
  return s.train ?? c.data.train;
}

/** Parameter groups a stage trains (the rest are frozen). */
export function stageGroups(s: StageConfig): readonly ('vision' | 'projector' | 'lm' | 'lora')[] {
  switch (s.name) {
    case 'vision': return ['vision'];
    case 'lm': return s.lora ? ['lora'] : ['lm'];
    case 'align': return ['projector'];
    // the vision tower is unfrozen too when the stage gives it a learning rate (LLaVA-OneVision / SmolVLM style)
    case 'instruct': return [...(s.lr.vision !== undefined ? ['vision' as const] : []), 'projector', s.lora ? 'lora' : 'lm'];
  }
}

function where(p: readonly PropertyKey[]): string {
  return p.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '') || '(root)';
}

/**
 * Validate a parsed JSON value into a TrainConfig. Throws ConfigError naming every bad field.
 * `baseDir` resolves relative paths (default: the working directory).
 */
export function parseTrainConfig(raw: unknown, baseDir = '.'): TrainConfig {
  const r = Schema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${where(i.path)}: ${i.message}`);
    throw new ConfigError(`training config: ${lines.join('; ')}`);
  }
  const c = r.data;
  const bad = (field: string, msg: string): never => {
    throw new ConfigError(`training config: ${field}: ${msg}`);
  };
  if (!c.model && !c.init) bad('model', 'give a model config or an init (GGUF pair or checkpoint) to start from');
  if (c.model && c.init && 'model' in c.init) bad('init', 'give either a model config or an init GGUF pair, not both');
  if (!c.model && c.init && 'checkpoint' in c.init) bad('model', 'a checkpoint init holds the weights only: give the model config it was trained with');
  if (!c.tokenizer && !c.init) bad('tokenizer', 'needed unless an init (GGUF pair or checkpoint) brings its own (train: {vocabSize} or gguf: path)');
  if (c.model) {
    const v = c.model.vision;
    if (v.image_size % v.patch_size) bad('model.vision.image_size', `${v.image_size} is not a multiple of patch_size ${v.patch_size}`);
    if (v.embedding_length % v['attention.head_count']) bad('model.vision.embedding_length', `${v.embedding_length} is not a multiple of the ${v['attention.head_count']} heads`);
    const l = c.model.lm;
    if (l.embedding_length % l['attention.head_count']) bad('model.lm.embedding_length', `${l.embedding_length} is not a multiple of the ${l['attention.head_count']} heads`);
    const kv = l['attention.head_count_kv'] ?? l['attention.head_count'];
    if (l['attention.head_count'] % kv) bad('model.lm.attention.head_count_kv', `${kv} does not divide head_count ${l['attention.head_count']}`);
    const p = c.model.projector;
    const side = v.image_size / v.patch_size;
    if (p.projector_type === 'idefics3' && side % (p.scale_factor ?? 2)) bad('model.projector.scale_factor', `${p.scale_factor ?? 2} does not divide the ${side}×${side} patch grid`);
  }
  c.stages.forEach((s, i) => {
    const at = `stages[${i}]`;
    const groups = stageGroups(s);
    for (const g of groups) if (s.lr[g] === undefined) bad(`${at}.lr.${g}`, `stage '${s.name}' trains the ${g} group: give its learning rate`);
    for (const g of Object.keys(s.lr)) if (!groups.includes(g as never)) bad(`${at}.lr.${g}`, `stage '${s.name}' does not train the ${g} group (it trains ${groups.join(', ')})`);
    for (const g of groups) if (s.minLr > s.lr[g]!) bad(`${at}.minLr`, `${s.minLr} exceeds lr.${g} = ${s.lr[g]}`);
    if (s.warmup > s.steps) bad(`${at}.warmup`, `${s.warmup} exceeds steps ${s.steps}`);
    if (s.lora && s.name !== 'instruct' && s.name !== 'lm') bad(`${at}.lora`, `LoRA adapts the LM; stage '${s.name}' does not train it`);
    if (s.dense > 0 && !groups.includes('vision')) bad(`${at}.dense`, `stage '${s.name}' does not train the vision tower (give lr.vision in an instruct stage)`);
    if (s.singles && (s.name !== 'instruct' || !stageData(s).includes('instruct')))
      bad(`${at}.singles`, 'single questions are cut from the dialogues: only an instruct stage that reads instruct data can mix them in');
    if (s.inPlace && (s.name !== 'instruct' || !stageData(s).includes('instruct')))
      bad(`${at}.inPlace`, 'questions are cut from the dialogues: only an instruct stage that reads instruct data can take them in place');
    if (s.inPlace && (s.singleTurns || s.turns !== undefined || s.tasks !== undefined))
      bad(`${at}.inPlace`, 'inPlace picks its own questions and cuts: drop singleTurns, turns and tasks');
    if (s.singles && s.singleTurns) bad(`${at}.singles`, 'with singleTurns every question is already its own sample');
    if ((s.denseScene ?? 0) > 0 && !(s.dense > 0)) bad(`${at}.denseScene`, 'the scene summary is part of the dense loss: give dense > 0');
    if ((s.densePosition ?? 0) > 0 && !(s.dense > 0)) bad(`${at}.densePosition`, 'the position head is part of the dense loss: give dense > 0');
    if (s.denseObjectWeight !== undefined && !(s.dense > 0)) bad(`${at}.denseObjectWeight`, 'the object weight is part of the dense loss: give dense > 0');
    if ((s.attendQuestion ?? 0) > 0 && s.name !== 'instruct') bad(`${at}.attendQuestion`, 'attention supervision needs question–answer turns: it belongs to an instruct stage');
    if ((s.attendQuestion ?? 0) > 0 && s.attendLayer === 0) bad(`${at}.attendQuestion`, 'the question hop runs in the layer below attendLayer, which is 0');
    if ((s.attend ?? 0) > 0 && s.name !== 'instruct') bad(`${at}.attend`, 'attention supervision needs question–answer turns: it belongs to an instruct stage');
    if (s.attendLayer !== undefined && c.model && s.attendLayer >= c.model.lm.block_count) bad(`${at}.attendLayer`, `${s.attendLayer} is not a layer of the ${c.model.lm.block_count}-layer LM`);
    if ((s.wordAlign ?? 0) > 0 && !groups.includes('projector')) bad(`${at}.wordAlign`, `stage '${s.name}' does not train the projector`);
    if (s.maxObjects !== undefined && s.name === 'vision') bad(`${at}.maxObjects`, 'the vision stage trains on all captions; a scene-size curriculum belongs to lm, align or instruct stages');
    if (s.tasks !== undefined && s.name === 'vision') bad(`${at}.tasks`, 'the vision stage trains on captions, not dialogue tasks');
    if (s.turns !== undefined && s.name === 'vision') bad(`${at}.turns`, 'the vision stage trains on captions, not dialogue turns');
    if (s.singleTurns && s.name === 'vision') bad(`${at}.singleTurns`, 'the vision stage trains on captions, not dialogue turns');
    if (s.singleTurns && s.turns !== undefined) bad(`${at}.singleTurns`, 'single-question samples already keep one turn each: drop turns');
    if (s.name === 'vision' && s.batchSize < 2) bad(`${at}.batchSize`, 'contrastive training needs at least 2 images per batch');
  });
  if (c.eval.every > 0 && !c.data.val) bad('eval.every', 'evaluation needs data.val');
  const abs = (p: string): string => path.resolve(baseDir, p);
  const out: Parsed = {
    ...c,
    data: { train: abs(c.data.train), ...(c.data.val ? { val: abs(c.data.val) } : {}), ...(c.data.test ? { test: abs(c.data.test) } : {}) },
    init: c.init ? ('model' in c.init ? { model: abs(c.init.model), mmproj: abs(c.init.mmproj) } : { checkpoint: abs(c.init.checkpoint) }) : undefined,
    tokenizer: c.tokenizer && 'gguf' in c.tokenizer ? { gguf: abs(c.tokenizer.gguf) } : c.tokenizer,
    stages: c.stages.map((s) => (s.train ? { ...s, train: abs(s.train) } : s)),
    checkpoint: { ...c.checkpoint, dir: abs(c.checkpoint.dir) },
    output: { ...c.output, dir: abs(c.output.dir) },
  };
  return deepFreeze(out);
}

/** Read and validate a config file (JSON); paths inside resolve against its directory. */
export async function loadTrainConfig(file: string): Promise<TrainConfig> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ConfigError(`cannot read training config ${file}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`training config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseTrainConfig(raw, path.dirname(path.resolve(file)));
}

/** The model config of `c.model` completed with derived widths and the vocabulary size. */
export function vlmConfigOf(c: TrainConfig, vocabSize: number): VlmConfig {
  const m = c.model!;
  const lm = m.lm;
  return {
    vision: { ...m.vision, image_mean: [...m.vision.image_mean] as [number, number, number], image_std: [...m.vision.image_std] as [number, number, number] },
    projector: { ...m.projector, input_dim: m.vision.embedding_length, output_dim: lm.embedding_length },
    lm: {
      ...lm,
      vocab_size: lm.vocab_size ?? vocabSize,
      'attention.head_count_kv': lm['attention.head_count_kv'] ?? lm['attention.head_count'],
    },
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
