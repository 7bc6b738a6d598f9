// A two-layer MLP trained with AdamW memorises 8 randomly labelled samples, under the default backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend/index.ts';
import { makeAdamW, makeData, makeMlp, trainStep } from './tiny-mlp.ts';

test('AdamW overfits 8 samples: loss < 0.01 within 60 steps (reached at ~20 on ref), decreasing from ~ln 4', () => {
  const b = initBackend();
  const m = makeMlp(11);
  const { x, y } = makeData(12);
  const opt = makeAdamW(m, 3e-2);
  const losses: number[] = [];
  for (let i = 0; i < 60; i++) losses.push(trainStep(m, opt, x, y));
  const last = losses[losses.length - 1]!;
  assert.ok(Math.abs(losses[0]! - Math.log(4)) < 0.7, `first loss ${losses[0]} (${b.name})`);
  assert.ok(last < 0.01, `final loss ${last} after 60 steps on ${b.name}: ${losses.filter((_, i) => i % 6 === 0).map((l) => l.toFixed(4))}`);
});
