/**
 * Continuous geometry of Shapes World objects and its coverage raster. Both renderers draw the same
 * circles and polygons from `outline`; digits are stroked skeletons (a sans-serif design defined here, so no
 * system font is needed). Pixel (x, y) covers [x, x+1) × [y, y+1); boxes are [x0, y0, x1, y1] with exclusive
 * ends, so the box covers columns x0 … x1−1.
 */
import type { Shape } from './vocab.ts';

export type Point = readonly [number, number];
export type Primitive =
  | { readonly kind: 'circle'; readonly cx: number; readonly cy: number; readonly r: number }
  | { readonly kind: 'polygon'; readonly points: readonly Point[] }
  | { readonly kind: 'strokes'; readonly lines: readonly (readonly Point[])[]; readonly width: number };

/** Where an object sits: its outer box (integer-aligned, contains every drawn pixel). */
export interface Placement {
  readonly shape: Shape;
  /** Outer box [x0, y0, x1, y1], integers, exclusive ends. */
  readonly outer: readonly [number, number, number, number];
  /** Shapes: bounding-box side in px. Digits: glyph (ink) height in px. */
  readonly side: number;
  readonly digit: number | null;
}

/** A pixel is "drawn" when at least this share of it is covered (the metadata box is the tight box of such pixels). */
export const DRAWN_COVERAGE = 0.25;
/** Stroke width of digit glyphs as a share of the glyph height. */
export const DIGIT_STROKE = 0.13;
/** Glyph skeleton width as a share of the skeleton height. */
export const DIGIT_ASPECT = 0.56;

const COS18 = Math.cos(Math.PI / 10);
/** Stars are drawn this much wider than their nominal side: the thin tips must reach into the edge pixels. */
const STAR_REACH = 1;
const COS36 = Math.cos(Math.PI / 5);

/** Outer box width and height for a shape of bounding side `side` (stars are 0.951× as tall as wide). */
export function extent(shape: Shape, side: number): [number, number] {
  if (shape === 'digit') {
    const w = DIGIT_STROKE * side;
    return [Math.ceil(DIGIT_ASPECT * (side - w) + w), side];
  }
  if (shape === 'star') return [side + 2, Math.ceil(((side + STAR_REACH) / (2 * COS18)) * (1 + COS36)) + 1];
  return [side, side];
}

/** The primitive that draws a placed object. */
export function outline(p: Placement): Primitive {
  const [x0, y0] = p.outer;
  const s = p.side;
  switch (p.shape) {
    case 'circle':
      return { kind: 'circle', cx: x0 + s / 2, cy: y0 + s / 2, r: s / 2 };
    case 'square':
      return { kind: 'polygon', points: [[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]] };
    case 'triangle':
      return { kind: 'polygon', points: [[x0 + s / 2, y0], [x0 + s, y0 + s], [x0, y0 + s]] };
    case 'star': {
      const R = (s + STAR_REACH) / (2 * COS18);
      const r = R * 0.382; // regular pentagram: inner/outer radius = sin18/sin54
      const cx = x0 + 1 + s / 2, cy = y0 + 0.5 + R;
      const pts: Point[] = [];
      for (let i = 0; i < 10; i++) {
        const a = -Math.PI / 2 + (i * Math.PI) / 5;
        const rr = i % 2 ? r : R;
        pts.push([cx + rr * Math.cos(a), cy + rr * Math.sin(a)]);
      }
      return { kind: 'polygon', points: pts };
    }
    case 'digit': {
      const w = DIGIT_STROKE * s;
      const sh = s - w, sw = DIGIT_ASPECT * sh;
      const ox = x0 + w / 2, oy = y0 + w / 2;
      const lines = DIGIT_SKELETONS[p.digit ?? 0]!.map((l) => l.map(([u, v]) => [ox + u * sw, oy + v * sh] as Point));
      return { kind: 'strokes', lines, width: w };
    }
  }
}

// ---- digit skeletons: unit box, x right, y down --------------------------------------------------------

function arc(cx: number, cy: number, rx: number, ry: number, a0: number, a1: number): Point[] {
  const n = Math.max(4, Math.round(Math.abs(a1 - a0) / 10));
  const out: Point[] = [];
  for (let i = 0; i <= n; i++) {
    const a = ((a0 + ((a1 - a0) * i) / n) * Math.PI) / 180;
    out.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return out;
}
function bezier(p0: Point, c: Point, p1: Point, n = 12): Point[] {
  const out: Point[] = [];
  for (let i = 0; i <= n; i++) {
    const t = i / n, u = 1 - t;
    out.push([u * u * p0[0] + 2 * u * t * c[0] + t * t * p1[0], u * u * p0[1] + 2 * u * t * c[1] + t * t * p1[1]]);
  }
  return out;
}

/** Stroke skeletons of the digits 0–9 (polylines in the unit box). */
export const DIGIT_SKELETONS: readonly (readonly Point[])[][] = [
  [arc(0.5, 0.5, 0.5, 0.5, 0, 360)],
  [[[0.12, 0.24], [0.55, 0], [0.55, 1]], [[0.15, 1], [0.95, 1]]],
  [[...arc(0.5, 0.28, 0.46, 0.28, 195, 380), [0, 1], [1, 1]]],
  [arc(0.5, 0.25, 0.42, 0.25, 200, 450), arc(0.5, 0.75, 0.48, 0.25, 270, 520), [[0.3, 0.5], [0.5, 0.5]]],
  [[[0.72, 1], [0.72, 0], [0, 0.68], [1, 0.68]]],
  [[[0.88, 0], [0.18, 0], [0.16, 0.454], ...arc(0.5, 0.68, 0.48, 0.32, 225, 510)]],
  [arc(0.5, 0.68, 0.5, 0.32, 0, 360), bezier([0, 0.68], [0, 0.04], [0.85, 0.03])],
  [[[0, 0], [1, 0], [0.32, 1]]],
  [arc(0.5, 0.23, 0.4, 0.23, 0, 360), arc(0.5, 0.73, 0.5, 0.27, 0, 360)],
  [arc(0.5, 0.32, 0.5, 0.32, 0, 360), bezier([1, 0.32], [1, 0.96], [0.15, 0.97])],
];

// ---- coverage ----------------------------------------------------------------------------------------

/** Per-pixel coverage (0–1) of one object over its outer box. */
export interface Mask {
  readonly x0: number;
  readonly y0: number;
  readonly w: number;
  readonly h: number;
  readonly cov: Float32Array;
}

function flat(pts: readonly Point[]): Float64Array {
  return Float64Array.from(pts.flat());
}

function insidePolygon(p: Float64Array, x: number, y: number): boolean {
  let inside = false;
  const n = p.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = p[i]!, yi = p[i + 1]!, xj = p[j]!, yj = p[j + 1]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Squared distance from (x, y) to the nearest of the segments (x0, y0, x1, y1)*. */
function segDist2(segs: Float64Array, x: number, y: number): number {
  let best = Infinity;
  for (let k = 0; k < segs.length; k += 4) {
    const ax = segs[k]!, ay = segs[k + 1]!, dx = segs[k + 2]! - ax, dy = segs[k + 3]! - ay;
    const len2 = dx * dx + dy * dy;
    let t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const ex = ax + t * dx - x, ey = ay + t * dy - y;
    const d2 = ex * ex + ey * ey;
    if (d2 < best) best = d2;
  }
  return best;
}

function segmentsOf(lines: readonly (readonly Point[])[]): Float64Array {
  const segs: number[] = [];
  for (const l of lines) for (let i = 1; i < l.length; i++) segs.push(l[i - 1]![0], l[i - 1]![1], l[i]![0], l[i]![1]);
  return Float64Array.from(segs);
}

/** Inside test and distance to the primitive's boundary (the latter lets whole pixels skip supersampling). */
function predicates(prim: Primitive): { inside: (x: number, y: number) => boolean; edge: (x: number, y: number) => number } {
  if (prim.kind === 'circle') {
    const { cx, cy, r } = prim;
    const r2 = r * r;
    const d2 = (x: number, y: number): number => (x - cx) * (x - cx) + (y - cy) * (y - cy);
    return { inside: (x, y) => d2(x, y) <= r2, edge: (x, y) => Math.abs(Math.sqrt(d2(x, y)) - r) };
  }
  if (prim.kind === 'polygon') {
    const p = flat(prim.points);
    const closed = flat([...prim.points, prim.points[0]!]);
    const segs = new Float64Array(4 * prim.points.length);
    for (let i = 0; i < prim.points.length; i++) segs.set(closed.subarray(2 * i, 2 * i + 4), 4 * i);
    return { inside: (x, y) => insidePolygon(p, x, y), edge: (x, y) => Math.sqrt(segDist2(segs, x, y)) };
  }
  const segs = segmentsOf(prim.lines), r = prim.width / 2;
  return { inside: (x, y) => segDist2(segs, x, y) <= r * r, edge: (x, y) => Math.abs(Math.sqrt(segDist2(segs, x, y)) - r) };
}

/**
 * Coverage of `prim` over the integer box `outer`, by `ss`×`ss` supersampling of the pixels the boundary
 * passes through (pixels farther than half a diagonal from it are wholly inside or outside).
 * @example const m = coverage(outline(p), p.outer); // m.cov[(y - m.y0) * m.w + (x - m.x0)]
 */
export function coverage(prim: Primitive, outer: readonly [number, number, number, number], ss = 5): Mask {
  const [x0, y0, x1, y1] = outer;
  const w = x1 - x0, h = y1 - y0;
  const cov = new Float32Array(w * h);
  const { inside, edge } = predicates(prim);
  const inv = 1 / (ss * ss);
  for (let py = 0; py < h; py++)
    for (let px = 0; px < w; px++) {
      const cx = x0 + px + 0.5, cy = y0 + py + 0.5;
      if (edge(cx, cy) > 0.75) {
        cov[py * w + px] = inside(cx, cy) ? 1 : 0;
        continue;
      }
      let n = 0;
      for (let sy = 0; sy < ss; sy++)
        for (let sx = 0; sx < ss; sx++) if (inside(x0 + px + (sx + 0.5) / ss, y0 + py + (sy + 0.5) / ss)) n++;
      cov[py * w + px] = n * inv;
    }
  return { x0, y0, w, h, cov };
}

/** Tight box [x0, y0, x1, y1] (exclusive ends) of the pixels with coverage ≥ DRAWN_COVERAGE. */
export function drawnBox(m: Mask): [number, number, number, number] {
  let bx0 = Infinity, by0 = Infinity, bx1 = -Infinity, by1 = -Infinity;
  for (let y = 0; y < m.h; y++)
    for (let x = 0; x < m.w; x++)
      if (m.cov[y * m.w + x]! >= DRAWN_COVERAGE) {
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
        if (y < by0) by0 = y;
        if (y > by1) by1 = y;
      }
  if (bx0 === Infinity) throw new Error(`internal: object at [${m.x0}, ${m.y0}] draws no pixel`);
  return [m.x0 + bx0, m.y0 + by0, m.x0 + bx1 + 1, m.y0 + by1 + 1];
}
