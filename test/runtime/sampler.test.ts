// Sampler: each stage's exact result at its boundaries, llama.cpp's chain order, and the draw against a
// full-sort reference on random vocabularies.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Sampler, allCandidates, allowOnly, applyPenalties, minP, topK, topP, type SamplerOptions,
} from '../../src/runtime/sampler.ts';
import { ConfigError, InputError } from '../../src/errors.ts';
import { Rng } from '../../src/tensor/rng.ts';

const OFF = { topK: 0, topP: 1, minP: 0, temperature: 1, seed: 1 } as const;
const logitsOf = (probs: number[]) => Float32Array.from(probs, Math.log);

function dist(s: Sampler, logits: Float32Array): Map<number, number> {
  const d = s.distribution(logits);
  return new Map(Array.from(d.ids, (id, i) => [id, d.probs[i]!]));
}

function assertDist(actual: Map<number, number>, expected: Record<number, number>, tol = 1e-6): void {
  assert.deepEqual([...actual.keys()].sort((a, b) => a - b), Object.keys(expected).map(Number).sort((a, b) => a - b));
  for (const [id, p] of Object.entries(expected))
    assert.ok(Math.abs(actual.get(Number(id))! - p) < tol, `p(${id}) = ${actual.get(Number(id))} ≠ ${p}`);
}

/** Full-sort reference of the chain: bias/penalties are applied by the caller. */
function reference(logits: Float32Array, o: Required<Omit<SamplerOptions, 'seed' | 'logitBias' | 'mask'>>): Map<number, number> {
  let c = Array.from(logits, (l, id) => ({ id, l })).filter((x) => x.l > -Infinity);
  c.sort((a, b) => b.l - a.l || a.id - b.id);
  if (o.topK > 0) c = c.slice(0, o.topK);
  if (o.topP < 1) {
    const max = c[0]!.l;
    const sum = c.reduce((s, x) => s + Math.exp(x.l - max), 0);
    let cum = 0;
    const n = c.findIndex((x) => (cum += Math.exp(x.l - max) / sum) >= o.topP);
    if (n >= 0) c = c.slice(0, n + 1);
  }
  if (o.minP > 0) c = c.filter((x) => x.l >= c[0]!.l + Math.log(o.minP));
  const max = c[0]!.l;
  const w = c.map((x) => Math.exp((x.l - max) / o.temperature));
  const sum = w.reduce((a, b) => a + b, 0);
  return new Map(c.map((x, i) => [x.id, w[i]! / sum]));
}

describe('sampler stages', () => {
  test('temperature 0 is argmax (lowest id on ties), after bias and mask', () => {
    const l = Float32Array.of(0.1, 3, -1, 3, 2);
    assert.equal(new Sampler({ temperature: 0 }).sample(l), 1);
    assert.equal(new Sampler({ temperature: 0, logitBias: { 1: -0.5 } }).sample(l), 3);
    assert.equal(new Sampler({ temperature: 0, logitBias: new Map([[1, -Infinity], [3, -Infinity]]) }).sample(l), 4);
    assert.equal(new Sampler({ temperature: 0, mask: allowOnly([0, 2]) }).sample(l), 0);
    assert.deepEqual(Array.from(l), Array.from(Float32Array.of(0.1, 3, -1, 3, 2)), 'caller logits untouched');
    const d = new Sampler({ temperature: 0 }).distribution(l);
    assert.deepEqual([Array.from(d.ids), Array.from(d.probs)], [[1], [1]]);
  });

  test('penalties: llama.cpp formula on exact values', () => {
    const l = Float32Array.of(2, -2, 1, 0, 0.5);
    applyPenalties(l, new Map([[0, 1], [1, 2], [3, 1]]), { repetitionPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 1 });
    // 2/2 − 0.5 − 1; −2·2 − 2·0.5 − 1; untouched; 0·2 − 0.5 − 1 (0 counts as non-positive); untouched
    assert.deepEqual(Array.from(l), [-0.5, -6, 1, -1.5, 0.5]);
  });

  test('penalties through the sampler: window of the last N accepted tokens', () => {
    const l = Float32Array.of(4, 3, 1);
    const s = new Sampler({ temperature: 0, repetitionPenalty: 2, penaltyLastN: 2 });
    s.accept(0);
    assert.equal(s.sample(l), 1, '4/2 = 2 < 3');
    s.accept(1);
    s.accept(1); // window [1, 1]: token 0 left it
    assert.equal(s.sample(l), 0);
    const f = new Sampler({ temperature: 0, frequencyPenalty: 0.6, penaltyLastN: -1 });
    for (let i = 0; i < 10; i++) f.accept(2);
    f.accept(0);
    f.accept(0);
    assert.equal(f.sample(l), 1, '4 − 1.2 < 3');
    const d = new Sampler({ ...OFF, presencePenalty: 1 });
    d.accept(0);
    assertDist(dist(d, l), { 0: Math.exp(3) / (2 * Math.exp(3) + Math.exp(1)), 1: Math.exp(3) / (2 * Math.exp(3) + Math.exp(1)), 2: Math.exp(1) / (2 * Math.exp(3) + Math.exp(1)) });
    const none = new Sampler({ temperature: 0, repetitionPenalty: 100, penaltyLastN: 0 });
    none.accept(0);
    assert.equal(none.sample(l), 0, 'penaltyLastN 0 turns penalties off');
  });

  test('top-k keeps exactly k, renormalised; ties at the boundary keep the lower id', () => {
    const l = logitsOf([0.1, 0.4, 0.2, 0.3]);
    assertDist(dist(new Sampler({ ...OFF, topK: 2 }), l), { 1: 4 / 7, 3: 3 / 7 });
    assertDist(dist(new Sampler({ ...OFF, topK: 1 }), l), { 1: 1 });
    assertDist(dist(new Sampler({ ...OFF, topK: 4 }), l), { 0: 0.1, 1: 0.4, 2: 0.2, 3: 0.3 });
    assertDist(dist(new Sampler({ ...OFF, topK: 99 }), l), { 0: 0.1, 1: 0.4, 2: 0.2, 3: 0.3 });
    const tie = Float32Array.of(1, 5, 3, 3, 3, 0);
    assertDist(dist(new Sampler({ ...OFF, topK: 3 }), tie), { 1: Math.exp(2) / (Math.exp(2) + 2), 2: 1 / (Math.exp(2) + 2), 3: 1 / (Math.exp(2) + 2) });
    const c = allCandidates(tie);
    topK(c, 4);
    assert.deepEqual(Array.from(c.ids.subarray(0, c.n)), [1, 2, 3, 4], 'sorted best first');
  });

  test('top-p keeps the smallest prefix reaching p, including the token that crosses it', () => {
    const l = logitsOf([0.15, 0.5, 0.05, 0.3, 1e-12]);
    const at = (p: number, k = 0) => dist(new Sampler({ ...OFF, topP: p, topK: k }), l);
    for (const k of [0, 4]) { // unsorted (heap) path, and sorted path after top-k drops the 1e-12 token
      assertDist(at(0.49, k), { 1: 1 });
      assertDist(at(0.51, k), { 1: 0.5 / 0.8, 3: 0.3 / 0.8 });
      assertDist(at(0.79, k), { 1: 0.5 / 0.8, 3: 0.3 / 0.8 });
      assertDist(at(0.81, k), { 1: 0.5 / 0.95, 3: 0.3 / 0.95, 0: 0.15 / 0.95 });
      assertDist(at(0, k), { 1: 1 });
    }
    assertDist(at(0.96), { 0: 0.15, 1: 0.5, 2: 0.05, 3: 0.3 });
    assertDist(at(1), { 0: 0.15, 1: 0.5, 2: 0.05, 3: 0.3, 4: 1e-12 });
  });

  test('min-p keeps p ≥ minP · p_max', () => {
    const l = logitsOf([0.15, 0.5, 0.05, 0.3]);
    assertDist(dist(new Sampler({ ...OFF, minP: 0.29 }), l), { 1: 0.5 / 0.95, 3: 0.3 / 0.95, 0: 0.15 / 0.95 });
    assertDist(dist(new Sampler({ ...OFF, minP: 0.31 }), l), { 1: 0.5 / 0.8, 3: 0.3 / 0.8 });
    assertDist(dist(new Sampler({ ...OFF, minP: 0.61 }), l), { 1: 1 }); // 0.3 < 0.305
  });

  test('temperature scales logits last: p ∝ exp(l / T) over what the filters kept', () => {
    const e2 = Math.exp(2);
    assertDist(dist(new Sampler({ ...OFF, temperature: 0.5 }), Float32Array.of(1, 0)), { 0: e2 / (1 + e2), 1: 1 / (1 + e2) });
    // top-p at temperature 1 keeps two tokens whatever the temperature
    const l = logitsOf([0.15, 0.5, 0.05, 0.3]);
    const hot = dist(new Sampler({ ...OFF, topP: 0.79, temperature: 10 }), l);
    const w = [0.5 ** 0.1, 0.3 ** 0.1];
    assertDist(hot, { 1: w[0]! / (w[0]! + w[1]!), 3: w[1]! / (w[0]! + w[1]!) });
  });

  test('chain order: top-p sees top-k renormalised probabilities; min-p runs after top-p', () => {
    const l = logitsOf([0.4, 0.3, 0.2, 0.1]);
    assertDist(dist(new Sampler({ ...OFF, topP: 0.55 }), l), { 0: 4 / 7, 1: 3 / 7 });
    assertDist(dist(new Sampler({ ...OFF, topK: 2, topP: 0.55 }), l), { 0: 1 }); // 4/7 ≥ 0.55
    const c = allCandidates(l);
    topP(c, 0.95);
    minP(c, 0.3);
    assert.deepEqual(Array.from(c.ids.subarray(0, c.n)), [0, 1, 2]);
  });

  test('every token masked out is an InputError; bad options are ConfigErrors', () => {
    const l = Float32Array.of(1, 2);
    assert.throws(() => new Sampler({ temperature: 0, mask: (x) => x.fill(-Infinity) }).sample(l), InputError);
    assert.throws(() => new Sampler({ ...OFF, mask: allowOnly([]) }).sample(l), InputError);
    for (const bad of [{ temperature: -1 }, { topK: 1.5 }, { topP: 2 }, { minP: -0.1 }, { repetitionPenalty: 0 }, { penaltyLastN: -2 }, { logitBias: { 0: NaN } }])
      assert.throws(() => new Sampler(bad), ConfigError, JSON.stringify(bad));
  });
});

describe('sampler draws', () => {
  test('the same seed gives the same tokens; another seed does not', () => {
    const rng = new Rng(3);
    const l = Float32Array.from({ length: 1000 }, () => rng.normal() * 2);
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 1.2, topK: 50, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1, seed });
      return Array.from({ length: 200 }, () => {
        const id = s.sample(l);
        s.accept(id);
        return id;
      });
    };
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42), run(43));
  });

  test('draw frequencies match the distribution (χ² below the 0.1% critical value)', () => {
    for (const o of [
      { ...OFF, seed: 7 },
      { ...OFF, seed: 8, topK: 3, temperature: 2 },
      { ...OFF, seed: 9, topP: 0.9, minP: 0.1, temperature: 0.7 },
    ]) {
      const l = logitsOf([0.05, 0.4, 0.1, 0.25, 0.2]);
      const s = new Sampler(o);
      const d = dist(s, l);
      const N = 20000;
      const counts = new Map<number, number>();
      for (let i = 0; i < N; i++) {
        const id = s.sample(l);
        assert.ok(d.has(id), `drew ${id}, outside the kept set`);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      let chi2 = 0;
      for (const [id, p] of d) chi2 += ((counts.get(id) ?? 0) - N * p) ** 2 / (N * p);
      const critical = [0, 10.83, 13.82, 16.27, 18.47][d.size - 1]!; // χ² 0.999 quantile, d.size − 1 dof
      assert.ok(chi2 < critical, `χ² ${chi2.toFixed(2)} ≥ ${critical} for ${JSON.stringify(o)}`);
    }
  });

  test('matches a full-sort reference on random large vocabularies', () => {
    const rng = new Rng(11);
    const V = 5000;
    const configs = [
      { temperature: 1, topK: 40, topP: 0.95, minP: 0.05 },
      { temperature: 0.7, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1.3, topK: 0, topP: 1, minP: 0.2 },
      { temperature: 1, topK: 0, topP: 0.5, minP: 0.02 },
      { temperature: 0.9, topK: 1000, topP: 0.99, minP: 0 },
    ];
    for (const cfg of configs) {
      const o = { ...cfg, repetitionPenalty: 1, penaltyLastN: 64, presencePenalty: 0, frequencyPenalty: 0 };
      for (let trial = 0; trial < 3; trial++) {
        const l = Float32Array.from({ length: V }, () => rng.normal() * (1 + trial));
        const got = dist(new Sampler({ ...o, seed: 0 }), l);
        const want = reference(l, o);
        assert.equal(got.size, want.size, JSON.stringify(cfg));
        for (const [id, p] of want) assert.ok(Math.abs(got.get(id)! - p) < 1e-9, `p(${id}) ${got.get(id)} ≠ ${p}`);
      }
    }
  });

  test('fast on a 256k vocabulary (partial selection, no full sort)', (t) => {
    const rng = new Rng(5);
    const V = 256000;
    const l = Float32Array.from({ length: V }, () => rng.normal() * 3);
    for (const o of [{ topK: 40, topP: 0.95, minP: 0.05 }, { topK: 0, topP: 0.9, minP: 0 }]) {
      const s = new Sampler({ ...o, temperature: 0.8, seed: 1 });
      s.sample(l); // warm up
      const n = 20;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) s.accept(s.sample(l));
      const ms = (performance.now() - t0) / n;
      t.diagnostic(`${JSON.stringify(o)}: ${ms.toFixed(2)} ms per token`);
      assert.ok(ms < 100, `${ms} ms per sample`);
    }
  });
});
