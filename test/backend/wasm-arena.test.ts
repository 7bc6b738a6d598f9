/** The wasm arena allocator: alignment, zero-filling, exact-size reuse, growth, coalescing, exhaustion. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmArena, PAGE } from '../../src/backend/wasm/arena.ts';
import { WA } from '../../src/backend/wasm/wasm-api.ts';

function arena(initial: number, maximum: number): WasmArena {
  return new WasmArena(new WA.Memory({ initial, maximum, shared: true }), 1024, maximum);
}

test('regions are 64-byte aligned, zero-filled and reused by exact size', () => {
  const a = arena(1, 64);
  const r1 = a.alloc(100);
  assert.equal(r1.byteOffset % 64, 0);
  assert.ok(r1.byteLength >= 100);
  new Uint8Array(r1.buffer, r1.byteOffset, 100).fill(7);
  a.free(r1);
  const r2 = a.alloc(100);
  assert.equal(r2.byteOffset, r1.byteOffset, 'same size reuses the freed block');
  assert.ok(new Uint8Array(r2.buffer, r2.byteOffset, r2.byteLength).every((v) => v === 0), 'reused block is zeroed');
  const r3 = a.alloc(0);
  assert.equal(r3.byteOffset % 64, 0);
});

test('grows the memory; views made before growth stay valid', () => {
  const a = arena(1, 256);
  const r1 = a.alloc(1000);
  const v1 = new Float32Array(r1.buffer, r1.byteOffset, 250);
  v1[3] = 42;
  const big = a.alloc(3 * PAGE);
  assert.ok(a.capacity >= 4 * PAGE);
  assert.notEqual(big.buffer, r1.buffer, 'growth gives memory.buffer a new object');
  assert.ok(a.owns(r1.buffer) && a.owns(big.buffer));
  assert.equal(new Float32Array(big.buffer, r1.byteOffset, 250)[3], 42);
  v1[4] = 5;
  assert.equal(new Float32Array(big.buffer, r1.byteOffset, 250)[4], 5);
  assert.ok(new Uint8Array(big.buffer, big.byteOffset, big.byteLength).every((v) => v === 0));
  assert.equal(a.owns(new ArrayBuffer(8)), false);
});

test('coalesces free fragments before giving up, then throws an error naming the size', () => {
  const a = arena(1, 4); // 256 KiB
  const blocks = [];
  for (let i = 0; i < 6; i++) blocks.push(a.alloc(32 * 1024));
  for (const b of blocks) a.free(b);
  // no single free block of 96 KiB exists until adjacent ones merge
  const r = a.alloc(96 * 1024);
  assert.ok(r.byteLength >= 96 * 1024);
  assert.throws(() => a.alloc(1 << 20), (e: Error) => /out of memory allocating 1048576 bytes/.test(e.message));
});
