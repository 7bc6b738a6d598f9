/** Run the `vista` CLI from source (tsx) and capture its output. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export function vista(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/run.ts'), ...args], {
    cwd: ROOT, encoding: 'utf8', input, env: { ...process.env, VISTA_THREADS: '1' },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
