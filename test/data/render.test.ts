// Both renderers put every object where the metadata says: the tight box of pixels that moved at least a
// quarter of the way from the background to the object's colour equals the metadata box (± tolerance).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { Rng } from '../../src/tensor/rng.ts';
import { sampleScene, type Scene, type SceneObject } from '../../src/data/scene.ts';
import { encodePng, renderScene } from '../../src/data/render.ts';
import { renderSceneSvg, sceneSvg, svgTextRenders } from '../../src/data/render-svg.ts';
import type { RGBImage } from '../../src/image/image.ts';

/** Drawn box of `o` found by scanning `img` (scaled by k) around the metadata box; offsets per edge. */
function scanBox(img: RGBImage, scene: Scene, o: SceneObject, k: number, pad = 2): number[] {
  const bg = scene.background.rgb;
  const d = [0, 1, 2].map((i) => o.rgb[i]! - bg[i]!);
  const n2 = d.reduce((a, v) => a + v * v, 0);
  const want = o.box.map((v) => v * k);
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let y = Math.max(0, Math.floor(want[1]!) - pad); y < Math.min(img.height, Math.ceil(want[3]!) + pad); y++)
    for (let x = Math.max(0, Math.floor(want[0]!) - pad); x < Math.min(img.width, Math.ceil(want[2]!) + pad); x++) {
      const p = 3 * (y * img.width + x);
      let dot = 0;
      for (let c = 0; c < 3; c++) dot += (img.data[p + c]! - bg[c]!) * d[c]!;
      if (dot / n2 >= 0.25) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x + 1), Math.max(y1, y + 1)];
    }
  return [x0, y0, x1, y1].map((v, i) => v - want[i]!);
}

function checkBoxes(img: RGBImage, scene: Scene, tol: number, what: string): void {
  const k = img.width / scene.width;
  for (const o of scene.objects) {
    const err = scanBox(img, scene, o, k);
    assert.ok(err.every((e) => Math.abs(e) <= tol), `${what}: ${o.shape}${o.digit ?? ''} box ${o.box} (×${k}) off by ${err}`);
  }
}

const scenes = (seed: number, n: number, size = 128): Scene[] => {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => sampleScene(rng, { size, digitProb: 0.6 }));
};

describe('renderers: boxes match drawn pixels', () => {
  test('TS rasterizer: exact on clean images, within 2 px under blur and noise', () => {
    for (const s of scenes(1, 120)) checkBoxes(renderScene(s, { clean: true }), s, 0, 'ts');
    for (const s of scenes(2, 60)) checkBoxes(renderScene({ ...s, noise: { sigma: 0.03, blur: true, seed: 5 } }), s, 2, 'ts noisy');
  });

  test('TS rasterizer at 96 and 320 px', () => {
    for (const size of [96, 320]) for (const s of scenes(3, 20, size)) checkBoxes(renderScene(s, { clean: true }), s, 0, `ts ${size}`);
  });

  test('SVG/librsvg: font digits and segment digits, within 1 px', async () => {
    for (const s of scenes(4, 80)) {
      checkBoxes(await renderSceneSvg(s, { clean: true }), s, 1, 'svg');
      checkBoxes(await renderSceneSvg(s, { clean: true, digits: 'segments' }), s, 2, 'svg segments');
    }
  });

  test('SVG/librsvg scaled to 96, 256 and 512 px (boxes scale; tolerance 1 px per scene px)', async () => {
    for (const s of scenes(5, 15)) {
      for (const size of [96, 256, 512]) {
        const img = await renderSceneSvg(s, { size, clean: true });
        assert.equal(img.width, size);
        checkBoxes(img, s, Math.max(1, Math.ceil(size / 128)), `svg ${size}`);
      }
      checkBoxes(await renderSceneSvg(s, { noise: { sigma: 0.02, blur: true } }), s, 2, 'svg noisy');
    }
  });

  test('digits in SVG are text when librsvg renders fonts here, paths otherwise', async () => {
    const s = scenes(6, 40).find((x) => x.objects.some((o) => o.shape === 'digit'))!;
    const svg = await sceneSvg(s);
    assert.equal(svg.includes('<text'), await svgTextRenders());
    assert.ok((await sceneSvg(s, { digits: 'segments' })).includes('<polyline'));
  });

  test('the two renderers differ in pixels (independent anti-aliasing) but agree on content', async () => {
    const [s] = scenes(7, 1);
    const a = renderScene(s!, { clean: true }), b = await renderSceneSvg(s!, { clean: true });
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff += a.data[i] !== b.data[i] ? 1 : 0;
    assert.ok(diff > 0);
  });
});

describe('PNG output', () => {
  test('same scene → identical PNG bytes; decodes back to the same pixels', async () => {
    const [s] = scenes(8, 1);
    const p1 = await encodePng(renderScene(s!)), p2 = await encodePng(renderScene(sampleScene(new Rng(8), { size: 128, digitProb: 0.6 })));
    assert.deepEqual(p1, p2);
    const { data, info } = await sharp(p1).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 3);
    assert.deepEqual(new Uint8Array(data), renderScene(s!).data);
  });
});
