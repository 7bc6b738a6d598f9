// Preprocessing: llama.cpp's resize kernels checked against hand-computed pixels (gguf-multimodal.md §5.0
// formulas worked out in the comments) and against an independent reading of the spec (float32 and real
// arithmetic) on random images; letterbox / pad geometry; normalisation values and the planar (B, 3, H, W) layout.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, ShapeError } from '../../src/errors.ts';
import type { RGB, RGBImage } from '../../src/image/image.ts';
import {
  contentBox, letterbox, letterboxGeometry, meanPadColor, padToSquare, prepareImage, preprocessForModel, resize,
  stretch, toTensor, type PreprocessOptions, type ResizeAlgo,
} from '../../src/image/preprocess.ts';

const CLIP = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] } as const;

/** Image whose channels are given as planes (arrays of w·h values, row-major). */
function fromPlanes(w: number, h: number, r: number[], g: number[], b: number[]): RGBImage {
  const data = new Uint8Array(3 * w * h);
  for (let i = 0; i < w * h; i++) data.set([r[i]!, g[i]!, b[i]!], 3 * i);
  return { width: w, height: h, data };
}
const plane = (img: RGBImage, c: number): number[] => Array.from({ length: img.width * img.height }, (_, i) => img.data[3 * i + c]!);
const solid = (w: number, h: number, c: RGB): RGBImage => fromPlanes(w, h, Array(w * h).fill(c[0]), Array(w * h).fill(c[1]), Array(w * h).fill(c[2]));
function randomImage(w: number, h: number, seed: number): RGBImage {
  let s = seed;
  return { width: w, height: h, data: Uint8Array.from({ length: 3 * w * h }, () => ((s = (s * 1664525 + 1013904223) >>> 0) >>> 24)) };
}

/**
 * Rounding of each arithmetic result: `exact` keeps doubles (the spec read as real arithmetic), `f32` stores
 * through a Float32Array, i.e. C++ `float` semantics as upstream computes. Deliberately no code shared with src/.
 */
type Rounding = (v: number) => number;
const exact: Rounding = (v) => v;
const f32buf = new Float32Array(1);
const f32: Rounding = (v) => ((f32buf[0] = v), f32buf[0]);

/** The spec's BILINEAR: `ratio = (w−1)/Tw`, `x0 = min(⌊ratio·x⌋, w−2)`, lerp `s + (e − s)·t`, truncate. */
function refBilinear(img: RGBImage, tw: number, th: number, r: Rounding = exact): number[] {
  const { width: w, height: h } = img;
  const at = (x: number, y: number, c: number): number => img.data[3 * (y * w + x) + c]!;
  const lerp = (a: number, b: number, t: number): number => r(a + r(r(b - a) * t));
  const out: number[] = [];
  for (let y = 0; y < th; y++)
    for (let x = 0; x < tw; x++) {
      const px = r(r((w - 1) / tw) * x), py = r(r((h - 1) / th) * y);
      const x0 = Math.max(0, Math.min(Math.floor(px), w - 2)), y0 = Math.max(0, Math.min(Math.floor(py), h - 2));
      const x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
      const fx = r(px - x0), fy = r(py - y0);
      for (let c = 0; c < 3; c++)
        out.push(Math.floor(lerp(lerp(at(x0, y0, c), at(x1, y0, c), fx), lerp(at(x0, y1, c), at(x1, y1, c), fx), fy)));
    }
  return out;
}

/** The spec's BICUBIC: `tx = w/Tw`, cubic through p[−1..2] (edge-clamped) along x, then along y; round, clamp. */
function refBicubic(img: RGBImage, tw: number, th: number, r: Rounding = exact): number[] {
  const { width: w, height: h } = img;
  const cl = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  const at = (x: number, y: number, c: number): number => img.data[3 * (cl(y, h - 1) * w + cl(x, w - 1)) + c]!;
  const cub = (p: number[], t: number): number => {
    const [d0, d2, d3] = [r(p[0]! - p[1]!), r(p[2]! - p[1]!), r(p[3]! - p[1]!)];
    // upstream writes these with double literals: real arithmetic, one rounding on assignment
    const a1 = r(-d0 / 3 + d2 - d3 / 6), a2 = r(d0 / 2 + d2 / 2), a3 = r(-d0 / 6 - d2 / 2 + d3 / 6);
    let v = r(p[1]! + r(a1 * t));
    v = r(v + r(r(a2 * t) * t));
    return r(v + r(r(r(a3 * t) * t) * t));
  };
  const out: number[] = [];
  for (let i = 0; i < th; i++)
    for (let j = 0; j < tw; j++) {
      const sx = r(r(w / tw) * j), sy = r(r(h / th) * i);
      const x = Math.floor(sx), y = Math.floor(sy);
      for (let c = 0; c < 3; c++) {
        const rows = [-1, 0, 1, 2].map((k) => cub([-1, 0, 1, 2].map((m) => at(x + m, y + k, c)), r(sx - x)));
        out.push(Math.min(255, Math.max(0, Math.round(cub(rows, r(sy - y))))));
      }
    }
  return out;
}

describe('resize: llama.cpp kernels, hand-computed', () => {
  it('bilinear 3×3 → 4×4: ratio (w−1)/Tw = 0.5, lerp x then y, truncation', () => {
    // R plane; G = R reversed; B constant. px = py ∈ {0, .5, 1, 1.5} so x0 ∈ {0, 0, 1, 1}, f ∈ {0, .5}.
    const R = [0, 10, 20, 100, 110, 121, 200, 215, 255];
    const img = fromPlanes(3, 3, R, [...R].reverse(), Array(9).fill(7));
    const out = resize(img, 4, 4, 'bilinear');
    assert.deepEqual([out.width, out.height], [4, 4]);
    assert.deepEqual(plane(out, 0), [
      0, 5, 10, 15, //             row 0: 0, (0+10)/2, 10, (10+20)/2
      50, 55, 60, 65, //           (0+100)/2, (5+105)/2, (10+110)/2, (15 + 115.5)/2 = 65.25 → 65
      100, 105, 110, 115, //       row 1: …, (110+121)/2 = 115.5 → 115 (truncated, not rounded)
      150, 156, 162, 175, //       (105+207.5)/2 = 156.25, (110+215)/2 = 162.5 → 162, (115.5+235)/2 = 175.25
    ]);
    assert.deepEqual(plane(out, 1), refBilinear(img, 4, 4, f32).filter((_, i) => i % 3 === 1));
    assert.deepEqual(plane(out, 2), Array(16).fill(7));
  });

  it('bicubic 4×1 → 8×1: tx = 0.5, cubic through p[−1..2] at t = ½, round half away from zero', () => {
    // t = ½: v = p0 + a1/2 + a2/4 + a3/8, a1 = −d0/3 + d2 − d3/6, a2 = (d0 + d2)/2, a3 = −d0/6 − d2/2 + d3/6
    const row = [0, 60, 120, 240];
    const img = fromPlanes(4, 1, row, row.map((v) => 255 - v), row.map(() => 9));
    const out = resize(img, 8, 1, 'bicubic');
    assert.deepEqual(plane(out, 0), [
      0, // j=0: x=0, t=0
      26, // j=1: p=(0,0,60,120): a1=40 a2=30 a3=−10 → 20 + 7.5 − 1.25 = 26.25
      60,
      86, // j=3: p=(0,60,120,240): a1=50 a2=0 a3=10 → 60 + 25 + 1.25 = 86.25
      120,
      184, // j=5: p=(60,120,240,240): a1=120 a2=30 a3=−30 → 120 + 60 + 7.5 − 3.75 = 183.75
      240,
      248, // j=7: p=(120,240,240,240): a1=40 a2=−60 a3=20 → 240 + 20 − 15 + 2.5 = 247.5 → 248
    ]);
    assert.deepEqual(plane(out, 1), refBicubic(img, 8, 1, f32).filter((_, i) => i % 3 === 1));
    assert.deepEqual(plane(out, 2), Array(8).fill(9));
  });

  it('bicubic 4×4 → 3×3 (tx = 4/3, a float): matches the spec reference', () => {
    const img = fromPlanes(4, 4,
      [0, 30, 60, 90, 20, 50, 80, 110, 40, 70, 100, 130, 60, 90, 120, 150], // R = 30x + 20y: linear, so cubic = exact
      [255, 0, 255, 0, 0, 255, 0, 255, 255, 0, 255, 0, 0, 255, 0, 255], // G: checkerboard (overshoot, clamped)
      Array(16).fill(200));
    const out = resize(img, 3, 3, 'bicubic');
    // R is linear, and the cubic reproduces linear data exactly — except where the x+2 / y+2 tap is clamped:
    // (j=1, i=0): x=1, t=1/3, p=(0,30,60,90) linear → 30 + 30/3 = 40
    // (j=2, i=0): x=2, t=2/3, p=(30,60,90,90): a1=35 a2=0 a3=−5 → 60 + 35·2/3 − 5·8/27 = 81.85 → 82
    // (j=0, i=2): same along y with p=(20,40,60,60): 40 + (70/3)·2/3 − (10/3)·8/27 = 54.57 → 55
    assert.deepEqual(plane(out, 0), [0, 40, 82, 27, 67, 109, 55, 95, 136]);
    assert.deepEqual([...out.data], refBicubic(img, 3, 3, f32));
    assert.ok([...out.data].every((v, i) => Math.abs(v - refBicubic(img, 3, 3)[i]!) <= 1));
  });

  it('on random images: equals the float32 spec reference exactly, and the real-arithmetic one within 1', () => {
    const sizes: [number, number, number, number][] = [[7, 5, 13, 11], [16, 16, 9, 9], [31, 12, 8, 20], [2, 2, 5, 3], [50, 40, 33, 47], [1, 1, 3, 2], [1, 6, 4, 4]];
    for (const algo of ['bilinear', 'bicubic'] as const)
      sizes.forEach(([w, h, tw, th], k) => {
        const img = randomImage(w, h, 100 + k);
        const got = [...resize(img, tw, th, algo).data];
        const ref = algo === 'bilinear' ? refBilinear : refBicubic;
        assert.deepEqual(got, ref(img, tw, th, f32), `${algo} ${w}x${h}→${tw}x${th}`);
        // float32 vs real arithmetic: values that are integers in exact arithmetic land a hair below in float,
        // and truncation (bilinear) turns that into −1 — why the port emulates float instead of using doubles
        const real = ref(img, tw, th, exact);
        assert.ok(got.every((v, i) => Math.abs(v - real[i]!) <= 1), `${algo} ${w}x${h}→${tw}x${th}: off by more than 1`);
      });
  });

  it('property: resizing a constant image gives the same constant (any size, both kernels)', () => {
    for (const algo of ['bilinear', 'bicubic'] as const)
      for (const [w, h, tw, th] of [[1, 1, 7, 3], [5, 3, 2, 9], [128, 96, 128, 128], [97, 300, 64, 64], [2, 200, 512, 1]]) {
        const c: RGB = [w % 256, (h * 37) % 256, 255];
        const out = resize(solid(w!, h!, c), tw!, th!, algo);
        assert.deepEqual([out.width, out.height], [tw, th]);
        for (let i = 0; i < out.data.length; i += 3) assert.deepEqual([...out.data.subarray(i, i + 3)], c, `${algo} ${w}x${h}→${tw}x${th}`);
      }
  });

  it('rejects bad sizes and algorithms', () => {
    const img = solid(2, 2, [1, 2, 3]);
    assert.throws(() => resize(img, 0, 3, 'bilinear'), ShapeError);
    assert.throws(() => resize(img, 2.5, 3, 'bicubic'), ShapeError);
    assert.throws(() => resize({ width: 2, height: 2, data: new Uint8Array(11) }, 3, 3, 'bilinear'), /needs 12 bytes, got 11/);
    assert.throws(() => resize(img, 3, 3, 'nearest' as ResizeAlgo), /unknown resize algorithm "nearest"/);
  });
});

describe('letterbox, stretch, padToSquare', () => {
  it('letterbox geometry: scale = min, ceil in float32, centred with integer division', () => {
    assert.deepEqual(letterboxGeometry(200, 100, 336, 336), { x: 0, y: 84, width: 336, height: 168 });
    assert.deepEqual(letterboxGeometry(100, 200, 336, 336), { x: 84, y: 0, width: 168, height: 336 });
    // 100·128/300 = 42.67 → ceil 43; (128 − 43)/2 = 42.5 → 42
    assert.deepEqual(letterboxGeometry(300, 100, 128, 128), { x: 0, y: 42, width: 128, height: 43 });
    // float32: 128/28 rounds up, so 21·scale lands just above 96 and ceil gives 97 (exact arithmetic: 96)
    assert.deepEqual(letterboxGeometry(21, 28, 128, 128), { x: 15, y: 0, width: 97, height: 128 });
    assert.deepEqual(letterboxGeometry(64, 64, 128, 128), { x: 0, y: 0, width: 128, height: 128 });
    assert.deepEqual(letterboxGeometry(600, 400, 300, 100), { x: 75, y: 0, width: 150, height: 100 });
  });

  it('letterbox pixels: pad colour around the resized image', () => {
    const out = letterbox(solid(4, 2, [200, 10, 20]), 8, 'bicubic', [1, 2, 3]);
    assert.deepEqual([out.width, out.height], [8, 8]);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) {
        const want = y >= 2 && y < 6 ? [200, 10, 20] : [1, 2, 3];
        assert.deepEqual([...out.data.subarray(3 * (y * 8 + x), 3 * (y * 8 + x) + 3)], want, `(${x}, ${y})`);
      }
    // the content is exactly resize(img, nw, nh) pasted at the offset
    const img = randomImage(6, 3, 5);
    const lb = letterbox(img, 12, 'bilinear', [0, 0, 0]);
    const inner = resize(img, 12, 6, 'bilinear');
    for (let y = 0; y < 6; y++) assert.deepEqual(lb.data.subarray(3 * (y + 3) * 12, 3 * (y + 4) * 12), inner.data.subarray(3 * y * 12, 3 * (y + 1) * 12));
  });

  it('stretch is resize to side×side', () => {
    const img = randomImage(9, 4, 3);
    assert.deepEqual(stretch(img, 6, 'bicubic'), resize(img, 6, 6, 'bicubic'));
  });

  it('padToSquare centres the image (offset rounded down) on the pad colour', () => {
    const wide = fromPlanes(4, 2, [1, 2, 3, 4, 5, 6, 7, 8], Array(8).fill(0), Array(8).fill(0));
    const sq = padToSquare(wide, [9, 9, 9]);
    assert.deepEqual([sq.width, sq.height], [4, 4]);
    assert.deepEqual(plane(sq, 0), [9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]);
    assert.deepEqual(plane(sq, 1), [9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9]);
    const tall = padToSquare(fromPlanes(2, 5, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Array(10).fill(0), Array(10).fill(0)), [0, 0, 0]);
    assert.deepEqual(plane(tall, 0), [0, 1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 5, 6, 0, 0, 0, 7, 8, 0, 0, 0, 9, 10, 0, 0]); // x offset ⌊3/2⌋ = 1
    const square = solid(3, 3, [5, 5, 5]);
    assert.equal(padToSquare(square, [0, 0, 0]), square);
    assert.throws(() => padToSquare(wide, [256, 0, 0]), ShapeError);
  });

  it("meanPadColor truncates mean·255 like LLaVA's expand2square: CLIP → (122, 116, 104)", () => {
    assert.deepEqual(meanPadColor(CLIP.mean), [122, 116, 104]);
    assert.deepEqual(meanPadColor([0.5, 0.5, 0.5]), [127, 127, 127]);
  });
});

describe('toTensor and preprocessForModel', () => {
  it('planar (B, 3, H, W) f32, channel order R, G, B, value (u8/255 − mean)/std', () => {
    const a = fromPlanes(2, 1, [0, 255], [10, 20], [128, 64]);
    const b = fromPlanes(2, 1, [51, 102], [153, 204], [255, 0]);
    const norm = { mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] };
    const t = toTensor([a, b], norm);
    assert.deepEqual(t.shape, [2, 3, 1, 2]);
    const got = Array.from(t.data.subarray(t.offset, t.offset + 12));
    const want = [a, b].flatMap((img) => [0, 1, 2].flatMap((c) => plane(img, c).map((u) => (u / 255 - norm.mean[c]!) / norm.std[c]!)));
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `element ${i}: ${v} vs ${want[i]}`));
    // spot values: R 0 → −1, R 255 → 1, B 0 with mean 0 std 2 → 0
    assert.equal(got[0], -1);
    assert.equal(got[1], 1);
    assert.equal(got[11], 0);
  });

  it('rejects mixed sizes, empty batches and bad mean/std', () => {
    assert.throws(() => toTensor([solid(2, 2, [0, 0, 0]), solid(3, 2, [0, 0, 0])], CLIP), /image 1 is 3x2 but image 0 is 2x2/);
    assert.throws(() => toTensor([], CLIP), ShapeError);
    assert.throws(() => toTensor([solid(1, 1, [0, 0, 0])], { mean: [0.5, 0.5], std: [1, 1, 1] }), ConfigError);
    assert.throws(() => toTensor([solid(1, 1, [0, 0, 0])], { mean: [0, 0, 0], std: [1, 0, 1] }), ConfigError);
  });

  const opts = (policy: PreprocessOptions['policy'], algo: ResizeAlgo = 'bicubic', imageSize = 128): PreprocessOptions => ({ imageSize, policy, algo, ...CLIP });

  it('accepts any size (96–512, non-square, even 1×1) under every policy and kernel', () => {
    for (const policy of ['stretch', 'letterbox', 'pad-mean'] as const)
      for (const algo of ['bilinear', 'bicubic'] as const)
        for (const [w, h] of [[96, 96], [256, 256], [512, 512], [300, 97], [97, 300], [1, 1], [1, 5]]) {
          const t = preprocessForModel(randomImage(w!, h!, w! * h!), opts(policy, algo));
          assert.deepEqual(t.shape, [1, 3, 128, 128]);
          assert.ok(t.data.subarray(t.offset, t.offset + t.size).every(Number.isFinite));
        }
  });

  it('pad-mean: a 128² image passes through untouched; a 200×100 image is padded with the mean colour (≈0)', () => {
    const img = randomImage(128, 128, 1);
    assert.deepEqual(preprocessForModel(img, opts('pad-mean')).data, toTensor([img], CLIP).data);
    const wide = solid(200, 100, [255, 0, 0]);
    const out = prepareImage(wide, opts('pad-mean'));
    const at = (x: number, y: number): number[] => [...out.data.subarray(3 * (y * 128 + x), 3 * (y * 128 + x) + 3)];
    assert.deepEqual(at(64, 0), [122, 116, 104]); // padded band: rows 0–31 (50/200 of 128)
    assert.deepEqual(at(64, 64), [255, 0, 0]);
    assert.deepEqual(at(64, 127), [122, 116, 104]);
    const t = preprocessForModel(wide, opts('pad-mean'));
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(t.data[t.offset + c * 128 * 128]!) < 0.02, 'pad normalises to ≈0');
    assert.deepEqual(contentBox(200, 100, opts('pad-mean')), { x: 0, y: 32, width: 128, height: 64 });
  });

  it('letterbox and stretch policies = the primitives; padColor overrides the mean colour', () => {
    const img = randomImage(30, 20, 9);
    assert.deepEqual(prepareImage(img, opts('stretch', 'bilinear')), stretch(img, 128, 'bilinear'));
    assert.deepEqual(prepareImage(img, opts('letterbox')), letterbox(img, 128, 'bicubic', [122, 116, 104]));
    assert.deepEqual(prepareImage(img, { ...opts('letterbox'), padColor: [0, 0, 0] }), letterbox(img, 128, 'bicubic', [0, 0, 0]));
    assert.deepEqual(contentBox(30, 20, opts('letterbox')), letterboxGeometry(30, 20, 128, 128));
    assert.deepEqual(contentBox(30, 20, opts('stretch')), { x: 0, y: 0, width: 128, height: 128 });
    assert.throws(() => prepareImage(img, opts('crop' as PreprocessOptions['policy'])), /unknown resize policy "crop"/);
  });
});
