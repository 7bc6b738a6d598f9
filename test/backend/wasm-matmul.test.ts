/**
 * wasm matmul vs the reference kernel: f32 with every transpose combination, odd sizes (1, 7, 33, …),
 * batch strides incl. 0 (broadcast), accumulate, arrays outside the arena; quantized weights (f16, bf16,
 * q8_0, q4_0) with llama.cpp semantics; relaxed (FMA) and plain SIMD builds; 1 vs 2 threads.
 *
 * Tolerance for f32: 2e-6·Σ|a·b| + 1e-6·|c|: the GEMM sums K in blocks of 256 with 4-lane partial sums
 * (and fused multiply-adds in the relaxed build), the reference sequentially, so results differ by a
 * few ulps of the sum of absolute products, not of the (possibly cancelled) result.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmBackend, type WasmBackend } from '../../src/backend/wasm/index.ts';
import { refBackend } from '../../src/backend/ref/index.ts';
import type { MatmulParams } from '../../src/tensor/kernels.ts';
import type { DType } from '../../src/tensor/dtype.ts';
import { quantizeRow } from '../../src/tensor/quant.ts';
import { assertClose, bytesInArena, heapRandom, inArena } from './helpers.ts';

const backends: WasmBackend[] = [];
function make(threads: number, flavour: 'relaxed' | 'simd'): WasmBackend {
  const be = createWasmBackend(threads, { flavour });
  backends.push(be);
  return be;
}
after(() => backends.forEach((b) => b.close()));

interface Case {
  batch: number; M: number; N: number; K: number; transA: boolean; transB: boolean;
  bcastA?: boolean; bcastB?: boolean; accumulate?: boolean; pad?: number;
}

function build(c: Case, seed: number): { p: MatmulParams; absScale: Float32Array } {
  const pad = c.pad ?? 0;
  const lda = (c.transA ? c.M : c.K) + pad;
  const ldb = (c.transB ? c.K : c.N) + pad;
  const ldc = c.N + pad;
  const aRows = c.transA ? c.K : c.M;
  const bRows = c.transB ? c.N : c.K;
  const strideA = c.bcastA ? 0 : aRows * lda;
  const strideB = c.bcastB ? 0 : bRows * ldb;
  const strideC = c.M * ldc;
  const a = heapRandom(3 + (c.bcastA ? 1 : c.batch) * aRows * lda, seed);
  const b = heapRandom(5 + (c.bcastB ? 1 : c.batch) * bRows * ldb, seed + 1);
  const cc = heapRandom(2 + c.batch * strideC, seed + 2);
  const p: MatmulParams = {
    batch: c.batch, M: c.M, N: c.N, K: c.K, a, aOff: 3, transA: c.transA, lda, strideA,
    b, bType: 'f32', bOff: 5, transB: c.transB, ldb, strideB, c: cc, cOff: 2, ldc, strideC, accumulate: !!c.accumulate,
  };
  // Σ|a|·|b| per output element (the scale of f32 rounding differences)
  const absScale = new Float32Array(cc.length);
  const abs = (x: Float32Array) => x.map(Math.abs);
  refBackend.matmul({ ...p, a: abs(a), b: abs(b), c: absScale, accumulate: false });
  return { p, absScale };
}

function runBoth(be: WasmBackend, c: Case, seed: number, inArenaArrays = true): void {
  const { p, absScale } = build(c, seed);
  const want = p.c.slice();
  refBackend.matmul({ ...p, c: want });
  const a = inArenaArrays ? inArena(be, p.a) : p.a;
  const b = inArenaArrays ? inArena(be, p.b as Float32Array) : p.b;
  const got = inArenaArrays ? inArena(be, p.c) : p.c.slice();
  be.matmul({ ...p, a, b, c: got });
  const scale = absScale.map((s, i) => 2e-6 * s + 1e-6 * Math.abs(want[i]!));
  assertClose(got, want, 1, `matmul ${JSON.stringify(c)}`, scale, 1e-7);
}

for (const flavour of ['relaxed', 'simd'] as const) {
  describe(`wasm matmul f32 (${flavour})`, () => {
    const be1 = make(1, flavour);
    const be2 = make(2, flavour);
    const sizes = [1, 2, 7, 33];
    test('all transpose combinations, odd M/N/K incl. 1', () => {
      let seed = 1;
      for (const be of [be1, be2])
        for (const M of sizes) for (const N of sizes) for (const K of [1, 7, 33, 300])
          for (const transA of [false, true]) for (const transB of [false, true])
            runBoth(be, { batch: 1, M, N, K, transA, transB }, seed++);
    });
    test('tile and block edges (M, N not multiples of 4/8, K > 256, N > 512)', () => {
      let seed = 100;
      for (const [M, N, K] of [[5, 9, 257], [13, 515, 70], [64, 64, 513], [130, 37, 256], [3, 1030, 9]] as const)
        for (const transA of [false, true]) for (const transB of [false, true])
          runBoth(be2, { batch: 1, M, N, K, transA, transB, pad: 3 }, seed++);
    });
    test('batched, broadcast strides (0), accumulate', () => {
      let seed = 200;
      for (const be of [be1, be2])
        for (const batch of [1, 3, 4])
          for (const [bcastA, bcastB] of [[false, false], [true, false], [false, true]] as const)
            for (const accumulate of [false, true])
              for (const [M, N, K] of [[9, 17, 19], [1, 33, 40], [21, 1, 7]] as const)
                runBoth(be, { batch, M, N, K, transA: seed % 2 === 0, transB: seed % 3 === 0, bcastA, bcastB, accumulate }, seed++);
    });
    test('attention-shaped batches (32 × 192×64×192)', () => {
      runBoth(be2, { batch: 32, M: 192, N: 192, K: 64, transA: false, transB: true }, 300);
      runBoth(be2, { batch: 32, M: 192, N: 64, K: 192, transA: false, transB: false }, 301);
    });
    test('arrays outside the arena are staged (inputs and accumulated output)', () => {
      runBoth(be2, { batch: 2, M: 9, N: 11, K: 13, transA: true, transB: false, accumulate: true }, 400, false);
      runBoth(be2, { batch: 1, M: 1, N: 40, K: 13, transA: false, transB: true }, 401, false);
    });
    test('K = 0 writes zeros (or leaves C when accumulating)', () => {
      const { p } = build({ batch: 1, M: 3, N: 4, K: 1, transA: false, transB: false }, 9);
      const c = inArena(be1, p.c);
      be1.matmul({ ...p, K: 0, c });
      for (let m = 0; m < 3; m++) for (let n = 0; n < 4; n++) assert.equal(c[2 + m * p.ldc + n], 0);
    });
  });
}

test('threads = 1 and 2 give identical f32 results (same reduction order)', () => {
  const be1 = make(1, 'relaxed');
  const be2 = make(2, 'relaxed');
  for (const [M, N, K, batch] of [[64, 700, 300, 1], [300, 40, 70, 1], [17, 19, 23, 3], [1, 4096, 512, 1], [512, 1, 300, 1]] as const) {
    const { p } = build({ batch, M, N, K, transA: false, transB: true }, M + N);
    const c1 = inArena(be1, p.c), c2 = inArena(be2, p.c);
    be1.matmul({ ...p, a: inArena(be1, p.a), b: inArena(be1, p.b as Float32Array), c: c1 });
    be2.matmul({ ...p, a: inArena(be2, p.a), b: inArena(be2, p.b as Float32Array), c: c2 });
    assert.deepEqual(c1, c2, `${M}×${N}×${K}`);
  }
});

test('repeated matrix–vector products on 2 threads (the pool revokes only job-taking shares)', () => {
  // gemv_cols splits columns by thread: a share the pool revoked would leave its columns unwritten (seen
  // when the worker is not scheduled in time, e.g. two threads on one core)
  const be = make(2, 'relaxed');
  const K = 256, N = 512;
  for (const transB of [false, true]) {
    const a = inArena(be, heapRandom(K, 1)), b = inArena(be, heapRandom(K * N, 2)), c = inArena(be, new Float32Array(N));
    const p: MatmulParams = { batch: 1, M: 1, N, K, a, aOff: 0, transA: false, lda: K, strideA: 0, b, bType: 'f32', bOff: 0,
      transB, ldb: transB ? K : N, strideB: 0, c, cOff: 0, ldc: N, strideC: 0, accumulate: false };
    const want = new Float32Array(N);
    refBackend.matmul({ ...p, c: want });
    for (let r = 0; r < 2000; r++) {
      c.fill(NaN);
      be.matmul(p);
      if (c.some((v, i) => !(Math.abs(v - want[i]!) <= 1e-4))) assert.fail(`transB=${transB}: repetition ${r} differs`);
    }
  }
});

function quantWeights(type: DType, N: number, K: number, seed: number): Uint8Array {
  const w = heapRandom(N * K, seed);
  const bytesPerRow = type === 'f16' || type === 'bf16' ? 2 * K : type === 'q8_0' ? (K / 32) * 34 : (K / 32) * 18;
  const out = new Uint8Array(7 + N * bytesPerRow);
  for (let n = 0; n < N; n++) quantizeRow(type, w, n * K, K, out, 7 + n * bytesPerRow);
  return out;
}

for (const flavour of ['relaxed', 'simd'] as const) {
  describe(`wasm matmul with quantized weights (${flavour})`, () => {
    const be1 = make(1, flavour);
    const be2 = make(2, flavour);
    for (const type of ['q8_0', 'q4_0', 'f16', 'bf16'] as const) {
      test(`${type}: M ∈ {1, 3, 5, 8}, N ∈ {1, 5, 64, 67, 300}, transA, accumulate, batches`, () => {
        let seed = 1000;
        const Ks = type === 'q8_0' || type === 'q4_0' ? [32, 96, 4096] : [1, 7, 33, 96];
        for (const be of [be1, be2])
          for (const K of Ks) for (const N of [1, 5, 64, 67, 300]) for (const M of [1, 3, 5, 8]) {
            if (K === 4096 && (N > 5 || M > 3)) continue;
            // M = 5: the rows past M & ~3 of a prefill; N = 300: decode jobs of several row runs and a short last job (qmm, M < 4)
            if (N === 300 && M > 3) continue;
            const transA = seed % 2 === 1;
            const accumulate = seed % 3 === 0;
            const batch = seed % 5 === 0 ? 2 : 1;
            seed++;
            const a = heapRandom(batch * M * K, seed).map((v, i) => (i % 11 === 0 ? v * 30 : v));
            const w = quantWeights(type, N, K, seed + 7);
            const c = heapRandom(batch * M * N, seed + 9);
            const p: MatmulParams = {
              batch, M, N, K, a, aOff: 0, transA, lda: transA ? M : K, strideA: M * K,
              b: w, bType: type, bOff: 7, transB: true, ldb: K, strideB: 0,
              c, cOff: 0, ldc: N, strideC: M * N, accumulate,
            };
            const want = c.slice();
            refBackend.matmul({ ...p, c: want });
            const got = inArena(be, c);
            be.matmul({ ...p, a: inArena(be, a), b: bytesInArena(be, w), c: got });
            // block scales and integer sums are exact: only the f32 accumulation order differs
            const scale = want.map((v) => 1e-5 * Math.abs(v) + 1e-5 * Math.sqrt(K));
            assertClose(got, want, 1, `${type} M=${M} N=${N} K=${K} transA=${transA} acc=${accumulate} batch=${batch}`, scale);
          }
      });
    }
    test('matmulShared (Q/K/V-, gate/up-shaped groups, 1–4 products, K up to 2048) equals separate products, bit for bit', () => {
      let seed = 5000;
      for (const be of [be1, be2])
        for (const [M, K, Ns, types] of [
          [1, 64, [300, 64, 64], ['q8_0', 'q8_0', 'q8_0']], [1, 96, [5, 1], ['q8_0', 'q8_0']],
          [3, 32, [67, 300, 129, 8], ['q8_0', 'q8_0', 'q8_0', 'q8_0']], [1, 64, [64, 33], ['q8_0', 'q4_0']],
          [5, 32, [64, 64], ['q8_0', 'q8_0']], [2, 2048, [300, 67], ['q8_0', 'q8_0']], // K ≥ 2048: shorter runs
        ] as [number, number, number[], DType[]][]) {
          seed++;
          const a = inArena(be, heapRandom(M * K + 3, seed).map((v, i) => (i % 11 === 0 ? v * 30 : v)));
          const ws = Ns.map((N, i) => bytesInArena(be, quantWeights(types[i]!, N, K, seed * 7 + i)));
          const accumulate = seed % 2 === 0;
          const params = (cs: Float32Array[]) => Ns.map((N, i): MatmulParams => ({
            batch: 1, M, N, K, a, aOff: 3, transA: false, lda: K, strideA: 0,
            b: ws[i]!, bType: types[i]!, bOff: 7, transB: true, ldb: K, strideB: 0, c: cs[i]!, cOff: 0, ldc: N, strideC: 0, accumulate,
          }));
          const c0 = Ns.map((N, i) => heapRandom(M * N, seed + 100 + i));
          const sep = c0.map((c) => inArena(be, c));
          for (const p of params(sep)) be.matmul(p);
          const fused = c0.map((c) => inArena(be, c));
          be.matmulShared(params(fused));
          const ref = c0.map((c) => c.slice());
          refBackend.matmulShared(params(ref));
          Ns.forEach((N, i) => {
            const what = `M=${M} K=${K} N=${Ns} #${i} acc=${accumulate}`;
            assert.deepEqual(fused[i], sep[i], what);
            assertClose(fused[i]!, ref[i]!, 1, what, ref[i]!.map((v) => 1e-5 * Math.abs(v) + 1e-5 * Math.sqrt(K)));
          });
        }
    });
    test('q8_0 activation quantization ties round away from zero (roundf)', () => {
      // x = 2.5·d exactly: roundf → 3, round-half-even would give 2
      const K = 32;
      const a = new Float32Array(K);
      a[0] = 127; // d = 1
      a[1] = 2.5; a[2] = -2.5; a[3] = 0.5; a[4] = -1.5;
      const w = new Float32Array(K).fill(0);
      w[1] = 1; w[2] = 2; w[3] = 4; w[4] = 8;
      const wq = new Uint8Array(34);
      quantizeRow('q8_0', w, 0, K, wq, 0);
      const c = inArena(be1, new Float32Array(1));
      const p: MatmulParams = {
        batch: 1, M: 1, N: 1, K, a: inArena(be1, a), aOff: 0, transA: false, lda: K, strideA: 0,
        b: bytesInArena(be1, wq), bType: 'q8_0', bOff: 0, transB: true, ldb: K, strideB: 0,
        c, cOff: 0, ldc: 1, strideC: 0, accumulate: false,
      };
      be1.matmul(p);
      const want = new Float32Array(1);
      refBackend.matmul({ ...p, c: want });
      assert.equal(c[0], want[0]);
    });
  });
}
