// Hand-built PNG files for the decoder tests: exact control over IHDR fields (huge or zero dimensions,
// 16-bit samples) with correct CRCs, which no encoder would produce.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** IHDR payload. colorType: 0 grey, 2 RGB, 6 RGBA. */
export function ihdr(width: number, height: number, bitDepth: number, colorType: number): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  d.set([bitDepth, colorType, 0, 0, 0], 8);
  return d;
}

export function png(header: Uint8Array, idat: Uint8Array): Uint8Array {
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/** A 16-bit RGB (colorType 2) or grey (0) PNG from big-endian-to-be samples, filter 0 on every row. */
export function png16(width: number, height: number, channels: 1 | 3, samples: readonly number[]): Uint8Array {
  const rowBytes = 1 + 2 * channels * width;
  const raw = new Uint8Array(rowBytes * height);
  const dv = new DataView(raw.buffer);
  for (let y = 0; y < height; y++)
    for (let i = 0; i < channels * width; i++) dv.setUint16(y * rowBytes + 1 + 2 * i, samples[y * channels * width + i]!);
  return png(ihdr(width, height, 16, channels === 3 ? 2 : 0), deflateSync(raw));
}
