/**
 * One conformance suite, run against every backend: `forEachBackend` runs a test body once per backend
 * (ref, and wasm with 1 and 2 threads), installing it first.
 */
import { initBackend, type BackendName } from '../../src/backend/index.ts';

export const BACKENDS: { name: BackendName; threads: number; label: string }[] = [
  { name: 'ref', threads: 1, label: 'ref' },
  { name: 'wasm', threads: 1, label: 'wasm×1' },
  { name: 'wasm', threads: 2, label: 'wasm×2' },
];

export function useBackend(name: BackendName, threads = 1): void {
  initBackend({ name, threads });
}

/** Run `body` with the ref backend and with `b`, returning both results for comparison. */
export function refAndOther<T>(b: { name: BackendName; threads: number }, body: () => T): { ref: T; other: T } {
  initBackend({ name: 'ref' });
  const ref = body();
  initBackend({ name: b.name, threads: b.threads });
  const other = body();
  return { ref, other };
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what = ''): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} ≠ ${expected.length}`);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    const err = Math.abs(a - e);
    if (!(err <= atol + rtol * Math.abs(e)) && err >= worstErr) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0)
    throw new Error(`${what}: element ${worst}: ${actual[worst]} vs ${expected[worst]} (|err| ${worstErr.toExponential(3)}, atol ${atol}, rtol ${rtol})`);
}
