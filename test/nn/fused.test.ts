// nn/fused: linearShared and swiglu give what the unfused modules give, on every backend, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, useBackend } from '../helpers/backends.ts';
import { Linear } from '../../src/nn/layers.ts';
import { linearShared, swiglu } from '../../src/nn/fused.ts';
import { Rng, Tensor, mul, noGrad, quantize, randn, silu, tidy, type DType } from '../../src/tensor/index.ts';

function layers(K: number, Ns: number[], dtype: DType, seed: number): Linear[] {
  const rng = new Rng(seed);
  return Ns.map((N) => {
    const l = new Linear(K, N, { rng });
    if (dtype !== 'f32') l.weight = quantize(l.weight, dtype);
    return l;
  });
}

for (const b of BACKENDS)
  test(`linearShared and swiglu equal the unfused ops (${b.label})`, () => {
    useBackend(b.name, b.threads);
    noGrad(() => tidy(() => {
      for (const dtype of ['q8_0', 'q4_0', 'f16', 'f32'] as DType[])
        for (const [T, K, Ns] of [[1, 64, [96, 32, 32]], [2, 96, [300, 5]], [5, 64, [64, 64, 64, 8]]] as [number, number, number[]][]) {
          const ls = layers(K, Ns, dtype, T * 7 + K);
          const x = Tensor.from(randn([1, T, K], new Rng(T + K)).toArray().map((v, i) => (i % 11 === 0 ? v * 30 : v)), [1, T, K]);
          const fused = linearShared(x, ls);
          ls.forEach((l, i) => {
            assert.deepEqual(fused[i]!.shape, [1, T, Ns[i]]);
            assert.deepEqual(fused[i]!.toArray(), l.forward(x).toArray(), `${dtype} T=${T} K=${K} N=${Ns} #${i}`);
          });
        }
      for (const n of [3, 8, 2816]) {
        const g = Tensor.from(randn([1, n], new Rng(n)).toArray().map((v) => v * 6), [1, n]), u = randn([1, n], new Rng(n + 1));
        assert.deepEqual(swiglu(g, u).toArray(), mul(silu(g), u).toArray(), `swiglu n=${n}`);
      }
    }));
  });

test('linearShared and swiglu keep gradients (unfused path when x requires grad)', () => {
  useBackend('ref');
  const ls = layers(32, [8, 8], 'q8_0', 1);
  const x = randn([1, 2, 32], new Rng(2));
  x.requiresGrad = true;
  const [a, c] = linearShared(x, ls);
  assert.ok(a!.node && c!.node);
  const y = swiglu(a!, c!);
  assert.ok(y.node);
});
