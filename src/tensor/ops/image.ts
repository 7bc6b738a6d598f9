/**
 * Image-layout ops for vision towers and projectors: patchify (the patch embedding's im2col), average
 * pooling of feature maps and of square token grids (gemma3), and idefics3/SmolVLM pixel shuffle. Each is
 * a composition of views plus one strided copy (or one reduction), so the backward rules come from the
 * view ops they are built on.
 *
 * Legend: B batch, C channels, H/W image height/width, p patch size, P patches, N tokens of a square
 * grid (side g = √N), k pooling window, s shuffle factor.
 */
import { ShapeError } from '../../errors.ts';
import { Tensor } from '../tensor.ts';
import { contiguous, permute, reshape } from './view.ts';
import { mean } from './reduce.ts';

/**
 * Cut images into non-overlapping p×p patches: img (B, C, H, W) → (B, P, C·p·p) with P = (H/p)·(W/p)
 * in row-major patch order and each patch flattened in (c, ky, kx) order. That is the layout of a
 * PyTorch Conv2d / GGUF `v.patch_embd.weight` (D, C, p, p), so a stride-p convolution is
 * `linear(patchify(img, p), reshape(weight, [D, C * p * p]))`. One strided copy of B·P·C·p·p values.
 * @example patchify(img, 14) // (1, 3, 224, 224) → (1, 256, 588)
 */
export function patchify(img: Tensor, p: number): Tensor {
  if (img.ndim !== 4) throw new ShapeError(`patchify expects (B, C, H, W), got [${img.shape.join(', ')}]`);
  const [B, C, H, W] = img.shape as [number, number, number, number];
  if (!Number.isInteger(p) || p < 1 || H % p !== 0 || W % p !== 0)
    throw new ShapeError(`patchify: image ${H}×${W} is not divisible into ${p}×${p} patches`);
  const gh = H / p;
  const gw = W / p;
  const x = reshape(img, [B, C, gh, p, gw, p]); // (B, C, gh, ky, gw, kx)
  const t = contiguous(permute(x, [0, 2, 4, 1, 3, 5])); // (B, gh, gw, C, ky, kx)
  return reshape(t, [B, gh * gw, C * p * p]); // (B, P, C·p·p)
}

/**
 * Average pooling with a k×k window and stride k over feature maps x (B, C, H, W) → (B, C, H/k, W/k)
 * (PyTorch `AvgPool2d(k)`; H and W must be multiples of k).
 */
export function avgPool2d(x: Tensor, k: number): Tensor {
  if (x.ndim !== 4) throw new ShapeError(`avgPool2d expects (B, C, H, W), got [${x.shape.join(', ')}]`);
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (!Number.isInteger(k) || k < 1 || H % k !== 0 || W % k !== 0)
    throw new ShapeError(`avgPool2d: ${H}×${W} is not divisible into ${k}×${k} windows`);
  const v = reshape(x, [B, C, H / k, k, W / k, k]); // (B, C, H/k, ky, W/k, kx)
  return mean(v, [3, 5]); // (B, C, H/k, W/k)
}

/** Side of a square token grid of N tokens that divides by `k`, or a ShapeError naming `op`. */
function gridSide(op: string, N: number, k: number): number {
  const g = Math.round(Math.sqrt(N));
  if (g * g !== N) throw new ShapeError(`${op}: ${N} tokens do not form a square grid`);
  if (!Number.isInteger(k) || k < 1 || g % k !== 0) throw new ShapeError(`${op}: grid side ${g} is not divisible by ${k}`);
  return g;
}

/**
 * Average-pool a square token grid: x (B, N, C) with tokens in row-major grid order → (B, N/k², C),
 * k×k windows with stride k. Exactly gemma3's multimodal projector (HF `Gemma3MultiModalProjector`:
 * transpose to (B, C, g, g), `AvgPool2d(k)`, flatten, transpose back), without the two transposes.
 * @example avgPoolTokens(x, 4) // (1, 4096, 1152) → (1, 256, 1152)
 */
export function avgPoolTokens(x: Tensor, k: number): Tensor {
  if (x.ndim !== 3) throw new ShapeError(`avgPoolTokens expects (B, N, C), got [${x.shape.join(', ')}]`);
  const [B, N, C] = x.shape as [number, number, number];
  const g = gridSide('avgPoolTokens', N, k);
  const v = reshape(x, [B, g / k, k, g / k, k, C]); // (B, I, ky, J, kx, C)
  return reshape(mean(v, [2, 4]), [B, (g / k) * (g / k), C]); // (B, N/k², C)
}

/**
 * Idefics3/SmolVLM pixel shuffle (space-to-depth) on a square token grid: x (B, N, C) → (B, N/s², C·s²).
 *
 * HF `Idefics3Connector.pixel_shuffle` reshapes to (B, g, g/s, C·s), transposes, reshapes to
 * (B, g/s, g/s, C·s²), transposes back and flattens. Following the indices through those steps gives
 *
 *   out[b, I·(g/s) + J, (i·s + j)·C + c] = x[b, (I·s + i)·g + (J·s + j), c]
 *
 * for I, J < g/s and i, j < s: each output token is an s×s block of the grid, its channels the block's
 * tokens in row-major order (row offset i outermost). Here that is one view (B, g/s, s, g/s, s, C),
 * one permute and one copy.
 * @example pixelShuffle(x, 4) // (1, 1024, 768) → (1, 64, 12288)  (SmolVLM scale_factor 4)
 */
export function pixelShuffle(x: Tensor, s: number): Tensor {
  if (x.ndim !== 3) throw new ShapeError(`pixelShuffle expects (B, N, C), got [${x.shape.join(', ')}]`);
  const [B, N, C] = x.shape as [number, number, number];
  const g = gridSide('pixelShuffle', N, s);
  const v = reshape(x, [B, g / s, s, g / s, s, C]); // (B, I, i, J, j, C)
  const t = contiguous(permute(v, [0, 1, 3, 2, 4, 5])); // (B, I, J, i, j, C)
  return reshape(t, [B, (g / s) * (g / s), C * s * s]); // (B, N/s², C·s²)
}
