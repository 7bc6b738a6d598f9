/**
 * Open a GGUF file without reading it whole: parse the header from a growing prefix, then read each
 * tensor's bytes straight into its storage (fs.readSync at its offset), so a model's weights are in
 * memory once — not once in a file buffer and again in tensors.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InputError, ModelFormatError } from '../errors.ts';
import { readGGUF, type GGUFFile, type GGUFTensorInfo } from '../formats/gguf.ts';

export interface GGUFHandle {
  readonly path: string;
  /** header only: `file.bytes` is a prefix; use `read` for tensor data */
  readonly file: GGUFFile;
  read(info: GGUFTensorInfo, dst: Uint8Array): void;
  close(): void;
}

function readFully(fd: number, dst: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < dst.byteLength) {
    const n = readSync(fd, dst, done, dst.byteLength - done, position + done);
    if (n === 0) throw new ModelFormatError(`${path}: file ended at byte ${position + done} while reading ${dst.byteLength} bytes at ${position}`);
    done += n;
  }
}

export function openGGUF(path: string): GGUFHandle {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `file not found: ${path}` : `cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputError(`not a file: ${path}`);
    const size = st.size;
    let want = Math.min(size, 1 << 20);
    let file: GGUFFile;
    for (;;) {
      const head = new Uint8Array(want);
      readFully(fd, head, 0, path);
      try {
        file = readGGUF(head, { fileSize: size });
        break;
      } catch (e) {
        // a header longer than the prefix read so far looks truncated: read more, up to the whole file
        if (want >= size) throw e;
        want = Math.min(size, want * 4);
      }
    }
    const handle: GGUFHandle = {
      path,
      file,
      read(info, dst) {
        if (dst.byteLength !== info.byteSize) throw new Error(`internal: read ${info.name} into ${dst.byteLength} bytes, needs ${info.byteSize}`);
        readFully(fd, dst, file.dataOffset + info.offset, path);
      },
      close() {
        closeSync(fd);
      },
    };
    return handle;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
