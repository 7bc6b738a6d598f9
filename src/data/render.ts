/**
 * The project's own Shapes World renderer: a pure-TypeScript coverage rasterizer (5×5 supersampling per
 * pixel, the same raster the scene sampler measured boxes on) into RGB8, then optional blur and noise.
 * sharp is used only at the edge, to encode PNG.
 */
import sharp from 'sharp';
import { Rng } from '../tensor/rng.ts';
import type { RGBImage } from '../image/image.ts';
import { objectMask, type Scene } from './scene.ts';

/**
 * Paint `scene` into a new RGB8 image of `scene.width`×`scene.height` (noise and blur included unless `clean`).
 * @example const img = renderScene(sampleScene(new Rng(1))); img.data.length === 3 * 128 * 128
 */
export function renderScene(scene: Scene, opts: { clean?: boolean } = {}): RGBImage {
  const { width, height } = scene;
  const data = new Uint8Array(3 * width * height);
  const bg = scene.background.rgb;
  for (let i = 0; i < data.length; i += 3) data.set(bg, i);
  for (const o of scene.objects) {
    const m = objectMask(o);
    for (let y = 0; y < m.h; y++)
      for (let x = 0; x < m.w; x++) {
        const c = m.cov[y * m.w + x]!;
        if (c === 0) continue;
        const p = 3 * ((m.y0 + y) * width + m.x0 + x);
        for (let k = 0; k < 3; k++) data[p + k] = Math.round(data[p + k]! * (1 - c) + o.rgb[k]! * c);
      }
  }
  const img = { width, height, data };
  if (opts.clean) return img;
  if (scene.noise.blur) blurHalfPixel(img);
  addNoise(img, scene.noise.sigma, scene.noise.seed);
  return img;
}

/** Separable Gaussian blur with σ = 0.5 px (5 taps, edges clamped), in place. */
export function blurHalfPixel(img: RGBImage): void {
  const k = [-2, -1, 0, 1, 2].map((d) => Math.exp(-(d * d) / (2 * 0.25)));
  const sum = k.reduce((a, b) => a + b);
  const w = k.map((v) => v / sum);
  const { width, height, data } = img;
  const tmp = new Float32Array(data.length);
  const at = (x: number, y: number, c: number): number => 3 * (Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))) + c;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let d = -2; d <= 2; d++) s += w[d + 2]! * data[at(x + d, y, c)]!;
        tmp[3 * (y * width + x) + c] = s;
      }
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let d = -2; d <= 2; d++) s += w[d + 2]! * tmp[at(x, y + d, c)]!;
        data[3 * (y * width + x) + c] = Math.round(s);
      }
}

/** Add Gaussian noise of σ = `sigma`·255 per channel from the seeded stream `seed`, in place (no-op for σ = 0). */
export function addNoise(img: RGBImage, sigma: number, seed: number): void {
  if (sigma <= 0) return;
  const rng = new Rng(seed, 7);
  const s = sigma * 255;
  const d = img.data;
  // Box–Muller on two 16-bit uniforms from one draw: two normals per PCG step (noise needs no more precision).
  for (let i = 0; i < d.length; i += 2) {
    const u = rng.nextU32();
    const r = Math.sqrt(-2 * Math.log(((u >>> 16) + 0.5) / 65536)), a = (2 * Math.PI * ((u & 0xffff) + 0.5)) / 65536;
    d[i] = Math.min(255, Math.max(0, Math.round(d[i]! + s * r * Math.cos(a))));
    if (i + 1 < d.length) d[i + 1] = Math.min(255, Math.max(0, Math.round(d[i + 1]! + s * r * Math.sin(a))));
  }
}

/** Encode an RGB8 image as PNG bytes (deterministic for equal input). */
export function encodePng(img: RGBImage): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}
