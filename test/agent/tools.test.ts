import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageTools, drawMarker } from '../../src/agent/tools/image-tools.ts';
import { ToolRegistry, type AgentTool, type ToolResult } from '../../src/agent/tools.ts';
import { printable } from '../../src/agent/display.ts';
import { solidImage, type RGBImage } from '../../src/image/index.ts';
import { ConfigError } from '../../src/errors.ts';

/** 200×100: left half red, right half blue, a green 10×10 square at (150..159, 40..49). */
function scene(): RGBImage {
  const img = solidImage(200, 100, [220, 30, 30]);
  for (let y = 0; y < 100; y++) for (let x = 100; x < 200; x++) img.data.set([30, 30, 220], 3 * (y * 200 + x));
  for (let y = 40; y < 50; y++) for (let x = 150; x < 160; x++) img.data.set([30, 200, 30], 3 * (y * 200 + x));
  return img;
}
const px = (img: RGBImage, x: number, y: number) => Array.from(img.data.subarray(3 * (y * img.width + x), 3 * (y * img.width + x) + 3));
const tools = Object.fromEntries(imageTools().map((t) => [t.name, t])) as Record<string, AgentTool>;
const run = (name: string, args: Record<string, unknown>, images = [scene()]): Promise<ToolResult> =>
  tools[name]!.run(args, { images, signal: new AbortController().signal });
const image = (r: ToolResult): RGBImage => {
  const c = r.content.find((p) => p.type === 'image');
  assert.ok(c && c.type === 'image');
  return c.image;
};

test('click returns a new image with a visible marker at the point; the input is untouched', async () => {
  const src = scene();
  const r = await run('click', { x: 500, y: 500 }, [src]);
  const out = image(r);
  assert.equal(out.width, 200);
  assert.equal(out.height, 100);
  assert.match((r.content[0] as { text: string }).text, /pixel \(100, 50\)/);
  assert.deepEqual(px(out, 100, 50), [255, 0, 255]); // centre dot
  const changed = out.data.reduce((n, v, i) => n + (v !== src.data[i] ? 1 : 0), 0);
  assert.ok(changed > 30, `marker changed only ${changed} channel values`);
  assert.deepEqual(px(src, 100, 50), [30, 30, 220]);
  assert.deepEqual(px(out, 5, 5), px(src, 5, 5)); // far away: unchanged
  // the corner is a valid click too
  assert.deepEqual(px(drawMarker(src, 199, 99), 199, 99), [255, 0, 255]);
});

test('crop returns the region enlarged to fill the frame', async () => {
  // the green square is x 750..800, y 400..500 on the 0-1000 grid
  const out = image(await run('crop', { x0: 750, y0: 400, x1: 800, y1: 500 }));
  assert.equal(out.width, 100); // 10×10 region scaled ×10 (limited by the height)
  assert.equal(out.height, 100);
  assert.deepEqual(px(out, 50, 50), [30, 200, 30]);
  const whole = image(await run('crop', { x0: 0, y0: 0, x1: 1000, y1: 1000 }));
  assert.deepEqual([whole.width, whole.height], [200, 100]);
  const bad = await run('crop', { x0: 500, y0: 0, x1: 400, y1: 100 });
  assert.equal(bad.isError, true);
  assert.match((bad.content[0] as { text: string }).text, /empty box/);
});

test('zoom returns a region 1/factor of the image around the point, at the original size', async () => {
  const out = image(await run('zoom', { x: 775, y: 450, factor: 4 }));
  assert.deepEqual([out.width, out.height], [200, 100]);
  assert.deepEqual(px(out, 100, 50), [30, 200, 30]); // the green square is in the middle
  // near the edge the window is clamped inside the image
  const edge = image(await run('zoom', { x: 0, y: 0, factor: 2 }));
  assert.deepEqual(px(edge, 10, 10), [220, 30, 30]);
  await assert.rejects(run('zoom', { x: 0, y: 0, factor: 2 }, []), /no image/);
});

test('registry: names, schemas and duplicates are checked', () => {
  const reg = new ToolRegistry(imageTools());
  assert.deepEqual(reg.list().map((t) => t.name), ['click', 'crop', 'zoom']);
  assert.throws(() => reg.register(imageTools()[0]!), /twice/);
  assert.throws(() => reg.register({ ...imageTools()[0]!, name: 'bad name' }), ConfigError);
  assert.throws(() => reg.register({ ...imageTools()[0]!, name: 'x', parameters: { type: 'string' } as never }), /object/);
  assert.ok(Object.isFrozen(reg.get('click')));
});

test('printable shows control characters and bidi overrides instead of sending them to the terminal', () => {
  assert.equal(printable('a\x1b[2Jb\tc\n'), 'a\\x1b[2Jb\tc\n');
  assert.equal(printable('\u202eevil'), '\\u202eevil');
  assert.equal(printable('\x9b31m'), '\\x9b31m');
});
