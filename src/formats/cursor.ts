/**
 * A bounds-checked little-endian reader over bytes. Every read checks the remaining length first and throws
 * `ModelFormatError` naming what was being read and at which byte offset, so corrupt files never surface as
 * RangeError or as huge allocations.
 */
import { ModelFormatError } from '../errors.ts';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder('utf-8');

export class Cursor {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  /** prefixes error messages, e.g. "GGUF" */
  readonly label: string;

  constructor(bytes: Uint8Array, label: string, pos = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.label = label;
    this.pos = pos;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  fail(message: string, at = this.pos): never {
    throw new ModelFormatError(`${this.label}: ${message} (at byte offset ${at})`);
  }

  /** Throw unless `n` more bytes are available for `what`. */
  need(n: number, what: string): void {
    if (n > this.remaining)
      this.fail(`truncated: expected ${n} bytes for ${what}, only ${Math.max(0, this.remaining)} left in a ${this.bytes.byteLength}-byte file`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }
  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** u64 as a bigint. */
  u64big(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** i64 as a bigint. */
  i64big(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** u64 as a number when ≤ 2^53 − 1, else a bigint (GGUF metadata semantics). */
  u64(what: string): number | bigint {
    const v = this.u64big(what);
    return v <= MAX_SAFE ? Number(v) : v;
  }
  /** i64 as a number when it is a safe integer, else a bigint. */
  i64(what: string): number | bigint {
    const v = this.i64big(what);
    return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v;
  }
  /**
   * A u64 count/length that must be ≤ `max`; errors name `what` and the offending value. Returns a number.
   */
  length(what: string, max: number): number {
    const at = this.pos;
    const v = this.u64big(what);
    if (v > BigInt(max)) this.fail(`${what} is ${v}, more than the limit of ${max}`, at);
    return Number(v);
  }
  /** `n` raw bytes (a subarray, no copy). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** UTF-8 text of `n` bytes (invalid sequences become U+FFFD, as llama.cpp does not validate either). */
  text(n: number, what: string): string {
    return decodeUtf8(this.take(n, what));
  }
}

/** UTF-8 decode with a fast path for short ASCII (most GGUF keys, tensor names and vocab pieces). */
export function decodeUtf8(b: Uint8Array): string {
  if (b.length <= 64) {
    let ascii = true;
    for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) {
      ascii = false;
      break;
    }
    if (ascii) return String.fromCharCode(...b);
  }
  return utf8.decode(b);
}

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
