/** What every benchmark suite shares: the figure record, logging to stderr, paths and the median. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  name: string;
  threads: number;
  value: number;
  unit: string;
  ref: { name: string; value: number } | null;
}

export const log = (...a: unknown[]): void => console.error(...a);
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = process.env.VISTA_SHARED ?? path.resolve(root, '..', 'shared');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
