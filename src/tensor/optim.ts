/**
 * Optimisers over parameter groups — AdamW (on the backend's `adamw` kernel) and SGD with momentum — plus
 * global gradient-norm clipping. State buffers are allocated once, at construction, outside every `tidy`
 * scope; `zeroGrad` clears gradients in place, so a training step allocates nothing here.
 *
 * A group's `lr` and `weightDecay` are plain mutable fields: set them before each `step()` to follow a
 * schedule (./schedule.ts), e.g. `opt.setLr(sched(opt.stepCount + 1))`.
 */
import { ConfigError, ModelFormatError, ShapeError } from '../errors.ts';
import { backendFor } from './kernels.ts';
import { keep } from './storage.ts';
import { Tensor } from './tensor.ts';
import { dequantize } from './quant.ts';
import { copyInto } from './ops/view.ts';

/** A set of parameters with its own hyper-parameters (defaults come from the optimiser's options). */
export interface ParamGroupSpec {
  params: readonly Tensor[];
  lr?: number;
  weightDecay?: number;
}

export interface ParamGroup {
  readonly params: readonly Tensor[];
  lr: number;
  weightDecay: number;
}

/** Everything needed to resume exactly: step count, group hyper-parameters and copies of the buffers. */
export interface OptimizerState {
  step: number;
  groups: { lr: number; weightDecay: number }[];
  /** per-parameter buffers named `<buffer>.<group>.<index>` (e.g. `m.0.3`), f32 copies */
  tensors: Record<string, Tensor>;
}

/** Shape and dtype of a stored tensor that is not (or cannot be) a vista Tensor, e.g. an I64 buffer in a file. */
export interface StoredTensorInfo {
  readonly shape: readonly number[];
  readonly dtype: string;
}

const shapeStr = (t: StoredTensorInfo): string => `${t.dtype} [${t.shape.join(', ')}]`;

/**
 * Copy every tensor of `from` into the tensor of the same name in `into`, in place. Strict: every
 * missing, unexpected, wrong-shaped or wrong-dtype entry is collected and reported in one
 * ModelFormatError before anything is written. f32 targets accept any vista dtype (dequantized); other
 * targets need the same dtype; `StoredTensorInfo` entries can only be reported. Serves optimiser state
 * here and checkpoints in nn/state.
 */
export function copyTensorsStrict(into: Readonly<Record<string, Tensor>>, from: Readonly<Record<string, Tensor | StoredTensorInfo>>,
  what: string): void {
  const problems: string[] = [];
  for (const [name, t] of Object.entries(into)) {
    const s = from[name];
    if (!s) problems.push(`missing ${name} (${shapeStr(t)})`);
    else if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i]))
      problems.push(`${name}: expected ${shapeStr(t)}, got ${shapeStr(s)}`);
    else if (!(s instanceof Tensor) || (t.dtype !== 'f32' && s.dtype !== t.dtype))
      problems.push(`${name}: expected dtype ${t.dtype}, got ${s.dtype}`);
  }
  for (const [name, s] of Object.entries(from)) if (!Object.hasOwn(into, name)) problems.push(`unexpected ${name} (${shapeStr(s)})`);
  if (problems.length)
    throw new ModelFormatError(`${what}: ${problems.length} problem${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`);
  for (const [name, t] of Object.entries(into)) {
    const s = from[name] as Tensor;
    if (t.dtype === 'f32') copyInto(t, dequantize(s));
    else t.storage.bytes.set(s.bytes, t.offset);
  }
}

/** Shared parts of the optimisers: groups, step count, zeroGrad, state save/load. */
abstract class Optimizer {
  readonly groups: ParamGroup[];
  /** number of `step()` calls so far (AdamW's bias correction uses it) */
  stepCount = 0;

  protected constructor(params: readonly Tensor[] | readonly ParamGroupSpec[], lr: number, weightDecay: number) {
    const specs: readonly ParamGroupSpec[] = params.length && params[0] instanceof Tensor
      ? [{ params: params as readonly Tensor[] }] : params as readonly ParamGroupSpec[];
    const seen = new Set<Tensor>();
    this.groups = specs.map((s, gi) => {
      for (const p of s.params) {
        if (seen.has(p)) throw new ConfigError(`parameter ${p.name || p.toString()} appears in more than one group (group ${gi})`);
        seen.add(p);
        if (p.dtype !== 'f32' || !p.isContiguous())
          throw new ShapeError(`optimiser parameters must be contiguous f32 tensors; ${p.toString()} is not`);
      }
      return { params: [...s.params], lr: s.lr ?? lr, weightDecay: s.weightDecay ?? weightDecay };
    });
  }

  /** Set the learning rate of every group. */
  setLr(lr: number): void {
    for (const g of this.groups) g.lr = lr;
  }

  /** Zero every gradient in place (grad tensors are kept, not reallocated). */
  zeroGrad(): void {
    for (const g of this.groups)
      for (const p of g.params) if (p.grad) p.grad.data.fill(0, p.grad.offset, p.grad.offset + p.grad.size);
  }

  abstract step(): void;

  /** The live state buffers, by name (`<buffer>.<group>.<index>`). */
  abstract buffers(): Record<string, Tensor>;

  protected makeBuffers(): Tensor[][] {
    return this.groups.map((g) => g.params.map((p) => keep(Tensor.zeros(p.shape))));
  }

  protected named(prefix: string, bufs: Tensor[][]): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    bufs.forEach((gb, gi) => gb.forEach((b, i) => (out[`${prefix}.${gi}.${i}`] = b)));
    return out;
  }

  /** A snapshot for exact resume (buffers are copied). */
  state(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    for (const [name, b] of Object.entries(this.buffers())) tensors[name] = Tensor.from(b.toArray(), b.shape);
    return { step: this.stepCount, groups: this.groups.map((g) => ({ lr: g.lr, weightDecay: g.weightDecay })), tensors };
  }

  /** Restore a snapshot taken by `state()` of an optimiser over the same parameter groups. */
  loadState(s: OptimizerState): void {
    if (s.groups.length !== this.groups.length)
      throw new ModelFormatError(`optimiser state has ${s.groups.length} parameter groups, this optimiser ${this.groups.length}`);
    copyTensorsStrict(this.buffers(), s.tensors, 'optimiser state');
    s.groups.forEach((g, i) => Object.assign(this.groups[i]!, { lr: g.lr, weightDecay: g.weightDecay }));
    this.stepCount = s.step;
  }
}

export interface AdamWOptions {
  /** default 1e-3 (PyTorch) */
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  /** decoupled weight decay (default 0.01, as PyTorch) */
  weightDecay?: number;
}

/**
 * AdamW (Loshchilov & Hutter 2019) with PyTorch's semantics: p ← p·(1 − lr·wd), then
 * p ← p − lr·m̂/(√v̂ + eps) with bias-corrected moments. Parameters without a gradient are skipped
 * (their moments do not decay); bias correction uses the optimiser's global step count.
 * @example
 * const opt = new AdamW([{ params: weights }, { params: normsAndBiases, weightDecay: 0 }], { lr: 3e-4 });
 * backward(loss); opt.step(); opt.zeroGrad();
 */
export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly m: Tensor[][];
  private readonly v: Tensor[][];

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec[], opts: AdamWOptions = {}) {
    super(params, opts.lr ?? 1e-3, opts.weightDecay ?? 0.01);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.m = this.makeBuffers();
    this.v = this.makeBuffers();
  }

  step(): void {
    this.stepCount++;
    const k = backendFor('adamw', ['f32']);
    this.groups.forEach((g, gi) => g.params.forEach((p, i) => {
      const gr = p.grad;
      if (!gr) return;
      const m = this.m[gi]![i]!;
      const v = this.v[gi]![i]!;
      k.adamw(p.size, p.data, p.offset, gr.data, gr.offset, m.data, v.data, g.lr, this.beta1, this.beta2, this.eps,
        g.weightDecay, this.stepCount);
    }));
  }

  buffers(): Record<string, Tensor> {
    return { ...this.named('m', this.m), ...this.named('v', this.v) };
  }
}

export interface SGDOptions {
  /** default 1e-3 (PyTorch) */
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (PyTorch SGD's coupled weight decay) */
  weightDecay?: number;
}

/**
 * SGD with optional (Nesterov) momentum, PyTorch's formulation without dampening:
 * d = g + wd·p; b ← μ·b + d; p ← p − lr·(nesterov ? d + μ·b : b).
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;
  private readonly buf: Tensor[][];

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec[], opts: SGDOptions = {}) {
    super(params, opts.lr ?? 1e-3, opts.weightDecay ?? 0);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && this.momentum <= 0) throw new ConfigError('SGD: nesterov needs momentum > 0');
    this.buf = this.momentum ? this.makeBuffers() : [];
  }

  step(): void {
    this.stepCount++;
    const mu = this.momentum;
    this.groups.forEach((g, gi) => g.params.forEach((p, i) => {
      const gr = p.grad;
      if (!gr) return;
      const pd = p.data, gd = gr.data;
      const po = p.offset, go = gr.offset;
      const b = mu ? this.buf[gi]![i]!.data : null;
      for (let j = 0; j < p.size; j++) {
        let d = gd[go + j]! + g.weightDecay * pd[po + j]!;
        if (b) {
          const bj = mu * b[j]! + d;
          b[j] = bj;
          d = this.nesterov ? d + mu * bj : bj;
        }
        pd[po + j]! -= g.lr * d;
      }
    }));
  }

  buffers(): Record<string, Tensor> {
    return this.momentum ? this.named('momentum', this.buf) : {};
  }
}

/**
 * Scale all gradients so that their global L2 norm is at most `maxNorm` (PyTorch `clip_grad_norm_`:
 * factor maxNorm / (norm + 1e-6), only when it is < 1). Returns the norm before clipping; parameters
 * without a gradient are ignored.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    const d = g.data;
    for (let i = g.offset, end = g.offset + g.size; i < end; i++) sq += d[i]! * d[i]!;
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    const k = backendFor('affine', ['f32']);
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      k.affine(g.size, g.data, g.offset, coef, 0, g.data.subarray(g.offset, g.offset + g.size));
    }
  }
  return norm;
}
