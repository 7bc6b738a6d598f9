/** Node file I/O used by the library: atomic writes (checkpoints) and checked reads (user-given paths). */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../errors.ts';

/**
 * Write `bytes` to `file` so that readers see either the old file or the complete new one, never a
 * partial write: write a temporary file in the same directory, fsync it, rename it over `file`, then
 * fsync the directory so the rename itself survives a crash.
 * @example await writeFileAtomic('ckpt/model.safetensors', bytes)
 */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // directory fsync is not supported everywhere (e.g. Windows): best effort
  const dh = await open(dir, 'r').catch(() => null);
  if (dh) await dh.sync().catch(() => {}).finally(() => dh.close());
}

/**
 * Read a whole file. A path the user got wrong (missing, a directory, unreadable) is an InputError whose
 * message names the path; other I/O errors propagate unchanged.
 */
export async function readFileChecked(file: string): Promise<Uint8Array> {
  try {
    const b = await readFile(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`file not found: ${file}`);
    if (code === 'EISDIR') throw new InputError(`expected a file but found a directory: ${file}`);
    if (code === 'EACCES' || code === 'EPERM') throw new InputError(`permission denied reading ${file}`);
    throw e;
  }
}
