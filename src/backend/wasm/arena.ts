/**
 * The wasm backend's allocator: regions of ONE shared WasmMemory, so kernels and worker threads
 * read tensors in place. 64-byte aligned, zero-filled; exact-size free lists (a training step repeats
 * the same shapes) over a bump pointer; memory.grow when the bump pointer runs past the end; when the
 * wasm32 limit is reached, free blocks are coalesced and reused first-fit before giving up.
 */
import type { Allocator, Region } from '../../tensor/storage.ts';
import { type WasmMemory } from './wasm-api.ts';

export const PAGE = 65536;
export const MAX_PAGES = 65536; // wasm32: 4 GiB
const ALIGN = 64;

export class OutOfWasmMemoryError extends Error {
  override name = 'OutOfWasmMemoryError';
}

export class WasmArena implements Allocator {
  readonly name = 'wasm';
  /** every SharedArrayBuffer object memory.buffer has returned (grow makes a new one; old views stay valid) */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private current: SharedArrayBuffer;
  private top: number;
  /** bytes at or above this offset have never been handed out (still zero) */
  private clean: number;
  private readonly freeLists = new Map<number, number[]>();
  private freeBytes = 0;
  liveBytes = 0;
  /** zero-fills [off, off+n): memory.fill through the kernels once they are instantiated */
  zero: (off: number, n: number) => void = (off, n) => new Uint8Array(this.buffer, off, n).fill(0);

  constructor(readonly memory: WasmMemory, base: number, private readonly maxPages = MAX_PAGES) {
    this.current = memory.buffer as unknown as SharedArrayBuffer;
    this.buffers.add(this.current);
    this.top = roundUp(base, ALIGN);
    this.clean = this.top;
  }

  /** the memory's current buffer (refreshed after growth) */
  get buffer(): SharedArrayBuffer {
    const b = this.memory.buffer as unknown as SharedArrayBuffer;
    if (b !== this.current) {
      this.current = b;
      this.buffers.add(b);
    }
    return b;
  }

  /** whether a typed array lives in this memory (so kernels can use it in place) */
  owns(buf: ArrayBufferLike): boolean {
    return buf === this.current || this.buffers.has(buf) || buf === this.buffer;
  }

  get capacity(): number {
    return this.buffer.byteLength;
  }

  alloc(nbytes: number): Region {
    const size = Math.max(ALIGN, roundUp(nbytes, ALIGN));
    const off = this.take(size);
    const buffer = this.buffer;
    if (off < this.clean) this.zero(off, Math.min(size, this.clean - off));
    this.clean = Math.max(this.clean, off + size);
    this.liveBytes += size;
    return { buffer, byteOffset: off, byteLength: size };
  }

  free(region: Region): void {
    const size = region.byteLength;
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(region.byteOffset);
    this.freeBytes += size;
    this.liveBytes -= size;
  }

  private take(size: number): number {
    const list = this.freeLists.get(size);
    if (list && list.length) {
      this.freeBytes -= size;
      return list.pop()!;
    }
    const off = this.bump(size);
    if (off >= 0) return off;
    this.coalesce();
    const fit = this.firstFit(size);
    if (fit >= 0) return fit;
    const again = this.bump(size);
    if (again >= 0) return again;
    throw new OutOfWasmMemoryError(
      `wasm backend: out of memory allocating ${size} bytes (${fmt(size)}): ${fmt(this.liveBytes)} in use, ` +
      `${fmt(this.freeBytes)} free in fragments, limit ${fmt(this.maxPages * PAGE)}`);
  }

  /** bump-pointer allocation, growing the memory; -1 when the limit is reached */
  private bump(size: number): number {
    const end = this.top + size;
    if (end > this.memory.buffer.byteLength) {
      const need = Math.ceil(end / PAGE);
      const have = this.memory.buffer.byteLength / PAGE;
      if (need > this.maxPages) return -1;
      // grow geometrically (fewer grows), but never past the limit
      const pages = Math.min(this.maxPages, Math.max(need, have + Math.min(have, 16384))) - have;
      try {
        this.memory.grow(pages);
      } catch {
        try {
          this.memory.grow(need - have);
        } catch {
          return -1;
        }
      }
      void this.buffer;
    }
    const off = this.top;
    this.top = end;
    return off;
  }

  /** merge adjacent free blocks; a block ending at the bump pointer lowers it */
  private coalesce(): void {
    const blocks: [number, number][] = [];
    for (const [size, offs] of this.freeLists) for (const o of offs) blocks.push([o, size]);
    this.freeLists.clear();
    blocks.sort((x, y) => x[0] - y[0]);
    const merged: [number, number][] = [];
    for (const b of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === b[0]) last[1] += b[1];
      else merged.push([b[0], b[1]]);
    }
    const last = merged[merged.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.freeBytes -= last[1];
      merged.pop();
    }
    for (const [o, s] of merged) {
      let list = this.freeLists.get(s);
      if (!list) this.freeLists.set(s, (list = []));
      list.push(o);
    }
  }

  private firstFit(size: number): number {
    for (const [s, offs] of this.freeLists) {
      if (s < size || !offs.length) continue;
      const o = offs.pop()!;
      this.freeBytes -= s;
      if (s > size) {
        let list = this.freeLists.get(s - size);
        if (!list) this.freeLists.set(s - size, (list = []));
        list.push(o + size);
        this.freeBytes += s - size;
      }
      return o;
    }
    return -1;
  }
}

function roundUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function fmt(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} B`;
}
