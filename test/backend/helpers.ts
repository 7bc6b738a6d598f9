/** Shared helpers of the wasm backend tests: deterministic data, arena arrays, tolerant comparison. */
import assert from 'node:assert/strict';
import type { WasmBackend } from '../../src/backend/wasm/index.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  };
}

export function heapRandom(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r();
  return a;
}

/** a copy of `src` in the backend's arena */
export function inArena(be: WasmBackend, src: Float32Array): Float32Array {
  const reg = be.allocator.alloc(src.length * 4);
  const a = new Float32Array(reg.buffer, reg.byteOffset, src.length);
  a.set(src);
  return a;
}

export function bytesInArena(be: WasmBackend, src: Uint8Array): Uint8Array {
  const reg = be.allocator.alloc(src.length);
  const a = new Uint8Array(reg.buffer, reg.byteOffset, src.length);
  a.set(src);
  return a;
}

/**
 * |got - want| ≤ rtol·scale + atol elementwise, where scale is a per-element magnitude (defaults to |want|).
 * f32 sums in a different order differ by ~K·eps relative to Σ|terms|, hence the explicit scale.
 */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, what: string,
  scale?: ArrayLike<number>, atol = 0): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    const s = scale ? scale[i]! : Math.abs(w);
    if (!(Math.abs(g - w) <= rtol * s + atol))
      assert.fail(`${what}: element ${i}: got ${g}, want ${w} (|diff| ${Math.abs(g - w)}, tol ${rtol * s + atol})`);
  }
}
