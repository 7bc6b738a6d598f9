/**
 * Reverse-mode autograd: every op that sees an input with `requiresGrad` (while grad mode is on) records a
 * GradNode; `backward(loss)` walks the graph in reverse topological order. Backward rules live next to
 * their forward ops in ./ops/ and run with grad mode off (no higher-order gradients).
 */
import { ShapeError } from '../errors.ts';
import { Tensor, isGradEnabled, noGrad, type GradNode } from './tensor.ts';
import { keep } from './storage.ts';
import { backendFor } from './kernels.ts';

/** Attach a grad node to `out` if any parent needs a gradient. Returns `out`. */
export function record(out: Tensor, op: string, parents: readonly Tensor[], backward: GradNode['backward']): Tensor {
  if (!isGradEnabled()) return out;
  let needs = false;
  for (const p of parents) if (p.requiresGrad) needs = true;
  if (!needs) return out;
  out.requiresGrad = true;
  out.node = { op, parents, backward };
  return out;
}

/** dst += src (both contiguous, same shape), on the backend. */
function accumulateInto(dst: Tensor, src: Tensor): void {
  const n = dst.size;
  const out = dst.offset === 0 ? dst.data : dst.data.subarray(dst.offset, dst.offset + n);
  backendFor('binary', ['f32']).binary('add', [n], dst.data, dst.offset, [1], src.data, src.offset, [1], out);
}

function contiguousCopy(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape);
  backendFor('copyStrided', ['f32']).copyStrided(t.shape, t.data, t.offset, t.strides, out.data, 0);
  return out;
}

/**
 * Accumulate d(output)/d(leaf) into every leaf's `.grad`. `grad` defaults to 1 for a scalar output.
 * Leaf gradients are kept out of `tidy` scopes so they survive the step that computed them.
 */
export function backward(output: Tensor, grad?: Tensor): void {
  if (!output.requiresGrad) throw new ShapeError('backward() on a tensor that does not require grad');
  if (!grad) {
    if (output.size !== 1) throw new ShapeError(`backward() needs a gradient for non-scalar output [${output.shape}]`);
    grad = Tensor.full(output.shape, 1);
  }
  // topological order (iterative DFS: graphs of deep models overflow a recursive one)
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[output, 0]];
  seen.add(output);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const parents = t.node ? t.node.parents : [];
    if (i < parents.length) {
      top[1]++;
      const p = parents[i]!;
      if (p.requiresGrad && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<Tensor, Tensor>();
  grads.set(output, grad);
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        // leaf: the first gradient is copied (it may be shared with other parents or be a view)
        if (!t.grad) t.grad = keep(contiguousCopy(g));
        else accumulateInto(t.grad, g.isContiguous() ? g : contiguousCopy(g));
        continue;
      }
      const pg = t.node.backward(g);
      const parents = t.node.parents;
      for (let j = 0; j < parents.length; j++) {
        const p = parents[j]!;
        const gp = pg[j];
        if (!gp || !p.requiresGrad) continue;
        if (gp.shape.length !== p.shape.length || gp.shape.some((d, k) => d !== p.shape[k]))
          throw new Error(`internal: ${t.node.op} backward gave [${gp.shape}] for parent [${p.shape}]`);
        const prev = grads.get(p);
        if (!prev) grads.set(p, gp);
        else {
          // a gradient may be handed to several parents (add passes one tensor to both): never
          // accumulate into one we did not allocate here
          const sum = owned.has(prev) ? prev : contiguousCopy(prev);
          owned.add(sum);
          accumulateInto(sum, gp.isContiguous() ? gp : contiguousCopy(gp));
          grads.set(p, sum);
        }
      }
    }
  });
}

const owned = new WeakSet<Tensor>();
