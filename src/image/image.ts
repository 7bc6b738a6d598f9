/** The in-memory image type shared by decoding and preprocessing (no I/O, no sharp). */
import { ShapeError } from '../errors.ts';

/**
 * An 8-bit sRGB image, RGB interleaved, row-major: pixel (x, y) channel c is `data[3 * (y * width + x) + c]`
 * (llama.cpp `clip_image_u8` layout).
 * @example const px: RGBImage = { width: 1, height: 1, data: Uint8Array.of(255, 0, 0) }
 */
export interface RGBImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** An RGB colour, each channel 0–255. */
export type RGB = readonly [number, number, number];

/** Throws a ShapeError unless `img` has positive integer sizes and exactly `3·width·height` bytes. */
export function checkImage(img: RGBImage, what = 'image'): void {
  const { width: w, height: h } = img;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0)
    throw new ShapeError(`${what} must have positive integer width and height, got ${w}x${h}`);
  if (img.data.length !== 3 * w * h)
    throw new ShapeError(`${what} is ${w}x${h} RGB, so it needs ${3 * w * h} bytes, got ${img.data.length}`);
}

/** Throws a ShapeError unless `size` is a positive integer. */
export function checkSize(size: number, what: string): void {
  if (!Number.isInteger(size) || size <= 0) throw new ShapeError(`${what} must be a positive integer, got ${size}`);
}

/** Throws a ShapeError unless every channel is an integer 0–255. */
export function checkColor(color: RGB, what = 'colour'): void {
  if (color.length !== 3 || color.some((v) => !Number.isInteger(v) || v < 0 || v > 255))
    throw new ShapeError(`${what} must be three integers 0-255, got [${color.join(', ')}]`);
}

/** A `width`×`height` image filled with `color`. */
export function solidImage(width: number, height: number, color: RGB): RGBImage {
  checkSize(width, 'width');
  checkSize(height, 'height');
  checkColor(color);
  const data = new Uint8Array(3 * width * height);
  for (let i = 0; i < data.length; i += 3) data.set(color, i);
  return { width, height, data };
}

/** Copy `src` into `dst` with its top-left corner at (x, y); pixels falling outside `dst` are dropped. */
export function paste(dst: RGBImage, src: RGBImage, x: number, y: number): void {
  for (let sy = 0; sy < src.height; sy++) {
    const dy = sy + y;
    if (dy < 0 || dy >= dst.height) continue;
    const x0 = Math.max(0, -x);
    const x1 = Math.min(src.width, dst.width - x);
    if (x1 <= x0) continue;
    const from = 3 * (sy * src.width + x0);
    dst.data.set(src.data.subarray(from, from + 3 * (x1 - x0)), 3 * (dy * dst.width + x + x0));
  }
}
