/**
 * Decoded image → model input, in plain TypeScript so results are deterministic across machines and match
 * llama.cpp where that matters (gguf-multimodal.md §5.0). Geometry: `stretch` and `letterbox` are llama.cpp's
 * `img_tool::resize` without / with padding; `pad-mean` is vista's own policy (LLaVA's expand2square).
 * Normalisation and the planar layout are llama.cpp's `img_u8_to_f32` and `clip_image_batch_encode`.
 */
import { ConfigError, ShapeError } from '../errors.ts';
import { Tensor } from '../tensor/tensor.ts';
import { checkColor, checkImage, checkSize, paste, solidImage, type RGB, type RGBImage } from './image.ts';
import { resize, type ResizeAlgo } from './resize.ts';

export { resize, type ResizeAlgo } from './resize.ts';

/** Per-channel (R, G, B) normalisation: `(u8/255 − mean[c]) / std[c]`. */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/**
 * How a W×H image becomes S×S:
 * - `stretch`: resize to S×S, aspect ratio not kept (llama.cpp `add_padding = false`).
 * - `letterbox`: scale to fit inside S×S keeping the aspect ratio, pad the rest (llama.cpp `add_padding = true`).
 * - `pad-mean`: pad the short side to a square first (centred), then resize to S×S — LLaVA's `expand2square`.
 *   Images that are already S×S pass through untouched.
 * Both padding policies pad with `padColor`, by default the normalisation mean as 8-bit (see meanPadColor),
 * which normalises to ≈0.
 */
export type ResizePolicy = 'stretch' | 'letterbox' | 'pad-mean';

export interface PreprocessOptions extends Normalization {
  /** side S of the square model input */
  readonly imageSize: number;
  readonly policy: ResizePolicy;
  readonly algo: ResizeAlgo;
  /** pad colour for `letterbox` / `pad-mean`; default meanPadColor(mean) */
  readonly padColor?: RGB;
}

/** An axis-aligned rectangle in pixels; `x`, `y` is the top-left corner. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

const f = Math.fround;

/**
 * Where llama.cpp's letterbox puts a `w`×`h` image inside a `tw`×`th` canvas (float32 arithmetic as upstream):
 * `scale = min(tw/w, th/h)`, `nw = min(⌈w·scale⌉, tw)`, `nh = min(⌈h·scale⌉, th)`, offset `((tw−nw)/2, (th−nh)/2)`
 * with integer division.
 * @example letterboxGeometry(200, 100, 336, 336) // { x: 0, y: 84, width: 336, height: 168 }
 */
export function letterboxGeometry(w: number, h: number, tw: number, th: number): Box {
  const scale = Math.min(f(tw / w), f(th / h));
  const width = Math.min(Math.ceil(f(w * scale)), tw);
  const height = Math.min(Math.ceil(f(h * scale)), th);
  return { x: Math.floor((tw - width) / 2), y: Math.floor((th - height) / 2), width, height };
}

/**
 * Fit `img` into a `side`×`side` canvas of `padColor`, keeping its aspect ratio (llama.cpp letterbox).
 * @example letterbox(img, 336, 'bicubic', [122, 116, 104]) // LLaVA-1.5
 */
export function letterbox(img: RGBImage, side: number, algo: ResizeAlgo, padColor: RGB): RGBImage {
  checkImage(img);
  checkSize(side, 'letterbox side');
  const box = letterboxGeometry(img.width, img.height, side, side);
  const out = solidImage(side, side, padColor);
  paste(out, resize(img, box.width, box.height, algo), box.x, box.y);
  return out;
}

/** Resize `img` to `side`×`side` ignoring its aspect ratio (llama.cpp resize without padding). */
export function stretch(img: RGBImage, side: number, algo: ResizeAlgo): RGBImage {
  return resize(img, side, side, algo);
}

/**
 * Pad the short side of `img` with `color` to make it square, the image centred (offset rounded down).
 * @example padToSquare({ width: 4, height: 2, data }, [0, 0, 0]) // 4×4, image rows 1–2
 */
export function padToSquare(img: RGBImage, color: RGB): RGBImage {
  checkImage(img);
  if (img.width === img.height) return img;
  const s = Math.max(img.width, img.height);
  const out = solidImage(s, s, color);
  paste(out, img, Math.floor((s - img.width) / 2), Math.floor((s - img.height) / 2));
  return out;
}

/**
 * The normalisation mean as an 8-bit colour, truncated like LLaVA's `int(x * 255)`: CLIP's mean gives
 * (122, 116, 104), the colour llama.cpp pads LLaVA-1.5 images with.
 */
export function meanPadColor(mean: readonly number[]): RGB {
  checkNormalization({ mean, std: [1, 1, 1] });
  const c = (v: number): number => Math.min(255, Math.max(0, Math.floor(v * 255)));
  return [c(mean[0]!), c(mean[1]!), c(mean[2]!)];
}

/** The geometric part of preprocessForModel: `img` resized/padded to `imageSize`² by `policy`. */
export function prepareImage(img: RGBImage, opts: PreprocessOptions): RGBImage {
  checkImage(img);
  const { imageSize: side, policy, algo } = opts;
  checkSize(side, 'imageSize');
  const pad = opts.padColor ?? meanPadColor(opts.mean);
  checkColor(pad, 'padColor');
  switch (policy) {
    case 'stretch':
      return stretch(img, side, algo);
    case 'letterbox':
      return letterbox(img, side, algo, pad);
    case 'pad-mean': {
      const square = padToSquare(img, pad);
      return square.width === side ? square : resize(square, side, side, algo);
    }
    default:
      throw new ConfigError(`unknown resize policy "${policy as string}"; use "stretch", "letterbox" or "pad-mean"`);
  }
}

/**
 * Where the original `width`×`height` image ends up inside the `imageSize`² model input, in output pixels
 * (fractional for `pad-mean`) — for mapping boxes and click points between image and model coordinates.
 */
export function contentBox(width: number, height: number, opts: Pick<PreprocessOptions, 'imageSize' | 'policy'>): Box {
  const s = opts.imageSize;
  if (opts.policy === 'letterbox') return letterboxGeometry(width, height, s, s);
  if (opts.policy === 'stretch') return { x: 0, y: 0, width: s, height: s };
  const side = Math.max(width, height);
  const k = s / side;
  return { x: Math.floor((side - width) / 2) * k, y: Math.floor((side - height) / 2) * k, width: width * k, height: height * k };
}

function checkNormalization({ mean, std }: Normalization): void {
  if (mean.length !== 3 || std.length !== 3 || ![...mean, ...std].every(Number.isFinite) || std.some((s) => s <= 0))
    throw new ConfigError(`image mean/std must be 3 finite numbers each, std > 0; got mean [${mean.join(', ')}], std [${std.join(', ')}]`);
}

/**
 * Normalise same-sized images into one planar f32 tensor (B, 3, H, W):
 * `out[b][c][y][x] = (data[3·(y·W + x) + c] / 255 − mean[c]) / std[c]`, in float32 like llama.cpp.
 * @example toTensor([img], { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }) // (1, 3, H, W), values in [−1, 1]
 */
export function toTensor(images: readonly RGBImage[], norm: Normalization): Tensor {
  checkNormalization(norm);
  if (images.length === 0) throw new ShapeError('toTensor needs at least one image');
  const { width: W, height: H } = images[0]!;
  images.forEach((img, i) => {
    checkImage(img, `image ${i}`);
    if (img.width !== W || img.height !== H)
      throw new ShapeError(`image ${i} is ${img.width}x${img.height} but image 0 is ${W}x${H}; resize them to one size first`);
  });
  // 256-entry table per channel: exact same float32 ops as upstream, once per value instead of per pixel
  const lut = [0, 1, 2].map((c) => {
    const m = f(norm.mean[c]!), s = f(norm.std[c]!);
    return Float32Array.from({ length: 256 }, (_, u) => f(f(f(u / 255) - m) / s));
  });
  const HW = H * W;
  const t = Tensor.empty([images.length, 3, H, W]); // (B, 3, H, W)
  const out = t.data;
  images.forEach((img, b) => {
    const src = img.data;
    for (let c = 0; c < 3; c++) {
      const table = lut[c]!;
      const base = t.offset + (b * 3 + c) * HW;
      for (let i = 0; i < HW; i++) out[base + i] = table[src[3 * i + c]!]!;
    }
  });
  return t;
}

/**
 * One decoded image → normalised model input (1, 3, S, S) under `policy`.
 * @example preprocessForModel(img, { imageSize: 128, policy: 'pad-mean', algo: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] })
 */
export function preprocessForModel(img: RGBImage, opts: PreprocessOptions): Tensor {
  return toTensor([prepareImage(img, opts)], opts);
}
