/**
 * Pointers for kernel arguments. Typed arrays in the arena are used in place; anything else (heap arrays,
 * user buffers) is copied into a temporary arena region, and outputs are copied back by `done()`.
 * Also hands out scratch: per-thread (packing panels) and shared (quantized activations).
 */
import type { Region } from '../../tensor/storage.ts';
import type { WasmArena } from './arena.ts';

type Arr = Float32Array | Uint8Array | Int32Array;

export class Stager {
  private temps: Region[] = [];
  private writeBacks: { dst: Arr; off: number; len: number; ptr: number }[] = [];
  private scratchRegion: Region | null = null;
  private sharedRegion: Region | null = null;

  constructor(private readonly arena: WasmArena) {}

  /** byte address of element `off` of `a`, staging a copy of [off, off+len) if `a` is not in the arena */
  in(a: Arr, off: number, len: number): number {
    const es = a.BYTES_PER_ELEMENT;
    if (this.arena.owns(a.buffer)) return a.byteOffset + off * es;
    len = Math.max(0, Math.min(len, a.length - off));
    const r = this.arena.alloc(len * es);
    this.temps.push(r);
    new Uint8Array(r.buffer, r.byteOffset, len * es).set(new Uint8Array(a.buffer, a.byteOffset + off * es, len * es));
    return r.byteOffset;
  }

  /** like `in` for an output: copied back on done(); `read` = the kernel reads it too (accumulate) */
  out(a: Arr, off: number, len: number, read: boolean): number {
    const es = a.BYTES_PER_ELEMENT;
    if (this.arena.owns(a.buffer)) return a.byteOffset + off * es;
    len = Math.max(0, Math.min(len, a.length - off));
    const ptr = read ? this.in(a, off, len) : this.temp(len * es);
    this.writeBacks.push({ dst: a, off, len, ptr });
    return ptr;
  }

  temp(nbytes: number): number {
    const r = this.arena.alloc(nbytes);
    this.temps.push(r);
    return r.byteOffset;
  }

  /** copy staged outputs back and free the temporaries */
  done(): void {
    if (this.writeBacks.length) {
      const buf = this.arena.buffer;
      for (const w of this.writeBacks) {
        const es = w.dst.BYTES_PER_ELEMENT;
        new Uint8Array(w.dst.buffer, w.dst.byteOffset + w.off * es, w.len * es).set(new Uint8Array(buf, w.ptr, w.len * es));
      }
      this.writeBacks.length = 0;
    }
    if (this.temps.length) {
      for (const r of this.temps) this.arena.free(r);
      this.temps.length = 0;
    }
  }

  /** per-thread scratch of `bytes` each: { base, stride } (kept and grown) */
  scratch(bytes: number, threads: number): { base: number; stride: number } {
    const stride = Math.ceil(Math.max(bytes, 64) / 64) * 64;
    const need = stride * threads;
    if (!this.scratchRegion || this.scratchRegion.byteLength < need) {
      if (this.scratchRegion) this.arena.free(this.scratchRegion);
      this.scratchRegion = this.arena.alloc(need);
    }
    return { base: this.scratchRegion.byteOffset, stride };
  }

  /** one scratch area shared by the threads of a dispatch (kept and grown) */
  shared(bytes: number): number {
    if (!this.sharedRegion || this.sharedRegion.byteLength < bytes) {
      if (this.sharedRegion) this.arena.free(this.sharedRegion);
      this.sharedRegion = this.arena.alloc(Math.max(bytes, 64));
    }
    return this.sharedRegion.byteOffset;
  }
}
