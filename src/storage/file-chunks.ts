import { closeSync, openSync, readSync } from 'node:fs';

/** Read size of `fileChunks`: large enough that a multi-gigabyte spool reads in few calls. */
const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The bytes of the file at `path`, in order, synchronously (for loaders that run inside
 * one storage write). Each chunk is a fresh buffer: a parser may keep slices of one
 * while it reads the next.
 */
export function* fileChunks(path: string): Generator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      if (n === 0) return;
      yield n === CHUNK_BYTES ? chunk : chunk.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}
