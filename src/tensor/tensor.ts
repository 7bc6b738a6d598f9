/**
 * n-d tensors. `f32` tensors are row-major with element strides, so reshape of a contiguous tensor,
 * transpose, permute and slice are views sharing one Storage. Weight types (f16, bf16, q8_0, q4_0) are
 * contiguous byte blocks in GGUF layout and only feed matmul/embedding (or `dequantize`).
 */
import { ShapeError, assert } from '../errors.ts';
import { BLOCKS, byteSize, type DType } from './dtype.ts';
import { Storage, keep } from './storage.ts';

export type Shape = readonly number[];

export interface GradNode {
  readonly op: string;
  readonly parents: readonly Tensor[];
  /** gradients for each parent given the output gradient (null where a parent needs none) */
  backward(grad: Tensor): (Tensor | null)[];
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function checkShape(shape: Shape): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape [${shape.join(', ')}]`);
}

let gradEnabled = true;
let metaDepth = 0;
let metaStorage: Storage | null = null;
const META_STORAGE = (): Storage => (metaStorage ??= new Storage(0));

/**
 * Build modules without allocating or initialising their weights: every tensor created inside `fn` has its
 * shape but an empty storage. Use it to construct a model whose weights are then all loaded from a file
 * (a strict load replaces every one of them).
 */
export function withoutInit<T>(fn: () => T): T {
  metaDepth++;
  try {
    return fn();
  } finally {
    metaDepth--;
  }
}

/** Whether `t` is a shape-only placeholder made under `withoutInit`. */
export function isMeta(t: Tensor): boolean {
  return t.storage === metaStorage;
}

/** Whether ops record the graph for backward (false inside `noGrad`). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording gradients (inference). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export class Tensor {
  readonly shape: Shape;
  readonly strides: readonly number[];
  /** offset of element 0 in elements (f32) or bytes (other dtypes) */
  readonly offset: number;
  readonly dtype: DType;
  readonly storage: Storage;
  /** number of elements (shapes never change, so it is computed once) */
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  name = '';

  constructor(storage: Storage, shape: Shape, dtype: DType = 'f32', strides?: readonly number[], offset = 0) {
    this.storage = storage;
    this.shape = shape;
    this.dtype = dtype;
    this.strides = strides ?? contiguousStrides(shape);
    this.offset = offset;
    this.size = numel(shape);
  }

  /** Uninitialised-to-zero tensor of `shape` (fresh storage from the active allocator). */
  static empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    if (metaDepth > 0) return new Tensor(META_STORAGE(), [...shape], dtype);
    const n = numel(shape);
    if (dtype !== 'f32') {
      const be = BLOCKS[dtype].elems;
      const last = shape.length ? shape[shape.length - 1]! : 1;
      if (last % be !== 0) throw new ShapeError(`${dtype} rows must be a multiple of ${be} elements, got ${last}`);
    }
    return new Tensor(new Storage(byteSize(dtype, n)), [...shape], dtype);
  }

  static zeros(shape: Shape): Tensor {
    return Tensor.empty(shape);
  }

  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.empty(shape);
    t.data.fill(value);
    return t;
  }

  /** A new f32 tensor holding a copy of `values` (nested arrays are flattened; shape inferred if omitted). */
  static from(values: ArrayLike<number> | number[][] | number[][][], shape?: Shape): Tensor {
    const flat: ArrayLike<number> = Array.isArray(values) && Array.isArray(values[0])
      ? (values as unknown[]).flat(4) as number[] : values as ArrayLike<number>;
    const inferred = shape ?? inferShape(values);
    if (numel(inferred) !== flat.length)
      throw new ShapeError(`${flat.length} values do not fill shape [${inferred.join(', ')}]`);
    const t = Tensor.empty(inferred);
    t.data.set(flat);
    return t;
  }

  static scalar(v: number): Tensor {
    return Tensor.from([v], []);
  }

  /** Raw bytes of a weight tensor (GGUF block layout), wrapped into a tensor of logical `shape`. */
  static fromBytes(bytes: Uint8Array, shape: Shape, dtype: DType): Tensor {
    const t = Tensor.empty(shape, dtype);
    if (bytes.byteLength !== t.storage.bytes.byteLength)
      throw new ShapeError(`${dtype} [${shape.join(', ')}] needs ${t.storage.bytes.byteLength} bytes, got ${bytes.byteLength}`);
    t.storage.bytes.set(bytes);
    return t;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The whole f32 storage array (index with `offset` and `strides`). */
  get data(): Float32Array {
    assert(this.dtype === 'f32', () => `data of a ${this.dtype} tensor; use .bytes`);
    return this.storage.f32;
  }
  /** The weight bytes of a non-f32 tensor, exactly this tensor's range. */
  get bytes(): Uint8Array {
    const n = byteSize(this.dtype, this.size);
    return this.storage.bytes.subarray(this.offset, this.offset + n);
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i]!;
    }
    return true;
  }

  /** Flat copy of the values in logical order (f32 only). */
  toArray(): Float32Array {
    assert(this.dtype === 'f32', () => `toArray of a ${this.dtype} tensor; dequantize first`);
    const n = this.size;
    if (this.isContiguous()) return this.data.slice(this.offset, this.offset + n);
    const out = new Float32Array(n);
    const idx = new Array<number>(this.ndim).fill(0);
    for (let i = 0; i < n; i++) {
      let off = this.offset;
      for (let d = 0; d < this.ndim; d++) off += idx[d]! * this.strides[d]!;
      out[i] = this.data[off]!;
      for (let d = this.ndim - 1; d >= 0; d--) {
        if (++idx[d]! < this.shape[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  /** Nested JS arrays (for tests and printing). */
  toNested(): unknown {
    const flat = Array.from(this.toArray());
    const build = (dim: number, start: number): unknown => {
      if (dim === this.ndim) return flat[start];
      const inner = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, start + i * inner));
    };
    return build(0, 0);
  }

  item(): number {
    if (this.size !== 1) throw new ShapeError(`item() of a tensor with ${this.size} elements`);
    return this.data[this.offset]!;
  }

  /** Mark as a trainable leaf: gradients accumulate into `.grad`. Also excludes it from `tidy`. */
  param(): this {
    this.requiresGrad = true;
    keep(this);
    return this;
  }

  /** Free the storage now (all views of it become invalid). */
  dispose(): void {
    this.storage.free();
  }

  toString(): string {
    return `Tensor(${this.dtype} [${this.shape.join(', ')}]${this.name ? ` ${this.name}` : ''})`;
  }
}

function inferShape(values: unknown): number[] {
  const shape: number[] = [];
  let v = values as ArrayLike<unknown>;
  while (v && typeof v === 'object' && 'length' in v) {
    shape.push(v.length);
    v = v[0] as ArrayLike<unknown>;
  }
  return shape;
}
