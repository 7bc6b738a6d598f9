/**
 * Where tensor bytes live. The active backend installs an `Allocator`: the reference backend uses the JS
 * heap; the wasm backend hands out regions of one shared `WebAssembly.Memory`, so that its kernels and its
 * worker threads read tensors in place, without copies.
 *
 * Freeing is deterministic where it matters and automatic elsewhere:
 * - `tidy(fn)` frees every storage created inside `fn` except what `fn` returns (and what was `keep()`-ed):
 *   a training or decoding step runs inside one, so the arena is reused step after step.
 * - anything left over is returned by a FinalizationRegistry when its tensors are garbage-collected.
 */

export interface Region {
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface Allocator {
  readonly name: string;
  /** A zero-filled region of at least `nbytes` bytes, 64-byte aligned. */
  alloc(nbytes: number): Region;
  free(region: Region): void;
}

export const heapAllocator: Allocator = {
  name: 'heap',
  alloc(nbytes: number): Region {
    const buffer = new ArrayBuffer(Math.max(nbytes, 0));
    return { buffer, byteOffset: 0, byteLength: nbytes };
  },
  free(): void {},
};

let allocator: Allocator = heapAllocator;

export function setAllocator(a: Allocator): void {
  allocator = a;
}
export function getAllocator(): Allocator {
  return allocator;
}

const registry = new FinalizationRegistry<{ region: Region; alloc: Allocator; freed: boolean }>((h) => {
  if (!h.freed) {
    h.freed = true;
    h.alloc.free(h.region);
  }
});

type Scope = Storage[];
const scopes: Scope[] = [];

/**
 * Bytes owned by one or more tensors (views share a storage). `bytes` is a Uint8Array over the region;
 * `f32` a Float32Array over the same bytes when the length allows.
 */
export class Storage {
  readonly bytes: Uint8Array;
  readonly f32: Float32Array;
  private readonly handle: { region: Region; alloc: Allocator; freed: boolean };
  /** kept storages survive the tidy scope they were made in */
  kept = false;

  constructor(nbytes: number) {
    const alloc = allocator;
    const region = alloc.alloc(nbytes);
    this.bytes = new Uint8Array(region.buffer, region.byteOffset, nbytes);
    this.f32 = new Float32Array(region.buffer, region.byteOffset, nbytes >>> 2);
    this.handle = { region, alloc, freed: false };
    registry.register(this, this.handle, this);
    const scope = scopes[scopes.length - 1];
    if (scope) scope.push(this);
  }

  get freed(): boolean {
    return this.handle.freed;
  }

  free(): void {
    if (this.handle.freed) return;
    this.handle.freed = true;
    registry.unregister(this);
    this.handle.alloc.free(this.handle.region);
  }
}

/** Anything that owns storages: a tensor, or arrays/objects of them (what `tidy` keeps). */
export interface HasStorage {
  readonly storage: Storage;
}

function collect(value: unknown, out: Set<Storage>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ((value as HasStorage).storage instanceof Storage) {
    out.add((value as HasStorage).storage);
    const grad = (value as { grad?: unknown }).grad;
    if (grad) collect(grad, out, depth + 1);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out, depth + 1);
}

/**
 * Run `fn` and free every storage it created, except those reachable from its result (a tensor, or
 * arrays/plain objects of tensors) and those marked with `keep`. Scopes nest: survivors move to the
 * enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Storage>();
  collect(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const s of scope) {
    if (s.kept || survivors.has(s)) {
      if (parent && !s.kept) parent.push(s);
    } else s.free();
  }
  return result;
}

/** Exclude a tensor's storage from every enclosing `tidy` (parameters, optimizer state, caches). */
export function keep<T extends HasStorage>(t: T): T {
  t.storage.kept = true;
  return t;
}
