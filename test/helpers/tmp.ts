/**
 * Temporary directories for tests, removed when the test file's process exits (`node --test` runs each file
 * in a process of its own), so a suite run leaves nothing behind in the OS temp dir — a failed test included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory `<tmp>/<prefix>XXXXXX`, deleted with everything in it when this process exits. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(d);
  return d;
}
