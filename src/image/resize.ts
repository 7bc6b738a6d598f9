/**
 * llama.cpp's image resize kernels, ported operation by operation (gguf-multimodal.md §5.0; upstream
 * tools/mtmd `img_tool::resize_bilinear` / `resize_bicubic`). They are not PIL/PyTorch-compatible; they are
 * reproduced so vista's pixels match llama.cpp's. Upstream computes in C++ `float`, so every float operation
 * here is rounded with Math.fround; sub-expressions that upstream writes with double literals (`1.0 / 3 * d0`)
 * are computed in double and rounded once, as C++ does. (An FMA-contracting build of llama.cpp may differ in
 * the last float bit, which can move a result by one step of 8-bit rounding in rare cases.)
 */
import { checkImage, checkSize, type RGBImage } from './image.ts';

export type ResizeAlgo = 'bilinear' | 'bicubic';

const f = Math.fround;

/**
 * Resize `img` to `width`×`height` with llama.cpp's bilinear or bicubic kernel (aspect ratio not kept).
 * @example resize(img, 336, 336, 'bicubic') // RGBImage 336×336
 */
export function resize(img: RGBImage, width: number, height: number, algo: ResizeAlgo): RGBImage {
  checkImage(img);
  checkSize(width, 'resize width');
  checkSize(height, 'resize height');
  if (algo === 'bilinear') return resizeBilinear(img, width, height);
  if (algo === 'bicubic') return resizeBicubic(img, width, height);
  throw new TypeError(`unknown resize algorithm "${algo as string}"; use "bilinear" or "bicubic"`);
}

/** C++ float `s + (e - s) * t`. */
const lerp = (s: number, e: number, t: number): number => f(s + f(f(e - s) * t));

/**
 * Spec §5.0 BILINEAR: `ratio = (w−1)/Tw`, sample at `ratio·x` (so the last source row/column is never
 * reached exactly), `x0 = min(⌊px⌋, w−2)`, lerp along x on rows y0 and y0+1, then along y, truncate to u8.
 * For 1-pixel-wide sources (where w−2 < 0 would read out of bounds) both taps clamp to the one column.
 */
function resizeBilinear(img: RGBImage, tw: number, th: number): RGBImage {
  const { width: w, height: h, data: src } = img;
  const out = new Uint8Array(3 * tw * th);
  const xRatio = f((w - 1) / tw);
  const yRatio = f((h - 1) / th);
  for (let y = 0; y < th; y++) {
    const py = f(yRatio * y);
    const y0 = Math.max(0, Math.min(Math.trunc(py), h - 2));
    const y1 = Math.min(y0 + 1, h - 1);
    const yf = f(py - y0);
    for (let x = 0; x < tw; x++) {
      const px = f(xRatio * x);
      const x0 = Math.max(0, Math.min(Math.trunc(px), w - 2));
      const x1 = Math.min(x0 + 1, w - 1);
      const xf = f(px - x0);
      const i00 = 3 * (y0 * w + x0), i10 = 3 * (y0 * w + x1), i01 = 3 * (y1 * w + x0), i11 = 3 * (y1 * w + x1);
      const o = 3 * (y * tw + x);
      for (let c = 0; c < 3; c++) {
        const top = lerp(src[i00 + c]!, src[i10 + c]!, xf);
        const bottom = lerp(src[i01 + c]!, src[i11 + c]!, xf);
        out[o + c] = Math.min(255, Math.max(0, Math.trunc(lerp(top, bottom, yf))));
      }
    }
  }
  return { width: tw, height: th, data: out };
}

/**
 * One cubic through p(−1), p(0), p(1), p(2) evaluated at t ∈ [0, 1) — upstream's coefficients, with the
 * a1..a3 expressions in double (double literals) and the polynomial in float.
 */
function cubic(pm1: number, p0: number, p1: number, p2: number, t: number): number {
  const d0 = f(pm1 - p0);
  const d2 = f(p1 - p0);
  const d3 = f(p2 - p0);
  const a1 = f((-1 / 3) * d0 + d2 - (1 / 6) * d3);
  const a2 = f(0.5 * d0 + 0.5 * d2);
  const a3 = f((-1 / 6) * d0 - 0.5 * d2 + (1 / 6) * d3);
  // C++ evaluates `a0 + a1 * dx + a2 * dx * dx + a3 * dx * dx * dx` left to right, one float rounding per op
  return f(f(f(p0 + f(a1 * t)) + f(f(a2 * t) * t)) + f(f(f(a3 * t) * t) * t));
}

/**
 * Spec §5.0 BICUBIC: `tx = w/Tw`; source column `x = ⌊tx·j⌋`, `dx = tx·j − x` (same for y); cubic along x on
 * rows y−1..y+2 (edge-clamped), then along y; round half away from zero, clamp to [0, 255].
 */
function resizeBicubic(img: RGBImage, tw: number, th: number): RGBImage {
  const { width: w, height: h, data: src } = img;
  const out = new Uint8Array(3 * tw * th);
  const tx = f(w / tw);
  const ty = f(h / th);
  const clampX = (v: number): number => Math.min(Math.max(v, 0), w - 1);
  const clampY = (v: number): number => Math.min(Math.max(v, 0), h - 1);
  const col = new Float32Array(4);
  for (let i = 0; i < th; i++) {
    const sy = f(ty * i);
    const y = Math.trunc(sy);
    const dy = f(sy - y);
    for (let j = 0; j < tw; j++) {
      const sx = f(tx * j);
      const x = Math.trunc(sx);
      const dx = f(sx - x);
      const xs = [clampX(x - 1), clampX(x), clampX(x + 1), clampX(x + 2)] as const;
      for (let c = 0; c < 3; c++) {
        for (let k = 0; k < 4; k++) {
          const row = 3 * clampY(y - 1 + k) * w + c;
          col[k] = cubic(src[row + 3 * xs[0]]!, src[row + 3 * xs[1]]!, src[row + 3 * xs[2]]!, src[row + 3 * xs[3]]!, dx);
        }
        const v = cubic(col[0]!, col[1]!, col[2]!, col[3]!, dy);
        // C roundf rounds halves away from zero; Math.round rounds them up — the same for v ≥ 0, and the
        // clamp sends every negative to 0 either way
        out[3 * (i * tw + j) + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return { width: tw, height: th, data: out };
}
