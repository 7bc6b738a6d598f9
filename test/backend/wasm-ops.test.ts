/**
 * wasm non-matmul kernels vs the reference: softmax / log-softmax (+ backward), RMSNorm / LayerNorm
 * (+ backward), fused attention (causal, bidirectional, GQA, key mask, decode offsets), AdamW, and the
 * elementwise fast paths. Sizes 1, 7, 33, 4097; 1 and 2 threads. f32 tolerance 1e-5 relative to the
 * row's magnitude: the wasm kernels sum in 4 lanes and (attention) in f32 where the reference uses f64.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmBackend, type WasmBackend } from '../../src/backend/wasm/index.ts';
import { refBackend } from '../../src/backend/ref/index.ts';
import type { AttentionParams, BinaryOp, UnaryOp } from '../../src/tensor/kernels.ts';
import { assertClose, heapRandom, inArena } from './helpers.ts';

const backends: WasmBackend[] = [];
after(() => backends.forEach((b) => b.close()));

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

for (const threads of [1, 2]) {
  describe(`wasm kernels, ${threads} thread(s)`, () => {
    const be = createWasmBackend(threads);
    backends.push(be);
    const shapes: [number, number][] = [[1, 1], [1, 7], [3, 33], [7, 4097], [64, 192]];

    test('softmax, logSoftmax and their backward', () => {
      for (const [rows, cols] of shapes) {
        const x = heapRandom(rows * cols + 3, rows + cols).map((v) => v * 8);
        for (const k of ['softmax', 'logSoftmax'] as const) {
          const want = new Float32Array(rows * cols);
          refBackend[k](rows, cols, x, 3, want);
          const got = inArena(be, new Float32Array(rows * cols));
          be[k](rows, cols, inArena(be, x), 3, got);
          assertClose(got, want, 1e-5, `${k} ${rows}×${cols}`, undefined, 1e-6);
        }
        const y = new Float32Array(rows * cols);
        refBackend.softmax(rows, cols, x, 3, y);
        const dy = heapRandom(rows * cols, 5);
        const want = new Float32Array(rows * cols);
        refBackend.softmaxBackward(rows, cols, y, dy, want);
        const got = inArena(be, new Float32Array(rows * cols));
        be.softmaxBackward(rows, cols, inArena(be, y), inArena(be, dy), got);
        assertClose(got, want, 1e-5, `softmaxBackward ${rows}×${cols}`, undefined, 1e-6);
      }
    });

    test('a row of -inf softmaxes to zeros', () => {
      const x = new Float32Array(5).fill(-Infinity);
      const got = inArena(be, new Float32Array(5).fill(9));
      be.softmax(1, 5, inArena(be, x), 0, got);
      assert.deepEqual([...got], [0, 0, 0, 0, 0]);
    });

    test('rmsNorm and layerNorm, forward and backward (with and without weights)', () => {
      for (const [rows, cols] of shapes) {
        const x = heapRandom(rows * cols + 2, cols).map((v, i) => v * 3 + (i % 5));
        const w = heapRandom(cols, 7);
        const b = heapRandom(cols, 8);
        const dy = heapRandom(rows * cols, 9);
        for (const withW of [true, false]) {
          const W = withW ? w : null;
          // RMSNorm
          const o1 = new Float32Array(rows * cols), r1 = new Float32Array(rows);
          refBackend.rmsNorm(rows, cols, x, 2, W, 1e-5, o1, r1);
          const o2 = inArena(be, new Float32Array(rows * cols)), r2 = inArena(be, new Float32Array(rows));
          be.rmsNorm(rows, cols, inArena(be, x), 2, W && inArena(be, W), 1e-5, o2, r2);
          assertClose(o2, o1, 1e-5, `rmsNorm ${rows}×${cols}`, undefined, 1e-6);
          assertClose(r2, r1, 1e-5, `rmsNorm rstd ${rows}×${cols}`);
          const xc = x.subarray(2);
          const dx1 = new Float32Array(rows * cols), dw1 = new Float32Array(cols).fill(0.5);
          refBackend.rmsNormBackward(rows, cols, xc, W, r1, dy, dx1, withW ? dw1 : null);
          const dx2 = inArena(be, new Float32Array(rows * cols)), dw2 = inArena(be, new Float32Array(cols).fill(0.5));
          be.rmsNormBackward(rows, cols, inArena(be, xc), W && inArena(be, W), inArena(be, r1), inArena(be, dy), dx2, withW ? dw2 : null);
          // dx = rstd·(d − x·k) cancels (to 0 for cols = 1): tolerance relative to the terms, rstd·|dy·w|
          const termScale = maxAbs(r1) * maxAbs(dy) * (W ? maxAbs(W) : 1);
          assertClose(dx2, dx1, 1e-5, `rmsNormBackward dx ${rows}×${cols}`, undefined, 1e-5 * termScale);
          assertClose(dw2, dw1, 1e-5, `rmsNormBackward dw ${rows}×${cols}`, undefined, 1e-5 * maxAbs(dw1));
          // LayerNorm
          const B = withW ? b : null;
          const o3 = new Float32Array(rows * cols), m3 = new Float32Array(rows), s3 = new Float32Array(rows);
          refBackend.layerNorm(rows, cols, x, 2, W, B, 1e-5, o3, m3, s3);
          const o4 = inArena(be, new Float32Array(rows * cols)), m4 = inArena(be, new Float32Array(rows)), s4 = inArena(be, new Float32Array(rows));
          be.layerNorm(rows, cols, inArena(be, x), 2, W && inArena(be, W), B && inArena(be, B), 1e-5, o4, m4, s4);
          assertClose(o4, o3, 1e-5, `layerNorm ${rows}×${cols}`, undefined, 1e-5);
          assertClose(m4, m3, 1e-5, `layerNorm mean`, undefined, 1e-6);
          assertClose(s4, s3, 1e-4, `layerNorm rstd`);
          const dx3 = new Float32Array(rows * cols), dw3 = new Float32Array(cols), db3 = new Float32Array(cols);
          refBackend.layerNormBackward(rows, cols, xc, W, m3, s3, dy, dx3, withW ? dw3 : null, withW ? db3 : null);
          const dx4 = inArena(be, new Float32Array(rows * cols)), dw4 = inArena(be, new Float32Array(cols)), db4 = inArena(be, new Float32Array(cols));
          be.layerNormBackward(rows, cols, inArena(be, xc), W && inArena(be, W), inArena(be, m3), inArena(be, s3), inArena(be, dy), dx4,
            withW ? dw4 : null, withW ? db4 : null);
          assertClose(dx4, dx3, 1e-4, `layerNormBackward dx ${rows}×${cols}`, undefined, 1e-5 * maxAbs(s3) * maxAbs(dy) * (W ? maxAbs(W) : 1));
          assertClose(dw4, dw3, 1e-5, `layerNormBackward dw`, undefined, 1e-5 * maxAbs(dw3));
          assertClose(db4, db3, 1e-5, `layerNormBackward db`, undefined, 1e-6);
        }
      }
    });

    test('attention: causal / bidirectional, GQA, key mask, decode offsets, strided q/k/v', () => {
      const cases = [
        { B: 1, H: 1, Hkv: 1, Tq: 1, Tk: 1, D: 1, causal: false, qPos0: 0, mask: false },
        { B: 2, H: 4, Hkv: 2, Tq: 7, Tk: 7, D: 33, causal: true, qPos0: 0, mask: false },
        { B: 2, H: 3, Hkv: 3, Tq: 65, Tk: 65, D: 64, causal: true, qPos0: 0, mask: true },
        { B: 1, H: 4, Hkv: 1, Tq: 1, Tk: 130, D: 64, causal: true, qPos0: 129, mask: false },
        { B: 2, H: 2, Hkv: 1, Tq: 5, Tk: 200, D: 16, causal: false, qPos0: 0, mask: true },
        { B: 1, H: 2, Hkv: 2, Tq: 3, Tk: 3, D: 8, causal: false, qPos0: 0, mask: true, allMasked: true },
      ];
      let seed = 50;
      for (const c of cases) {
        const { B, H, Hkv, Tq, Tk, D } = c;
        // q as (B, Tq, H, D) memory viewed as (B, H, Tq, D): strides (Tq·H·D, D, H·D)
        const q = heapRandom(B * Tq * H * D, seed++).map((v) => v * 2);
        const kk = heapRandom(B * Hkv * Tk * D + 1, seed++);
        const v = heapRandom(B * Hkv * Tk * D, seed++);
        const keyMask = c.mask ? new Uint8Array(B * Tk).map((_, i) => ((c as { allMasked?: boolean }).allMasked || i % 3 === 1 ? 1 : 0)) : null;
        const p: AttentionParams = {
          B, H, Hkv, Tq, Tk, D, q, qOff: 0, qStrides: [Tq * H * D, D, H * D],
          k: kk, kOff: 1, kStrides: [Hkv * Tk * D, Tk * D, D], v, vOff: 0, vStrides: [Hkv * Tk * D, Tk * D, D],
          out: new Float32Array(B * Tq * H * D), scale: 1 / Math.sqrt(D), causal: c.causal, qPos0: c.qPos0, keyMask,
        };
        refBackend.attention(p);
        const got = inArena(be, new Float32Array(p.out.length));
        be.attention({ ...p, q: inArena(be, q), k: inArena(be, kk), v: inArena(be, v), out: got });
        assertClose(got, p.out, 1e-5, `attention ${JSON.stringify(c)}`, undefined, 1e-6);
      }
    });

    test('AdamW', () => {
      for (const n of [1, 7, 33, 4097]) {
        const p = heapRandom(n + 1, n), g = heapRandom(n + 2, n + 1), m = heapRandom(n, 3).map((x) => x * 0.1), v = heapRandom(n, 4).map((x) => x * x);
        const [p1, m1, v1] = [p.slice(), m.slice(), v.slice()];
        refBackend.adamw(n, p1, 1, g, 2, m1, v1, 1e-3, 0.9, 0.999, 1e-8, 0.01, 3);
        const p2 = inArena(be, p), m2 = inArena(be, m), v2 = inArena(be, v);
        be.adamw(n, p2, 1, inArena(be, g), 2, m2, v2, 1e-3, 0.9, 0.999, 1e-8, 0.01, 3);
        assertClose(p2, p1, 1e-6, `adamw p n=${n}`, undefined, 1e-7);
        assertClose(m2, m1, 1e-6, 'adamw m');
        assertClose(v2, v1, 1e-6, 'adamw v');
      }
    });

    test('binary: same shape, row and column broadcast, scalar, general strides (reference path)', () => {
      const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min'];
      const layouts: [number[], number[], number[]][] = [
        [[4097], [1], [1]],
        [[33, 7], [7, 1], [0, 1]], // row-broadcast b
        [[33, 7], [0, 1], [7, 1]], // row-broadcast a
        [[7, 33], [33, 1], [1, 0]], // column-broadcast b (per-row scalar)
        [[2, 3, 5], [15, 5, 1], [0, 0, 0]], // scalar b
        [[3, 5], [1, 3], [5, 1]], // transposed a: reference path
        [[2, 3, 4], [12, 4, 1], [4, 0, 1]],
      ];
      let seed = 70;
      for (const op of ops)
        for (const [shape, sa, sb] of layouts) {
          const n = shape.reduce((x, y) => x * y, 1);
          const a = heapRandom(n * 2 + 10, seed++), b = heapRandom(n * 2 + 10, seed++).map((x) => (op === 'div' ? x + 3 : x));
          const want = new Float32Array(n);
          refBackend.binary(op, shape, a, 2, sa, b, 1, sb, want);
          const got = inArena(be, new Float32Array(n));
          be.binary(op, shape, inArena(be, a), 2, sa, inArena(be, b), 1, sb, got);
          assertClose(got, want, 1e-6, `${op} [${shape}] a${sa} b${sb}`);
        }
    });

    test('unary and affine', () => {
      const ops: UnaryOp[] = ['gelu_tanh', 'neg', 'exp', 'sqrt', 'abs', 'relu', 'sigmoid', 'silu', 'square', 'recip', 'rsqrt', 'quick_gelu', 'tanh', 'gelu_erf', 'log'];
      for (const n of [1, 7, 33, 4097]) {
        const x = heapRandom(n + 1, n).map((v, i) => (i % 7 === 0 ? v * 30 : v * 4));
        const xp = x.map(Math.abs).map((v) => v + 1e-3);
        for (const op of ops) {
          const src = op === 'sqrt' || op === 'rsqrt' || op === 'log' ? xp : x;
          const want = new Float32Array(n);
          refBackend.unary(op, n, src, 1, want);
          const got = inArena(be, new Float32Array(n));
          be.unary(op, n, inArena(be, src), 1, got);
          // same formulas in f64, one rounding: equal but for a rare 1-ulp double-rounding difference. gelu_tanh takes
          // tanh from e^x: where 1 + tanh(u) cancels (x < −5) both sides carry f64 rounding noise, in outputs below 1e-7
          assertClose(got, want, 1.2e-7, `${op} n=${n}`, undefined, op === 'gelu_tanh' ? 1e-7 : 1e-30);
          if (op === 'gelu_tanh') want.forEach((w, i) => {
            if (Math.abs(w) >= 1e-7) assert.ok(Math.abs(got[i]! - w) <= 1.2e-7 * Math.abs(w), `gelu_tanh(${src[i + 1]}) = ${got[i]}, ref ${w}`);
          });
          const dy = heapRandom(n, 3);
          const wantB = new Float32Array(n);
          refBackend.unaryBackward(op, n, src, 1, dy, wantB);
          const gotB = inArena(be, new Float32Array(n));
          be.unaryBackward(op, n, inArena(be, src), 1, inArena(be, dy), gotB);
          // derivatives of the smooth activations run in f32x4 (training only): a few ulp
          const f32Deriv = op === 'sigmoid' || op === 'silu' || op === 'quick_gelu' || op === 'gelu_erf' || op === 'gelu_tanh';
          assertClose(gotB, wantB, f32Deriv ? 1e-6 : 1.2e-7, `${op}' n=${n}`, undefined, f32Deriv ? 1e-7 : 1e-30);
        }
        const u = heapRandom(n + 2, n + 5);
        const wantS = new Float32Array(n);
        refBackend.swiglu(n, x, 1, u, 2, wantS);
        const gotS = inArena(be, new Float32Array(n));
        be.swiglu(n, inArena(be, x), 1, inArena(be, u), 2, gotS);
        // silu as `unary` (f64), then one f32 product
        assertClose(gotS, wantS, 2.4e-7, `swiglu n=${n}`, undefined, 1e-30);
        const want = new Float32Array(n);
        refBackend.affine(n, x, 1, 0.5, -2, want);
        const got = inArena(be, new Float32Array(n));
        be.affine(n, inArena(be, x), 1, 0.5, -2, got);
        assertClose(got, want, 1e-7, `affine n=${n}`, undefined, 1e-7);
      }
    });
  });
}

describe('wasm layout kernels, RoPE, cross-entropy (bit-exact with the reference)', () => {
  for (const threads of [1, 2]) {
    const be = createWasmBackend(threads);
    backends.push(be);
    test(`copyStrided and reduce (${threads} threads)`, () => {
      const x = inArena(be, heapRandom(4 * 5 * 6 * 7 + 3, 11));
      for (const [shape, strides] of [[[4, 5, 6, 7], [210, 42, 7, 1]], [[4, 7, 5, 6], [210, 1, 42, 7]], [[7, 6, 5, 4], [1, 7, 42, 210]], [[840], [1]], [[6, 35], [1, 6]]] as const) {
        const n = shape.reduce((a, b) => a * b, 1);
        const want = new Float32Array(n + 2), got = inArena(be, new Float32Array(n + 2));
        refBackend.copyStrided(shape, x, 3, strides, want, 2);
        be.copyStrided(shape, x, 3, strides, got, 2);
        assert.deepEqual(got, want, `copyStrided [${shape}] [${strides}]`);
      }
      for (const [outer, dim, inner] of [[1, 4097, 1], [7, 33, 1], [3, 7, 33], [1, 1536, 256], [5, 1, 9]] as const)
        for (const op of ['sum', 'max'] as const) {
          const src = heapRandom(outer * dim * inner + 1, dim);
          const want = new Float32Array(outer * inner), got = inArena(be, new Float32Array(outer * inner));
          refBackend.reduce(op, outer, dim, inner, src, 1, want);
          be.reduce(op, outer, dim, inner, inArena(be, src), 1, got);
          assert.deepEqual(got, want, `reduce ${op} ${outer}×${dim}×${inner}`);
        }
    });
    test(`rope and crossEntropy (${threads} threads)`, () => {
      for (const mode of ['norm', 'neox'] as const)
        for (const inverse of [false, true])
          for (const withPos of [false, true]) {
            const [B, T, H, D, nRot] = [2, 7, 3, 16, 12];
            const x = heapRandom(B * T * H * D + 1, 5);
            const pos = withPos ? new Int32Array(B * T).map((_, i) => (i * 37) % 500) : null;
            const want = new Float32Array(B * T * H * D), got = inArena(be, new Float32Array(B * T * H * D));
            refBackend.rope(B, T, H, D, nRot, x, 1, want, pos, 3, 10000, mode, inverse);
            be.rope(B, T, H, D, nRot, inArena(be, x), 1, got, pos, 3, 10000, mode, inverse);
            assertClose(got, want, 1.2e-7, `rope ${mode} inverse=${inverse} pos=${withPos}`, undefined, 1e-30);
          }
      const [rows, cols] = [9, 2049];
      const logits = heapRandom(rows * cols + 2, 3).map((v) => v * 10);
      const targets = new Int32Array(rows).map((_, i) => (i === 4 ? -100 : (i * 331) % cols));
      const l1 = new Float32Array(rows), d1 = new Float32Array(rows * cols);
      refBackend.crossEntropy(rows, cols, logits, 2, targets, -100, l1, d1);
      const l2 = inArena(be, new Float32Array(rows)), d2 = inArena(be, new Float32Array(rows * cols));
      be.crossEntropy(rows, cols, inArena(be, logits), 2, targets, -100, l2, d2);
      assertClose(l2, l1, 1.2e-7, 'crossEntropy loss', undefined, 1e-30);
      // the exponentials of the gradient run in f32x4 (a training-only output): a few ulp
      assertClose(d2, d1, 1e-6, 'crossEntropy dlogits', undefined, 1e-7);
    });
  }
});
