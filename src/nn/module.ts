/**
 * Modules hold parameters in fields whose names mirror checkpoint tensor names, so a module tree
 * `{ blk: [{ attn_q: Linear { weight } }] }` has the parameter `blk.0.attn_q.weight` — the GGUF name —
 * and loading is a dictionary lookup. Fields starting with `_` are not walked.
 */
import { ModelFormatError } from '../errors.ts';
import { Tensor } from '../tensor/tensor.ts';

export abstract class Module {
  /** All parameters (and weight buffers) by dotted name. */
  namedParameters(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    walk(this, prefix, out);
    return out;
  }

  /** Trainable tensors (requiresGrad). */
  parameters(): Tensor[] {
    return [...this.namedParameters().values()].filter((t) => t.requiresGrad);
  }

  /** Freeze or unfreeze every parameter of this module. */
  setTrainable(on: boolean): this {
    for (const t of this.namedParameters().values()) {
      if (t.dtype !== 'f32') continue; // quantized weights never train
      t.requiresGrad = on;
    }
    return this;
  }

  /** Number of parameter elements. */
  numParams(): number {
    let n = 0;
    for (const t of this.namedParameters().values()) n += t.size;
    return n;
  }

  /**
   * Replace parameters by name (strict): collects every missing, unexpected and wrong-shaped tensor and
   * throws once with the list. `prefix` names this module inside `tensors` (e.g. 'v' for `v.*`).
   */
  loadParameters(tensors: ReadonlyMap<string, Tensor>, opts: { prefix?: string; allowUnexpected?: boolean; optional?: readonly string[] } = {}): void {
    const mine = this.namedParameters(opts.prefix ?? '');
    const problems: string[] = [];
    for (const [name, t] of mine) {
      const src = tensors.get(name);
      if (!src) {
        if (!opts.optional?.includes(name)) problems.push(`missing ${name} [${t.shape.join(', ')}]`);
        continue;
      }
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i]))
        problems.push(`${name}: expected [${t.shape.join(', ')}], got [${src.shape.join(', ')}]`);
    }
    if (!opts.allowUnexpected)
      for (const name of tensors.keys())
        if ((!opts.prefix || name.startsWith(`${opts.prefix}.`)) && !mine.has(name)) problems.push(`unexpected ${name}`);
    if (problems.length) throw new ModelFormatError(`cannot load weights:\n  ${problems.join('\n  ')}`);
    for (const [name] of mine) {
      const src = tensors.get(name);
      if (src) setByPath(this, opts.prefix ? name.slice(opts.prefix.length + 1) : name, src);
    }
  }
}

function walk(obj: object, prefix: string, out: Map<string, Tensor>): void {
  for (const [k, v] of Object.entries(obj)) {
    if (k.startsWith('_') || v === null || v === undefined) continue;
    const name = prefix ? `${prefix}.${k}` : k;
    if (v instanceof Tensor) out.set(name, v);
    else if (v instanceof Module) walk(v, name, out);
    else if (Array.isArray(v)) v.forEach((m, i) => {
      if (m instanceof Module) walk(m, `${name}.${i}`, out);
    });
  }
}

function setByPath(root: object, path: string, t: Tensor): void {
  const parts = path.split('.');
  let obj: Record<string, unknown> = root as Record<string, unknown>;
  for (let i = 0; i < parts.length - 1; i++) obj = obj[parts[i]!] as Record<string, unknown>;
  const key = parts[parts.length - 1]!;
  const prev = obj[key] as Tensor | undefined;
  if (prev?.requiresGrad && t.dtype === 'f32') t.param();
  obj[key] = t;
}
