/** What every benchmark suite shares: the figure record, logging to stderr, paths, options, the machine and the median. */
import os from 'node:os';
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

/** `--name N`: a positive integer option, or `dflt` when absent. */
export function flag(args: readonly string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be an integer ≥ 1`);
  return v;
}

/** The machine record of a suite's JSON line. */
export function machine(): { cpu: string; cores: number; node: string } {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), node: process.version };
}
