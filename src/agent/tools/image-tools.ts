/**
 * Built-in image tools. Each works on the current image (the last image in the conversation) with
 * coordinates on a 0–1000 grid (0,0 top-left; 1000,1000 bottom-right, whatever the pixel size) and
 * returns a new image; none has side effects outside the run, so all are read-only.
 *
 * - `click({x, y})`: the image with a marker (magenta ring with white edges and a centre dot) at the point.
 * - `crop({x0, y0, x1, y1})`: the region, upscaled to fill the original frame.
 * - `zoom({x, y, factor})`: a region 1/factor of the image's size centred on the point, upscaled to the
 *   original size.
 */
import { resize, type RGBImage } from '../../image/index.ts';
import { text, type AgentTool, type ToolContext, type ToolResult } from '../tools.ts';

const coord = { type: 'integer', minimum: 0, maximum: 1000 } as const;
const MAX_SIDE = 2048;

/** The image tools click, crop and zoom. */
export function imageTools(): AgentTool[] {
  return [clickTool, cropTool, zoomTool];
}

const clickTool: AgentTool = {
  name: 'click',
  description: 'Click a point of the current image (x, y on a 0-1000 grid); returns the image with the point marked.',
  parameters: { type: 'object', properties: { x: coord, y: coord }, required: ['x', 'y'] },
  readOnly: true,
  async run(args, ctx) {
    const img = current(ctx);
    const { x, y } = args as { x: number; y: number };
    const px = toPixel(x, img.width), py = toPixel(y, img.height);
    return {
      content: [text(`clicked (${x}, ${y}) = pixel (${px}, ${py}) of the ${img.width}x${img.height} image`), { type: 'image', image: drawMarker(img, px, py) }],
    };
  },
};

const cropTool: AgentTool = {
  name: 'crop',
  description: 'Crop the current image to the box x0,y0 (top-left) to x1,y1 (bottom-right) on a 0-1000 grid; returns the region enlarged.',
  parameters: { type: 'object', properties: { x0: coord, y0: coord, x1: coord, y1: coord }, required: ['x0', 'y0', 'x1', 'y1'] },
  readOnly: true,
  async run(args, ctx) {
    const img = current(ctx);
    const { x0, y0, x1, y1 } = args as Record<'x0' | 'y0' | 'x1' | 'y1', number>;
    if (x1 <= x0 || y1 <= y0) return failure(`empty box: need x0 < x1 and y0 < y1, got (${x0}, ${y0}, ${x1}, ${y1})`);
    const l = Math.floor((x0 / 1000) * img.width), t = Math.floor((y0 / 1000) * img.height);
    const r = Math.max(l + 1, Math.ceil((x1 / 1000) * img.width)), b = Math.max(t + 1, Math.ceil((y1 / 1000) * img.height));
    return region(img, l, t, r - l, b - t, `cropped (${x0}, ${y0})-(${x1}, ${y1})`);
  },
};

const zoomTool: AgentTool = {
  name: 'zoom',
  description: 'Zoom into the current image around x, y (0-1000 grid) by factor (1-8); returns the enlarged region.',
  parameters: { type: 'object', properties: { x: coord, y: coord, factor: { type: 'number', minimum: 1, maximum: 8 } }, required: ['x', 'y', 'factor'] },
  readOnly: true,
  async run(args, ctx) {
    const img = current(ctx);
    const { x, y, factor } = args as { x: number; y: number; factor: number };
    const w = Math.max(1, Math.round(img.width / factor)), h = Math.max(1, Math.round(img.height / factor));
    const clamp = (v: number, size: number, max: number) => Math.min(Math.max(0, Math.round(v - size / 2)), max - size);
    return region(img, clamp((x / 1000) * img.width, w, img.width), clamp((y / 1000) * img.height, h, img.height), w, h, `zoomed ${factor}x at (${x}, ${y})`);
  },
};

function current(ctx: ToolContext): RGBImage {
  const img = ctx.images.at(-1);
  if (!img) throw new Error('there is no image in the conversation');
  return img;
}

function failure(message: string): ToolResult {
  return { content: [text(message)], isError: true };
}

/** 0–1000 → pixel index in [0, size). */
export function toPixel(v: number, size: number): number {
  return Math.min(size - 1, Math.max(0, Math.round((v / 1000) * (size - 1))));
}

/** The w×h region at (l, t), upscaled to fill the source's frame (keeping its aspect, at most MAX_SIDE). */
function region(img: RGBImage, l: number, t: number, w: number, h: number, what: string): ToolResult {
  const part = cropPixels(img, l, t, w, h);
  const scale = Math.max(1, Math.min(img.width / w, img.height / h, MAX_SIDE / Math.max(w, h)));
  const out = scale > 1 ? resize(part, Math.round(w * scale), Math.round(h * scale), 'bilinear') : part;
  return { content: [text(`${what}: pixels ${l},${t} ${w}x${h}, shown at ${out.width}x${out.height}`), { type: 'image', image: out }] };
}

/** Copy of the w×h region whose top-left pixel is (l, t); it must lie inside the image. */
export function cropPixels(img: RGBImage, l: number, t: number, w: number, h: number): RGBImage {
  const data = new Uint8Array(3 * w * h);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(3 * ((t + y) * img.width + l), 3 * ((t + y) * img.width + l + w)), 3 * y * w);
  return { width: w, height: h, data };
}

const MAGENTA = [255, 0, 255] as const;
const WHITE = [255, 255, 255] as const;

/** A copy of `img` with a marker centred on pixel (px, py): a ring with white edges and a centre dot. */
export function drawMarker(img: RGBImage, px: number, py: number): RGBImage {
  const out: RGBImage = { width: img.width, height: img.height, data: img.data.slice() };
  const R = Math.max(4, Math.round(Math.min(img.width, img.height) / 30)); // ring radius
  const T = Math.max(1, Math.round(R / 4)); // ring thickness
  const dot = Math.max(1, Math.round(R / 4));
  for (let y = Math.max(0, py - R - T - 1); y <= Math.min(img.height - 1, py + R + T + 1); y++)
    for (let x = Math.max(0, px - R - T - 1); x <= Math.min(img.width - 1, px + R + T + 1); x++) {
      const d = Math.hypot(x - px, y - py);
      const ring = Math.abs(d - R);
      let c: readonly number[] | null = null;
      if (d <= dot || ring <= T / 2) c = MAGENTA;
      else if (d <= dot + 1 || ring <= T / 2 + 1) c = WHITE;
      if (c) out.data.set(c, 3 * (y * img.width + x));
    }
  return out;
}
