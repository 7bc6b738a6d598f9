/**
 * Training checkpoints: one safetensors file holding the model (`model.*`), the stage-only training
 * heads (`heads.*`: contrastive, dense), the optimiser buffers (`opt.*`) and, in its metadata, everything else a resumed run
 * needs — stage, step, data position, optimiser step, loss history, tokenizer — so resuming is exact.
 * Written atomically (temp file + fsync + rename): a crash mid-write leaves the previous checkpoint.
 * A small JSON sidecar (`checkpoint.json`) repeats the progress for people; resuming never reads it.
 */
import path from 'node:path';
import { mkdir, stat } from 'node:fs/promises';
import { ModelFormatError } from '../errors.ts';
import { readState, saveState } from '../nn/state.ts';
import { copyTensorsStrict } from '../tensor/optim.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { readFileChecked, writeFileAtomic } from '../platform/fs.ts';
import type { DataPosition } from './data.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
/** The JSON sidecar beside it, for people. */
const SIDECAR_FILE = 'checkpoint.json';

/** One logged optimiser step. */
export interface HistoryEntry {
  step: number;
  stage: string;
  loss: number;
  lr: number;
}

/** An evaluation (val loss, and task scores for instruct). */
export interface EvalEntry {
  step: number;
  stage: string;
  valLoss: number;
  scores?: Record<string, number>;
}

export interface TrainState {
  /** index into config.stages */
  stage: number;
  /** steps done in that stage */
  stageStep: number;
  /** steps done in total */
  step: number;
  pos: DataPosition;
  history: HistoryEntry[];
  evals: EvalEntry[];
  /** GGUF tokenizer metadata of the model being trained */
  tokenizer: Record<string, unknown>;
  /** key config fields the checkpoint was made with */
  configKey: string;
  /** the same key over the stages before `stage` only (finished ones): a checkpoint at a stage boundary resumes
   *  any config that shares them, whatever follows (absent in checkpoints older than it) */
  doneKey?: string;
  /** training wall-clock seconds so far (summed over resumed runs) */
  seconds: number;
  samples: number;
  tokens: number;
}

export interface CheckpointParts {
  model: ReadonlyMap<string, Tensor>;
  /** throwaway training heads: the current vision stage's contrastive head, and the run's dense head */
  heads: ReadonlyMap<string, Tensor> | null;
  opt: { step: number; tensors: Record<string, Tensor> };
}

function prefixed(into: Record<string, Tensor>, prefix: string, m: ReadonlyMap<string, Tensor> | Record<string, Tensor>): void {
  for (const [k, t] of m instanceof Map ? m : Object.entries(m)) into[`${prefix}.${k}`] = t;
}

/** Serialise a checkpoint. */
export function checkpointBytes(parts: CheckpointParts, state: TrainState): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  prefixed(tensors, 'model', parts.model);
  if (parts.heads) prefixed(tensors, 'heads', parts.heads);
  prefixed(tensors, 'opt', parts.opt.tensors);
  return saveState(tensors, { 'vista.train': JSON.stringify({ ...state, optStep: parts.opt.step }), format: 'vista-train-1' });
}

/**
 * Write `dir/checkpoint.safetensors` atomically, then the sidecar. `write` is replaceable for crash tests. With
 * `keepAs`, the same bytes also go to `dir/<keepAs>.safetensors` (a stage's end kept for branching with `init`).
 */
export async function saveCheckpoint(dir: string, parts: CheckpointParts, state: TrainState,
  write: (file: string, bytes: Uint8Array) => Promise<void> = writeFileAtomic, keepAs?: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, CHECKPOINT_FILE);
  const bytes = checkpointBytes(parts, state);
  await write(file, bytes);
  if (keepAs) await write(path.join(dir, `${keepAs}.safetensors`), bytes);
  const last = state.history[state.history.length - 1];
  const sidecar = { stage: state.stage, stageStep: state.stageStep, step: state.step, loss: last?.loss, evals: state.evals.slice(-3), file: CHECKPOINT_FILE };
  await writeFileAtomic(path.join(dir, SIDECAR_FILE), new TextEncoder().encode(`${JSON.stringify(sidecar, null, 2)}\n`));
  return file;
}

/** A read checkpoint: its state, and loaders that copy its tensors into live ones (strictly). */
export interface LoadedCheckpoint {
  /** the file read */
  file: string;
  state: TrainState;
  optStep: number;
  /** copy `model.*` into these parameters (every one present, same shapes) */
  loadModel(into: ReadonlyMap<string, Tensor>): void;
  /** copy `heads.*` (or only `heads.<only>.*`) into these tensors, named without `heads.` (strictly) */
  loadHeads(into: ReadonlyMap<string, Tensor>, only?: string): void;
  /** names of the training heads' tensors held (without `heads.`) */
  headNames(): string[];
  optTensors(): Record<string, Tensor>;
}

/** Read a checkpoint: its file, or a run's checkpoint directory or JSON sidecar, which stand for the file beside them. */
export async function readCheckpoint(given: string): Promise<LoadedCheckpoint> {
  const isDir = await stat(given).then((s) => s.isDirectory(), () => false);
  const file = isDir ? path.join(given, CHECKPOINT_FILE) : path.basename(given) === SIDECAR_FILE ? path.join(path.dirname(given), CHECKPOINT_FILE) : given;
  const bytes = await readFileChecked(file);
  const { tensors, metadata } = readState(bytes);
  const meta = metadata['vista.train'];
  if (!meta) throw new ModelFormatError(`${file} is not a vista training checkpoint (no vista.train metadata)`);
  const parsed = JSON.parse(meta) as TrainState & { optStep: number };
  const part = (prefix: string): Record<string, Tensor> => {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith(`${prefix}.`)) out[k.slice(prefix.length + 1)] = t as Tensor;
    return out;
  };
  return {
    file,
    state: parsed,
    optStep: parsed.optStep,
    loadModel: (into) => copyTensorsStrict(Object.fromEntries(into), part('model'), `checkpoint ${file} (model)`),
    loadHeads: (into, only) => copyTensorsStrict(Object.fromEntries(into),
      Object.fromEntries(Object.entries(part('heads')).filter(([k]) => only === undefined || k.startsWith(`${only}.`))),
      `checkpoint ${file} (training heads)`),
    headNames: () => Object.keys(part('heads')),
    optTensors: () => part('opt'),
  };
}
