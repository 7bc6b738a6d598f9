// decodeImage / parseDataUrl: fixtures are made in memory with sharp (encoders) or by hand (png-bytes.ts, for
// headers no encoder writes), so every expectation is known exactly. Covers the four accepted formats, the
// colour conversions, EXIF orientation, and every rejection path being a typed InputError.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { InputError } from '../../src/errors.ts';
import { decodeImage, parseDataUrl } from '../../src/image/decode.ts';
import type { RGBImage } from '../../src/image/image.ts';
import { chunk, ihdr, png, png16, PNG_SIGNATURE } from './png-bytes.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'vista-image-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Px = readonly [number, number, number];
const px = (img: RGBImage, x: number, y: number): number[] => [...img.data.subarray(3 * (y * img.width + x), 3 * (y * img.width + x) + 3)];
const near = (got: number[], want: Px, tol: number, what: string): void =>
  assert.ok(got.every((v, i) => Math.abs(v - want[i]!) <= tol), `${what}: got [${got}], want [${want}] ±${tol}`);

/** w×h raw image whose pixel (x, y) is colour(x, y). */
function raw(w: number, h: number, colour: (x: number, y: number) => Px, channels: 3 | 4 = 3): Buffer {
  const b = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(colour(x, y).slice(0, channels), (y * w + x) * channels);
  return b;
}
const enc = (w: number, h: number, colour: (x: number, y: number) => Px): Sharp => sharp(raw(w, h, colour), { raw: { width: w, height: h, channels: 3 } });
/** 6×4 test card: distinct, PNG/WebP-lossless-exact colours per pixel */
const card = (x: number, y: number): Px => [x * 40, y * 60, (x * 7 + y * 31) % 256];
const halves = (x: number, _y: number, w: number): Px => (x < w / 2 ? [220, 30, 30] : [30, 60, 220]);

async function rejects(input: Uint8Array | string, pattern: RegExp, opts?: Parameters<typeof decodeImage>[1]): Promise<void> {
  await assert.rejects(decodeImage(input, opts), (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('decodeImage: accepted formats', () => {
  it('PNG (lossless) round-trips every pixel, from bytes and from a path', async () => {
    const bytes = await enc(6, 4, card).png().toBuffer();
    const img = await decodeImage(bytes);
    assert.equal(img.width, 6);
    assert.equal(img.height, 4);
    assert.ok(img.data instanceof Uint8Array);
    assert.deepEqual([...img.data], [...raw(6, 4, card)]);
    const file = path.join(tmp, 'card.png');
    writeFileSync(file, bytes);
    assert.deepEqual(await decodeImage(file), img);
  });

  it('WebP lossless is exact; WebP lossy and JPEG are close', async () => {
    const lossless = await decodeImage(await enc(6, 4, card).webp({ lossless: true }).toBuffer());
    assert.deepEqual([...lossless.data], [...raw(6, 4, card)]);
    const solid = (): Sharp => enc(16, 16, () => [200, 100, 50]);
    for (const bytes of [await solid().webp({ quality: 90 }).toBuffer(), await solid().jpeg({ quality: 95 }).toBuffer()]) {
      const img = await decodeImage(bytes);
      assert.deepEqual([img.width, img.height], [16, 16]);
      near(px(img, 8, 8), [200, 100, 50], 4, 'lossy centre');
    }
  });

  it('GIF: a still image, and only the first frame of an animation', async () => {
    const still = await decodeImage(await enc(4, 4, (x) => (x < 2 ? [255, 0, 0] : [0, 0, 255])).gif().toBuffer());
    assert.deepEqual([px(still, 0, 0), px(still, 3, 3)], [[255, 0, 0], [0, 0, 255]]);
    // two 4×3 frames stacked: red then blue
    const frames = raw(4, 6, (_x, y) => (y < 3 ? [255, 0, 0, 255] : [0, 0, 255, 255]) as unknown as Px, 4);
    const anim = await sharp(frames, { raw: { width: 4, height: 6, channels: 4, pageHeight: 3 } }).gif().toBuffer();
    assert.equal((await sharp(anim).metadata()).pages, 2, 'fixture is a 2-frame GIF');
    const img = await decodeImage(anim);
    assert.deepEqual([img.width, img.height], [4, 3]);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) assert.deepEqual(px(img, x, y), [255, 0, 0]);
  });
});

describe('decodeImage: colour conversions and orientation', () => {
  it('transparent pixels become white; opaque keep their colour; partial alpha blends onto white', async () => {
    const rgba = Buffer.from([0, 0, 0, 0, 10, 200, 30, 255, 0, 0, 0, 128]);
    const img = await decodeImage(await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } }).png().toBuffer());
    assert.deepEqual(px(img, 0, 0), [255, 255, 255]);
    assert.deepEqual(px(img, 1, 0), [10, 200, 30]);
    near(px(img, 2, 0), [127, 127, 127], 1, 'black at alpha 128 over white'); // 255·(1 − 128/255)
  });

  it('greyscale (8-bit, 1 channel) and grey+alpha expand to equal R=G=B', async () => {
    const grey = await sharp(Buffer.from([0, 50, 100, 150, 200, 250]), { raw: { width: 3, height: 2, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    assert.equal(grey[25], 0, 'fixture has PNG colour type 0 (greyscale)');
    const img = await decodeImage(grey);
    assert.deepEqual([...img.data], [0, 50, 100, 150, 200, 250].flatMap((v) => [v, v, v]));
    const ga = await sharp(Buffer.from([90, 255, 90, 0]), { raw: { width: 2, height: 1, channels: 2 } }).png().toBuffer();
    assert.deepEqual([...(await decodeImage(ga)).data], [90, 90, 90, 255, 255, 255]);
  });

  it('16-bit RGB and 16-bit grey PNGs become 8-bit (v ≈ v16 / 257)', async () => {
    const samples = [0, 65535, 0x8080, 0x1234, 0xfedc, 0x7fff];
    const rgb = await decodeImage(png16(2, 1, 3, samples));
    assert.deepEqual([rgb.width, rgb.height], [2, 1]);
    rgb.data.forEach((v, i) => assert.ok(Math.abs(v - samples[i]! / 257) <= 1, `sample ${i}: ${v} vs ${samples[i]! / 257}`));
    const grey = await decodeImage(png16(3, 1, 1, [0, 0x8080, 65535]));
    assert.deepEqual([...grey.data], [0, 0, 0, 128, 128, 128, 255, 255, 255]);
  });

  it('CMYK JPEG converts to sRGB', async () => {
    const cmyk = await enc(16, 16, () => [220, 40, 40]).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk', 'fixture is CMYK');
    // CMYK → sRGB goes through ICC profiles and is not an exact inverse of sharp's sRGB → CMYK: check the hue
    const [r, g, b] = px(await decodeImage(cmyk), 8, 8) as [number, number, number];
    assert.ok(r > 190 && g < 70 && b < 70, `CMYK red decoded to [${r}, ${g}, ${b}]`);
  });

  it('EXIF orientation 6 (rotate 90° clockwise): width/height swap, left half ends up on top', async () => {
    const bytes = await enc(32, 16, (x) => halves(x, 0, 32)).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.width, meta.height, meta.orientation], [32, 16, 6], 'fixture stores 32×16 with orientation 6');
    const img = await decodeImage(bytes);
    assert.deepEqual([img.width, img.height], [16, 32]);
    near(px(img, 8, 6), [220, 30, 30], 12, 'top (was left)');
    near(px(img, 8, 25), [30, 60, 220], 12, 'bottom (was right)');
  });
});

describe('decodeImage: rejections are InputErrors', () => {
  it('missing file names the path; a directory is refused', async () => {
    const missing = path.join(tmp, 'no-such-image.png');
    await rejects(missing, new RegExp(`not found: ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    await rejects(tmp, /directory/);
  });

  it('empty input, as bytes and as an empty file', async () => {
    await rejects(new Uint8Array(0), /empty image input/);
    const file = path.join(tmp, 'empty.png');
    writeFileSync(file, new Uint8Array(0));
    await rejects(file, /empty image input.*empty\.png/);
  });

  it('corrupt data: truncated PNG and JPEG, valid PNG header with a garbage body, random bytes', async () => {
    const good = await enc(32, 32, card).png().toBuffer();
    await rejects(good.subarray(0, good.length - 30), /corrupt or truncated PNG/);
    await rejects(good.subarray(0, 20), /corrupt or truncated PNG/);
    const jpeg = await enc(64, 64, card).jpeg().toBuffer();
    await rejects(jpeg.subarray(0, jpeg.length >> 1), /corrupt or truncated JPEG/);
    const garbage = Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr(8, 8, 8, 2)), chunk('IDAT', Buffer.from('this is not a zlib stream at all!')), chunk('IEND', new Uint8Array(0))]);
    await rejects(garbage, /corrupt or truncated PNG/);
    let s = 12345;
    const random = Uint8Array.from({ length: 256 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    await rejects(random, /unrecognised image data \(first bytes: [0-9a-f ]+\); use PNG, JPEG, WebP or GIF/);
  });

  it('unsupported formats are named before any decoder runs', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    await rejects(Buffer.from(svg), /unsupported image format SVG; use PNG, JPEG, WebP or GIF/);
    await rejects(Buffer.from(`\uFEFF  <?xml version="1.0"?>\n${svg}`), /format SVG/);
    await rejects(await enc(4, 4, card).tiff().toBuffer(), /unsupported image format TIFF/);
    await rejects(Buffer.from('BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00', 'latin1'), /unsupported image format BMP/);
    await rejects(Buffer.from('%PDF-1.7\n%âãÏÓ\n'), /unsupported image format PDF/);
    await rejects(await enc(8, 8, card).avif().toBuffer(), /unsupported image format AVIF/);
    await rejects(Buffer.from('\x00\x00\x00\x18ftypheic\x00\x00\x00\x00', 'latin1'), /unsupported image format HEIF/);
  });

  it('zero-size images (IHDR 0×N)', async () => {
    await rejects(png(ihdr(0, 5, 8, 2), deflateSync(new Uint8Array(0))), /PNG image has zero size \(0x5\)/);
    await rejects(png(ihdr(7, 0, 8, 0), deflateSync(new Uint8Array(0))), /PNG image has zero size \(7x0\)/);
  });

  it('a decompression bomb (PNG declaring 100000×100000) is refused from its header, fast', async () => {
    // one filter byte and a few zero pixels, deflated: a real bomb would inflate to 30 GB of zeros
    const bomb = png(ihdr(100000, 100000, 8, 2), deflateSync(new Uint8Array(1024)));
    assert.ok(bomb.length < 200);
    const t0 = performance.now();
    await rejects(bomb, /PNG image is 100000x100000 = 10000000000 pixels, above the limit of 40000000/);
    assert.ok(performance.now() - t0 < 1000, 'refused without decoding');
    // a GIF declaring 65535×65535 takes the other path: dimensions from sharp's header-only metadata()
    const le16 = [0xff, 0xff];
    const gifBomb = Uint8Array.of(...Buffer.from('GIF89a'), ...le16, ...le16, 0, 0, 0, 0x2c, 0, 0, 0, 0, ...le16, ...le16, 0, 2, 2, 0x4c, 0x01, 0, 0x3b);
    const t1 = performance.now();
    await rejects(gifBomb, /GIF image is 65535x65535 = 4294836225 pixels, above the limit/);
    assert.ok(performance.now() - t1 < 1000, 'GIF refused without decoding');
    // also under a caller-set limit, and for a well-formed image just over it
    await rejects(await enc(10, 10, card).png().toBuffer(), /10x10 = 100 pixels, above the limit of 99/, { maxPixels: 99 });
    assert.equal((await decodeImage(await enc(10, 10, card).png().toBuffer(), { maxPixels: 100 })).width, 10);
  });

  it('maxBytes refuses large buffers, and large files before reading them', async () => {
    const bytes = await enc(6, 4, card).png().toBuffer();
    await rejects(bytes, new RegExp(`${bytes.length} bytes, above the limit of 10`), { maxBytes: 10 });
    const file = path.join(tmp, 'big.png');
    writeFileSync(file, bytes);
    await rejects(file, /image file is \d+ bytes, above the limit of 10 \(.*big\.png\)/, { maxBytes: 10 });
  });

  it('fuzz: truncated and bit-flipped files of every format resolve to a valid image or an InputError', async () => {
    const base = enc(24, 16, card);
    const files = [
      await base.clone().png().toBuffer(),
      await base.clone().jpeg().toBuffer(),
      await base.clone().webp().toBuffer(),
      await base.clone().gif().toBuffer(),
    ];
    let s = 7;
    const rand = (n: number): number => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % n;
    let ok = 0, refused = 0;
    for (const file of files) {
      for (let k = 0; k < 40; k++) {
        const b = Uint8Array.from(file.subarray(0, k % 2 ? rand(file.length) : file.length));
        for (let f = 0; f < 1 + rand(4) && b.length; f++) b[rand(b.length)]! ^= 1 << rand(8);
        try {
          const img = await decodeImage(b);
          assert.equal(img.data.length, 3 * img.width * img.height);
          ok++;
        } catch (e) {
          assert.ok(e instanceof InputError, `untyped error escaped: ${(e as Error).name}: ${(e as Error).message}`);
          refused++;
        }
      }
    }
    assert.ok(refused > 0 && ok + refused === 160);
  });
});

describe('parseDataUrl', () => {
  it('decodes base64 image data URLs (case-insensitive type, whitespace, extra parameters)', async () => {
    const bytes = await enc(6, 4, card).png().toBuffer();
    const b64 = bytes.toString('base64');
    const { mime, bytes: got } = parseDataUrl(`data:image/png;base64,${b64}`);
    assert.equal(mime, 'image/png');
    assert.deepEqual(Buffer.from(got), bytes);
    assert.deepEqual((await decodeImage(got)).data, (await decodeImage(bytes)).data);
    const loose = parseDataUrl(`  data:IMAGE/PNG;name=x.png;BASE64,${b64.slice(0, 40)}\n${b64.slice(40)}  `);
    assert.equal(loose.mime, 'image/png');
    assert.deepEqual(Buffer.from(loose.bytes), bytes);
    assert.deepEqual([...parseDataUrl('data:image/gif;base64,R0lG').bytes], [0x47, 0x49, 0x46]);
  });

  it('rejects malformed URLs with InputErrors', () => {
    const cases: [string, RegExp][] = [
      ['https://example.com/cat.png', /not a data URL/],
      ['data:image/png;base64', /not a data URL/],
      ['data:text/plain;base64,aGVsbG8=', /image media type.*"text\/plain"/],
      ['data:;base64,aGVsbG8=', /image media type/],
      ['data:image/png,%89PNG', /must be base64-encoded/],
      ['data:image/png;base64,', /has no data/],
      ['data:image/png;base64,ab$d', /invalid base64/],
      ['data:image/png;base64,abcde', /invalid base64/],
      ['data:image/png;base64,ab=c', /invalid base64/],
    ];
    for (const [url, pattern] of cases)
      assert.throws(() => parseDataUrl(url), (e: unknown) => e instanceof InputError && pattern.test(e.message), url);
  });
});
