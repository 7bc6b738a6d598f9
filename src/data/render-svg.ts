/**
 * A second, independent Shapes World renderer: the scene as SVG, rasterized by librsvg (through sharp) with
 * its own anti-aliasing. Digits are `<text font-family="sans-serif">` glyphs (whatever font fontconfig picks),
 * stretched so their ink fills the metadata box; where no font renders (no fonts installed), a different,
 * seven-segment-style digit design drawn as SVG paths. The model is evaluated on images from this renderer,
 * at any output size (96–512 and beyond: the SVG is scaled, normalised boxes stay valid).
 */
import sharp from 'sharp';
import { InputError } from '../errors.ts';
import type { RGBImage, RGB } from '../image/image.ts';
import { outline, DRAWN_COVERAGE, type Point } from './geometry.ts';
import { addNoise } from './render.ts';
import type { Box, Scene } from './scene.ts';

export type DigitStyle = 'font' | 'segments';

export interface SvgRenderOptions {
  /** Output side in px (the scene is scaled). Default: the scene's own size. */
  size?: number;
  /** Digit drawing; default 'auto' = 'font' when librsvg renders text here, else 'segments'. */
  digits?: DigitStyle | 'auto';
  /** Override the scene's noise (σ as a share of 255, ≤ 0.05) and blur. */
  noise?: { sigma: number; blur: boolean };
  /** No noise and no blur. */
  clean?: boolean;
}

const hex = (c: RGB): string => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
const num = (v: number): string => String(Math.round(v * 1000) / 1000);
const pts = (p: readonly Point[]): string => p.map(([x, y]) => `${num(x)},${num(y)}`).join(' ');

const FONT_PX = 200;
let fontProbe: Promise<(Box | null)[]> | null = null;

/** Ink boxes of the sans-serif digits 0–9 at font-size 200 relative to the text origin; null entries when nothing rendered. */
function fontDigitBoxes(): Promise<(Box | null)[]> {
  fontProbe ??= Promise.all(
    Array.from({ length: 10 }, async (_, d) => {
      const W = 320, ox = 60, oy = 260;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${W}"><rect width="${W}" height="${W}" fill="#fff"/>` +
        `<text x="${ox}" y="${oy}" font-family="sans-serif" font-size="${FONT_PX}" fill="#000">${d}</text></svg>`;
      const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().greyscale().raw().toBuffer({ resolveWithObject: true });
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      const dark = 255 * (1 - DRAWN_COVERAGE);
      for (let y = 0; y < info.height; y++)
        for (let x = 0; x < info.width; x++)
          if (data[y * info.width + x]! <= dark) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      return x0 === Infinity || x1 - x0 < 10 ? null : ([x0 - ox, y0 - oy, x1 + 1 - ox, y1 + 1 - oy] as Box);
    }),
  );
  return fontProbe;
}

/** Whether librsvg renders `<text font-family="sans-serif">` digits on this machine (fonts available). */
export async function svgTextRenders(): Promise<boolean> {
  return (await fontDigitBoxes()).every((b) => b !== null);
}

/** Seven-segment-style digits (a design unlike the TS renderer's): polylines in the unit box, square caps. */
const SEGMENT_DIGITS: readonly (readonly Point[])[][] = [
  [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
  [[[0.25, 0.2], [0.6, 0], [0.6, 1]], [[0.15, 1], [1, 1]]],
  [[[0, 0], [1, 0], [1, 0.5], [0, 0.5], [0, 1], [1, 1]]],
  [[[0, 0], [1, 0], [1, 1], [0, 1]], [[0, 0.5], [1, 0.5]]],
  [[[0, 0], [0, 0.6], [1, 0.6]], [[0.75, 0.2], [0.75, 1]]],
  [[[1, 0], [0, 0], [0, 0.5], [1, 0.5], [1, 1], [0, 1]]],
  [[[1, 0], [0, 0], [0, 1], [1, 1], [1, 0.5], [0, 0.5]]],
  [[[0, 0], [1, 0], [0.4, 1]]],
  [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0, 0.5], [1, 0.5]]],
  [[[1, 0.5], [0, 0.5], [0, 0], [1, 0], [1, 1], [0, 1]]],
];

function digitSvg(d: number, box: Box, fill: string, style: DigitStyle, fontBox: Box | null): string {
  const [X0, Y0, X1, Y1] = box;
  if (style === 'font' && fontBox) {
    const [e0, f0, e1, f1] = fontBox;
    const a = (X1 - X0) / (e1 - e0), b = (Y1 - Y0) / (f1 - f0);
    const m = [a, 0, 0, b, X0 - a * e0, Y0 - b * f0].map(num).join(' ');
    return `<text x="0" y="0" font-family="sans-serif" font-size="${FONT_PX}" fill="${fill}" transform="matrix(${m})">${d}</text>`;
  }
  const w = 0.14 * (Y1 - Y0);
  const sx0 = X0 + w / 2, sy0 = Y0 + w / 2, sw = Math.max(0, X1 - X0 - w), sh = Y1 - Y0 - w;
  const paths = SEGMENT_DIGITS[d]!.map((l) => `<polyline points="${pts(l.map(([u, v]) => [sx0 + u * sw, sy0 + v * sh]))}"/>`).join('');
  return `<g fill="none" stroke="${fill}" stroke-width="${num(w)}" stroke-linecap="square" stroke-linejoin="miter">${paths}</g>`;
}

/**
 * The scene as an SVG document of `size`×`size` px (viewBox in scene pixels).
 * @example const svg = await sceneSvg(scene, { size: 256 });
 */
export async function sceneSvg(scene: Scene, opts: SvgRenderOptions = {}): Promise<string> {
  const size = opts.size ?? scene.width;
  if (!Number.isInteger(size) || size < 16 || size > 4096) throw new InputError(`SVG output size must be an integer 16–4096, got ${size}`);
  const fontBoxes = await fontDigitBoxes();
  const auto = fontBoxes.every((b) => b !== null) ? 'font' : 'segments';
  const style = opts.digits === undefined || opts.digits === 'auto' ? auto : opts.digits;
  const parts = [`<rect width="${scene.width}" height="${scene.height}" fill="${hex(scene.background.rgb)}"/>`];
  for (const o of scene.objects) {
    const fill = hex(o.rgb);
    if (o.shape === 'digit') {
      parts.push(digitSvg(o.digit ?? 0, o.box, fill, style, fontBoxes[o.digit ?? 0] ?? null));
      continue;
    }
    const p = outline(o);
    if (p.kind === 'circle') parts.push(`<circle cx="${num(p.cx)}" cy="${num(p.cy)}" r="${num(p.r)}" fill="${fill}"/>`);
    else if (p.kind === 'polygon') parts.push(`<polygon points="${pts(p.points)}" fill="${fill}"/>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${Math.round((size * scene.height) / scene.width)}" ` +
    `viewBox="0 0 ${scene.width} ${scene.height}">${parts.join('')}</svg>`;
}

/**
 * Rasterize the scene with librsvg into RGB8 at `opts.size` (default the scene size), then blur (sharp's
 * Gaussian, σ 0.5) and noise as the scene or `opts.noise` says.
 * @example const img = await renderSceneSvg(scene, { size: 384 }); // boxes: box1000 · 384 / 1000
 */
export async function renderSceneSvg(scene: Scene, opts: SvgRenderOptions = {}): Promise<RGBImage> {
  const noise = opts.clean ? { sigma: 0, blur: false } : (opts.noise ?? scene.noise);
  if (!(noise.sigma >= 0 && noise.sigma <= 0.05)) throw new InputError(`noise sigma must be within 0–0.05, got ${noise.sigma}`);
  let img = sharp(Buffer.from(await sceneSvg(scene, opts))).removeAlpha();
  if (noise.blur) img = img.blur(0.5);
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const out = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  addNoise(out, noise.sigma, scene.noise.seed ^ 0x9e3779b9);
  return out;
}
