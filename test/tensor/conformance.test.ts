// ONE conformance suite, run against every backend in BACKENDS: each case builds its inputs from seeds,
// runs on `ref` (the specification; once, before everything) and on the backend under test, and compares
// values and gradients. Tolerance: rtol 1e-5 (+ atol 1e-6 for values near 0) unless a case says why it is
// looser. Each backend is installed once per describe: `initBackend` builds a new wasm backend (module,
// memory, worker pool) every time it switches back from ref, so alternating per case is slow and leaks.
import { describe, test, before, after } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { Tensor, Rng, noGrad } from '../../src/tensor/index.ts';
import type { DType } from '../../src/tensor/dtype.ts';
import type { UnaryOp } from '../../src/tensor/kernels.ts';
import { BACKENDS, useBackend } from '../helpers/backends.ts';
import { rnd } from '../helpers/gradcheck.ts';
import { makeAdamW, makeData, makeMlp, mlpParams, trainStep } from './tiny-mlp.ts';

type Arrays = Record<string, Float32Array>;
type Bound = number | Float32Array;
const U = 2 ** -24; // f32 unit roundoff

function compare(got: Float32Array, want: Float32Array, atol: Bound, rtol: number, what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length} ≠ ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const a = got[i]!, e = want[i]!;
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    const tol = (typeof atol === 'number' ? atol : atol[i]!) + rtol * Math.abs(e);
    if (!(Math.abs(a - e) <= tol)) throw new Error(`${what}[${i}]: ${a} vs ref ${e} (|err| ${Math.abs(a - e).toExponential(3)} > ${tol.toExponential(3)})`);
  }
}

interface Tol {
  rtol?: number;
  atol?: number;
  /** per-key elementwise atol computed from the ref run (accumulation-order bounds) */
  bounds?: (ref: Arrays) => Record<string, Float32Array>;
}

interface Case {
  group: string;
  body: () => Arrays;
  tol: Tol;
}
const CASES: Case[] = [];
const REF = new Map<Case, Arrays>();
let group = '';

/** Register a case of the current group: `body` runs on ref and on every backend and must agree. */
function conform(body: () => Arrays, tol: Tol = {}): void {
  CASES.push({ group, body, tol });
}

function runGroup(label: string, g: string): void {
  const cases = CASES.filter((c) => c.group === g);
  cases.forEach((c, n) => {
    const ref = REF.get(c)!;
    const other = T.tidy(() => c.body());
    const bounds = c.tol.bounds?.(ref) ?? {};
    for (const key of Object.keys(ref))
      compare(other[key]!, ref[key]!, bounds[key] ?? c.tol.atol ?? 1e-6, c.tol.rtol ?? 1e-5, `${label} case ${n} ${key}`);
  });
}

/** Forward `f` and backward through sum(f · R); returns the output and every input's gradient. */
function fwdBwd(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], seed = 999): Arrays {
  for (const x of inputs) x.requiresGrad = true;
  const y = f(...inputs);
  const R = T.randn(y.shape, new Rng(seed));
  T.backward(T.sum(T.mul(y, R)));
  const out: Arrays = { y: y.toArray() };
  inputs.forEach((x, i) => (out[`d${i}`] = x.grad!.toArray()));
  return out;
}

const positive = (shape: number[], seed: number): Tensor => T.affine(T.abs(rnd(shape, seed)), 1, 0.5);

/**
 * |A|·|B| (f64 sums of |a_mk·b_kn|): matmul results may differ by accumulation order. Errors of independent
 * roundings add in quadrature (Higham, Accuracy and Stability, §2.8), so each side is within ≈ √K·u·Σ|ab|
 * of the exact value; allow 2× that between the two, plus 1e-6.
 */
function orderBound(a: Float32Array, b: Float32Array, M: number, K: number, N: number, batch = 1): Float32Array {
  const out = new Float32Array(batch * M * N);
  const c = 2 * Math.sqrt(K) * U;
  for (let z = 0; z < batch; z++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += Math.abs(a[(z * M + m) * K + k]! * b[(z * K + k) * N + n]!);
        out[(z * M + m) * N + n] = 1e-6 + c * s;
      }
  return out;
}

/** The logical (broadcast, transposed) operands of a matmul as contiguous batches, for `orderBound`. */
function logical(t: Tensor, batch: number[], rows: number, cols: number): Float32Array {
  return noGrad(() => T.contiguous(T.expand(t, [...batch, rows, cols])).toArray());
}

// ---- elementwise ----
group = 'binary ops: scalar, size-1 dims, rank mismatch, strided/transposed/offset views, SIMD tails';
{
  const cases: [number[], number[] | 'T' | 'slice'][] = [
    [[3, 4], []], [[2, 1, 4], [1, 3, 1]], [[2, 3, 4], [4]], [[4], [2, 3, 4]], [[3, 4], 'T'], [[5, 6], 'slice'], [[7, 4097], [4097]], [[33], [33]],
  ];
  for (const [sa, sb] of cases)
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum'] as const) {
      const mk = op === 'div' ? positive : rnd;
      // rhs: a plain tensor of shape sb, a transposed view, or an offset slice (non-zero offset, row stride ≠ cols)
      const rhs = sb === 'T' ? { shape: [sa[1]!, sa[0]!], view: (t: Tensor) => T.transpose(t) }
        : sb === 'slice' ? { shape: [sa[0]!, sa[1]! + 3], view: (t: Tensor) => T.slice(t, 1, 2, 2 + sa[1]!) }
          : { shape: sb, view: (t: Tensor) => t };
      const fn = T[op] as (x: Tensor, y: Tensor) => Tensor;
      conform(() => fwdBwd((x, y) => fn(x!, rhs.view(y!)), [rnd(sa, 1), mk(rhs.shape, 2)]));
    }
}

group = 'unary ops (all), strided input and a 4097-element SIMD tail; affine';
{
  const ops: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'abs', 'relu', 'sigmoid', 'gelu_erf', 'gelu_tanh', 'quick_gelu', 'silu', 'square', 'recip'];
  for (const op of ops) {
    const mk = ['log', 'sqrt', 'rsqrt', 'recip'].includes(op) ? positive : (sh: number[], seed: number) => rnd(sh, seed, 2);
    conform(() => fwdBwd((x) => T.unary(op, x!), [mk([4097], 3)]));
    conform(() => fwdBwd((x) => T.unary(op, T.transpose(x!)), [mk([5, 7], 4)]));
  }
  conform(() => fwdBwd((x) => T.affine(T.transpose(x!), -1.5, 0.25), [rnd([33, 7], 5)]));
  conform(() => fwdBwd((x) => T.affine(x!, 3, -1), [rnd([4097], 6)]));
}

// ---- matmul / linear ----
group = 'matmul: transpose combos × sizes 1, 7, 33; batch broadcasting; 3×4097·4097×5 and 1×4097 matvec';
{
  const shapes: [number, number, number][] = [];
  for (const M of [1, 7, 33]) for (const K of [1, 7, 33]) for (const N of [1, 7, 33]) shapes.push([M, K, N]);
  shapes.push([3, 4097, 5], [1, 4097, 33], [1, 4097, 1], [33, 4097, 1]);
  const cases = shapes.flatMap(([M, K, N]) => [false, true].flatMap((ta) => [false, true].map((tb) =>
    ({ sa: ta ? [K, M] : [M, K], sb: tb ? [N, K] : [K, N], ta, tb, batch: [] as number[], M, K, N }))));
  // batch broadcasting: (2, 1, M, K) × (3, K, N) → (2, 3, M, N); (M, K) × (2, K, N); transposed batched operands
  cases.push(
    { sa: [2, 1, 7, 33], sb: [3, 33, 5], ta: false, tb: false, batch: [2, 3], M: 7, K: 33, N: 5 },
    { sa: [7, 33], sb: [2, 33, 1], ta: false, tb: false, batch: [2], M: 7, K: 33, N: 1 },
    { sa: [2, 33, 7], sb: [1, 5, 33], ta: true, tb: true, batch: [2], M: 7, K: 33, N: 5 },
  );
  for (const { sa, sb, ta, tb, batch, M, K, N } of cases)
    conform(() => {
      const A = rnd(sa, 10), B = rnd(sb, 11);
      const a = (t: Tensor) => (ta ? T.transpose(t) : t);
      const c = (t: Tensor) => (tb ? T.transpose(t) : t);
      const r = fwdBwd((x, y) => T.matmul(a(x!), c(y!)), [A, B]);
      return { ...r, a: logical(a(A), batch, M, K), b: logical(c(B), batch, K, N) };
      // gradients are matmuls over M or N (≤ 33 terms): 1e-5 absolute covers their accumulation order
    }, { atol: 1e-5, bounds: (ref) => ({ y: orderBound(ref.a!, ref.b!, M, K, N, ref.a!.length / (M * K)) }) });
}

group = 'linear with f32, f16, bf16, q8_0 and q4_0 weights (K = 96 and 4096), gradient to the input';
for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as DType[])
  for (const [M, K, N] of [[5, 96, 7], [3, 4096, 9], [1, 4096, 33]] as const)
    conform(() => {
      const w = T.quantize(rnd([N, K], 21), dtype);
      const x = rnd([M, K], 20);
      const r = fwdBwd((t) => T.linear(t!, w), [x]);
      return { ...r, a: x.toArray(), b: T.contiguous(T.transpose(T.dequantize(w))).toArray() };
      // bound from |x|·|dequant(w)|ᵀ: quantized kernels sum per-block integer dot products, then f32 across
      // blocks in an order of their choosing; the input gradient sums N ≤ 33 terms (atol 1e-5)
    }, { atol: 1e-5, bounds: (ref) => ({ y: orderBound(ref.a!, ref.b!, M, K, N) }) });

// ---- reductions, softmax, losses, norms ----
group = 'sum / mean / max over axes';
for (const axis of [0, 1, 2, [0, 2], undefined] as (number | number[] | undefined)[]) {
  conform(() => fwdBwd((x) => T.sum(x!, axis), [rnd([3, 5, 7], 30)]));
  conform(() => fwdBwd((x) => T.mean(T.transpose(x!, 0, 2), axis, true), [rnd([7, 5, 3], 31)]));
  conform(() => fwdBwd((x) => T.max(x!, axis), [rnd([3, 5, 7], 32)]));
}
conform(() => fwdBwd((x) => T.sum(x!, -1), [rnd([2, 4097], 33)]), { atol: 1e-4 }); // 4097-term sums: order (≈ √4097·u·Σ|x|)

group = 'softmax / logSoftmax (incl. large offsets and -inf), crossEntropy with ignore-index';
for (const cols of [1, 7, 33, 4097]) {
  conform(() => fwdBwd((x) => T.softmax(x!), [rnd([3, cols], 40, 3)]));
  conform(() => fwdBwd((x) => T.logSoftmax(T.transpose(x!)), [rnd([cols, 3], 41, 3)]), { atol: 1e-5 });
}
conform(() => fwdBwd((x) => T.softmax(T.add(x!, Tensor.from([1e4, -1e4, -Infinity, 0, 3], [5]))), [rnd([2, 5], 42)]));
conform(() => fwdBwd((x) => T.crossEntropy(x!, [3, -100, 0, 32]), [rnd([4, 33], 43, 2)]));
conform(() => fwdBwd((x) => T.crossEntropy(x!, [4096, 7, -100]), [rnd([3, 4097], 44, 2)]), { atol: 1e-5 });

group = 'layerNorm / rmsNorm forward and backward (dx, dw, db)';
for (const cols of [7, 33, 4097]) {
  // the row statistics sum `cols` terms: 1e-5 absolute on unit-scale outputs covers the order at 4097
  conform(() => fwdBwd((x, w, bb) => T.layerNorm(x!, w!, bb!, 1e-5), [rnd([3, cols], 50), rnd([cols], 51), rnd([cols], 52)]), { atol: 1e-5 });
  conform(() => fwdBwd((x) => T.layerNorm(x!, null, null, 1e-6), [rnd([2, cols], 53, 4)]), { atol: 1e-5 });
  conform(() => fwdBwd((x, w) => T.rmsNorm(T.transpose(x!), w!, 1e-6), [rnd([cols, 3], 54), rnd([cols], 55)]), { atol: 1e-5 });
}

// ---- rope, attention, embedding ----
group = 'rope: norm and neox, pos0, explicit positions, partial rotation';
for (const mode of ['norm', 'neox'] as const) {
  // sin/cos of pos·θ per backend: positions up to ~100 keep angle errors ≲ 1e-5
  conform(() => fwdBwd((x) => T.rope(x!, { mode, base: 10000, pos0: 7 }), [rnd([2, 5, 3, 16], 60)]), { atol: 1e-5 });
  conform(() => fwdBwd((x) => T.rope(x!, { mode, base: 1e6, nRot: 8, positions: Int32Array.from([0, 3, 99, 1, 2, 50]) }), [rnd([2, 3, 2, 12], 61)]), { atol: 1e-5 });
}

group = 'attention: fused (causal, GQA, key mask, qPos0) and differentiable';
{
  const shapes: [number, number, number, number, number, number][] = [[2, 4, 2, 5, 5, 8], [1, 6, 2, 1, 9, 16], [2, 2, 2, 3, 7, 33]];
  for (const [B, H, Hkv, Tq, Tk, D] of shapes) {
    const mask = Uint8Array.from({ length: B * Tk }, (_, i) => (i % 3 === 1 ? 1 : 0));
    const variants = [{ causal: true }, { causal: false, keyMask: mask }, { causal: true, qPos0: Tk - Tq, keyMask: mask }, { causal: false, scale: 0.3 }];
    for (const opts of variants) {
      const qkv = (): Tensor[] => [rnd([B, H, Tq, D], 70), rnd([B, Hkv, Tk, D], 71), rnd([B, Hkv, Tk, D], 72)];
      conform(() => ({ y: noGrad(() => T.attention(...(qkv() as [Tensor, Tensor, Tensor]), opts)).toArray() }), { atol: 1e-5 });
      conform(() => fwdBwd((q, k, v) => T.attention(q!, k!, v!, opts), qkv()), { atol: 1e-5 });
    }
  }
}

group = 'embedding: f32 (with gradient) and f16/bf16/q8_0/q4_0 tables';
conform(() => fwdBwd((t) => T.embedding(t!, [3, 0, 3, 9, 1], [5]), [rnd([10, 33], 80)]), { atol: 0, rtol: 0 });
for (const dtype of ['f16', 'bf16', 'q8_0', 'q4_0'] as DType[])
  conform(() => ({ y: T.embedding(T.quantize(rnd([10, 64], 81), dtype), [9, 0, 4, 4]).toArray() }), { atol: 0, rtol: 0 });

// ---- optimiser, shape/image ops, determinism ----
group = 'AdamW through the optimiser (two groups, 3 steps, SIMD tail)';
conform(() => {
  const p = rnd([4097], 90).param(), q = rnd([7, 3], 91).param();
  const opt = new T.AdamW([{ params: [p] }, { params: [q], weightDecay: 0, lr: 0.05 }], { lr: 0.01, weightDecay: 0.1 });
  for (let s = 0; s < 3; s++) {
    p.grad = rnd([4097], 92 + s);
    q.grad = rnd([7, 3], 95 + s);
    opt.step();
  }
  return { p: p.toArray(), q: q.toArray() };
});

group = 'shape and image ops';
conform(() => fwdBwd((a, c) => T.concat([T.transpose(a!), c!], 1), [rnd([5, 3], 100), rnd([3, 4097], 101)]));
conform(() => fwdBwd((a) => T.stack(T.split(a!, 3, -1), 1), [rnd([2, 4, 9], 102)]));
conform(() => fwdBwd((a) => T.gather(a!, 1, Int32Array.from([4, 0, 4, 2])), [rnd([3, 5, 6], 103)]));
conform(() => fwdBwd((a) => T.patchify(a!, 4), [rnd([2, 3, 8, 12], 104)]));
conform(() => fwdBwd((a) => T.pixelShuffle(a!, 2), [rnd([2, 36, 5], 105)]));
conform(() => fwdBwd((a) => T.avgPoolTokens(a!, 2), [rnd([2, 16, 7], 106)]));
conform(() => fwdBwd((a) => T.avgPool2d(a!, 3), [rnd([1, 2, 6, 9], 107)]));
conform(() => fwdBwd((a) => T.dropout(a!, 0.3, new Rng(5), true), [rnd([7, 33], 108)]));

group = 'training: 5 AdamW steps of the MLP agree with ref';
conform(() => {
  const m = makeMlp(120);
  const { x, y } = makeData(121);
  const opt = makeAdamW(m);
  const losses = Float32Array.from({ length: 5 }, () => trainStep(m, opt, x, y));
  return { losses, ...Object.fromEntries(mlpParams(m).map((p, i) => [`p${i}`, p.toArray()])) };
}, { atol: 1e-5, rtol: 1e-4 }); // 5 steps of Adam amplify last-bit differences of the gradients (m/√v ≈ ±1)

before(() => {
  useBackend('ref');
  for (const c of CASES) REF.set(c, T.tidy(() => c.body()));
});
after(() => useBackend('ref'));

const GROUPS = [...new Set(CASES.map((c) => c.group))];
for (const b of BACKENDS) {
  describe(`conformance: ${b.label}`, () => {
    before(() => useBackend(b.name, b.threads));
    for (const g of GROUPS) test(g, () => runGroup(b.label, g));
    test('determinism: the same seed gives bit-identical parameters after 8 training steps, twice', () => {
      const run = (): Float32Array[] => {
        const m = makeMlp(130);
        const { x, y } = makeData(131);
        const opt = makeAdamW(m);
        const rng = new Rng(132);
        for (let s = 0; s < 8; s++) T.tidy(() => {
          opt.zeroGrad();
          const h = T.dropout(T.gelu(T.linear(x, m.w1, m.b1)), 0.1, rng, true);
          T.backward(T.crossEntropy(T.linear(h, m.w2, m.b2), y));
          T.clipGradNorm(mlpParams(m), 1);
          opt.step();
        });
        return mlpParams(m).map((p) => p.toArray());
      };
      const first = run();
      const second = run();
      first.forEach((p, i) => {
        if (!p.every((v, j) => Object.is(v, second[i]![j]))) throw new Error(`${b.label}: parameter ${i} differs between runs`);
      });
    });
  });
}
