// Llama-family invariants on small random models (with and without GQA), through the runtime's decoder:
// KV-cache decode == full recompute at every step, a batch of two == two batches of one, and training's
// packed rows (real tokens only) == the right-padded batch, forward and backward.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Llama, type LlamaConfig } from '../../src/models/llama.ts';
import { Decoder, greedyTokens } from '../../src/runtime/generate.ts';
import { noGrad, tidy, argmax, Rng, Tensor, backward, gather, mul, sum, reshape } from '../../src/tensor/index.ts';
import { initBackend, type BackendName } from '../../src/backend/index.ts';
import { assertClose } from '../helpers/backends.ts';

const base: LlamaConfig = {
  vocab_size: 61, context_length: 64, embedding_length: 32, block_count: 2, feed_forward_length: 48,
  'attention.head_count': 4, 'attention.head_count_kv': 4, 'attention.layer_norm_rms_epsilon': 1e-5,
  'rope.freq_base': 10000,
};

/** A random model with weights large enough (std ≈ 0.3) that positions and keys visibly move the logits. */
function model(config: LlamaConfig, seed: number): Llama {
  const m = new Llama(config, seed);
  for (const [name, p] of m.namedParameters()) if (!name.endsWith('norm.weight')) p.data.forEach((v, i, a) => (a[i] = v * 15));
  return m;
}

/** Logits (T, V) of `ids` by one full forward pass. */
const full = (m: Llama, ids: number[]) => noGrad(() => tidy(() => m.forward(ids).toArray()));
const row = (a: Float32Array, r: number, V: number) => a.subarray(r * V, (r + 1) * V);

before(() => initBackend({ name: (process.env.VISTA_BACKEND as BackendName | undefined) ?? 'ref' }));

for (const [label, Hkv] of [['MHA', 4], ['GQA', 2], ['MQA', 1]] as const) {
  describe(`llama invariants (${label}: head_count 4, head_count_kv ${Hkv})`, () => {
    const config = { ...base, 'attention.head_count_kv': Hkv };
    const m = model(config, 17 + Hkv);
    const V = config.vocab_size;
    const rng = new Rng(Hkv);
    const ids = Array.from({ length: 20 }, () => rng.int(V));

    test('logits are not trivially small (the invariants below are sensitive)', () => {
      const l = full(m, ids);
      assert.ok(Math.max(...l.map(Math.abs)) > 1, 'logit scale');
      // a wrong position would be caught: the last token decoded one slot early moves the logits a lot
      const dec = new Decoder(m, ids.length);
      dec.feed(ids.slice(0, -1), false);
      dec.cache.length--;
      const shifted = dec.feed(ids.slice(-1), true)!;
      dec.dispose();
      const want = row(full(m, ids), ids.length - 1, V);
      assert.ok(shifted.reduce((s, v, i) => Math.max(s, Math.abs(v - want[i]!)), 0) > 1e-2);
    });

    test('KV-cache decode logits == full recompute at every step (1e-4)', () => {
      const ref = full(m, ids); // (T, V)
      const dec = new Decoder(m, ids.length);
      try {
        const P = 5;
        assertClose(dec.feed(ids.slice(0, P), true)!, row(ref, P - 1, V), 1e-4, 0, 'prefill');
        for (let t = P; t < ids.length; t++) assertClose(dec.feed([ids[t]!], true)!, row(ref, t, V), 1e-4, 0, `step ${t}`);
      } finally {
        dec.dispose();
      }
      // chunked prefill (chunks of 3) lands on the same last-position logits
      const chunked = new Decoder(m, ids.length);
      let last: Float32Array | null = null;
      for (let s = 0; s < ids.length; s += 3) last = chunked.feed(ids.slice(s, s + 3), s + 3 >= ids.length);
      chunked.dispose();
      assertClose(last!, row(ref, ids.length - 1, V), 1e-4, 0, 'chunked prefill');
      // greedyTokens (cache) == argmax of repeated full recomputes
      const greedy = greedyTokens(m, ids.slice(0, 6), 8);
      const seq = ids.slice(0, 6);
      for (let i = 0; i < 8; i++) seq.push(noGrad(() => tidy(() => argmax(m.forward(seq))[seq.length - 1]!)));
      assert.deepEqual(greedy, seq.slice(6));
    });

    test('packed rows == the right-padded batch: real hidden states and every weight gradient (1e-5)', () => {
      const lens = [12, 5, 9];
      const B = lens.length, T = Math.max(...lens), E = config.embedding_length;
      const ids = new Int32Array(B * T); // pads hold token 0; with large weights they would move a real row if seen
      const real: number[] = [];
      const slot = new Int32Array(B * T).fill(-1); // pads: a zero row on the grid
      lens.forEach((L, b) => {
        for (let t = 0; t < L; t++) {
          ids[b * T + t] = 1 + rng.int(V - 1);
          slot[b * T + t] = real.length;
          real.push(b * T + t);
        }
      });
      const packed = { B, T, real: Int32Array.from(real), slot };
      const R = real.length;
      const probe = Tensor.from(Float32Array.from({ length: R * E }, () => rng.normal()), [R, E]);
      const grads = (rows: () => Tensor) => tidy(() => {
        for (const p of params) p.grad = null;
        const h = rows(); // (R, E)
        backward(sum(mul(h, probe)));
        // the output head is not part of hidden(): every other weight gets a gradient
        return { h: h.toArray(), g: new Map([...m.namedParameters()].filter(([k]) => !k.startsWith('output.')).map(([k, p]) => [k, p.grad!.toArray()])) };
      });
      const params = [...m.namedParameters().values()];
      const was = params.map((p) => p.requiresGrad);
      for (const p of params) p.requiresGrad = true;
      try {
        const padded = grads(() => gather(reshape(m.hidden(m.embed(ids, B)), [B * T, E]), 0, packed.real));
        const ours = grads(() => m.hidden(reshape(m.embed(Int32Array.from(real, (p) => ids[p]!)), [R, E]), { packed }));
        assertClose(ours.h, padded.h, 1e-5, 1e-5, 'hidden');
        assert.equal(ours.g.size, padded.g.size);
        for (const [k, g] of padded.g) {
          assert.ok(g.some((v) => v !== 0), `${k} has a gradient`);
          assertClose(ours.g.get(k)!, g, 1e-4, 1e-4, k);
        }
        // not the same as ignoring the grid: the last sample's rows read as one long sequence differ
        const flat = tidy(() => m.hidden(reshape(m.embed(Int32Array.from(real, (p) => ids[p]!)), [1, R, E])).toArray());
        assert.ok(flat.subarray((R - 1) * E).some((v, i) => Math.abs(v - padded.h[(R - 1) * E + i]!) > 1e-2));
        assert.throws(() => m.hidden(reshape(m.embed([1, 2]), [2, E]), { packed }), /packed hidden/);
      } finally {
        params.forEach((p, i) => { p.requiresGrad = was[i]!; p.grad = null; });
      }
    });

    test('a batch of two == two batches of one (1e-5), full forward and cached decode', () => {
      const a = ids.slice(0, 12);
      const b = Array.from({ length: 12 }, () => rng.int(V));
      const both = noGrad(() => tidy(() => m.forward([...a, ...b], 2).toArray())); // (2, T, V)
      const n = a.length * V;
      assertClose(both.subarray(0, n), full(m, a), 1e-5, 0, 'sequence 0');
      assertClose(both.subarray(n), full(m, b), 1e-5, 0, 'sequence 1');
      // the same with a B=2 cache: prefill 8, then decode the rest one position at a time
      const cache = m.newCache(2, 12);
      try {
        noGrad(() => {
          const pre = 8;
          tidy(() => m.forward([...a.slice(0, pre), ...b.slice(0, pre)], 2, { pos0: 0, cache }));
          for (let t = pre; t < 12; t++) {
            const l = tidy(() => m.forward([a[t]!, b[t]!], 2, { pos0: t, cache }).toArray()); // (2, 1, V)
            assertClose(l.subarray(0, V), row(both, t, V), 1e-5, 1e-5, `cached step ${t}, sequence 0`);
            assertClose(l.subarray(V), row(both, 12 + t, V), 1e-5, 1e-5, `cached step ${t}, sequence 1`);
          }
        });
      } finally {
        cache.dispose();
      }
    });
  });
}
