/**
 * Receives the RDB snapshot that follows `+FULLRESYNC`, in either framing:
 *
 * - disk-based: `$<len>\r\n` then exactly len bytes (no CRLF after them; the
 *   command stream may follow in the same packet, so the split is exact);
 * - diskless (`capa eof`): `$EOF:<40-char mark>\r\n`, the RDB, the same 40
 *   bytes. The primary sends nothing after the mark until our first ACK, so
 *   the payload ends where the received bytes end with the mark.
 *
 * Empty `\n` lines (the primary's keepalives while it prepares the snapshot)
 * may come first. The payload is spooled to a file, as received, which the loader
 * reads as it grows (the keyspace is replaced only once all of it is loaded): a
 * replica of a large Redis needs disk for its RDB, as Redis' own replicas do, not
 * memory.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import type { GrowingFile } from '../../storage/file-chunks.js';
import type { PrimaryConnection } from './primary-connection.js';
import { LinkClosed } from './primary-connection.js';

const EOF_MARK_BYTES = 40;
const READ_SIZE = 1024 * 1024;

export interface TransferProgress {
  /** Total bytes: -1 until the header is read, 0 when diskless (unknown). */
  size: number;
  read: number;
  lastIo: number;
}

/**
 * Receives the snapshot into the file at `spoolPath` (replaced); resolves with its size.
 * `file` learns how much of it may be read as it arrives, and when it is complete.
 */
export async function receiveSnapshot(
  conn: PrimaryConnection,
  progress: TransferProgress,
  spoolPath: string,
  file: GrowingFile,
): Promise<number> {
  const header = await conn.reply();
  if (header.startsWith('-')) throw new LinkClosed(`the primary aborted the transfer: ${header.slice(1)}`);
  if (!header.startsWith('$')) {
    throw new LinkClosed(`bad snapshot header from the primary: ${JSON.stringify(header.slice(0, 64))}`);
  }
  progress.lastIo = Date.now();
  const fd = openSync(spoolPath, 'w');
  try {
    if (header.startsWith('$EOF:')) {
      const mark = Buffer.from(header.slice(5), 'latin1');
      if (mark.length !== EOF_MARK_BYTES) throw new LinkClosed('bad EOF mark in the snapshot header');
      progress.size = 0;
      const size = await receiveUntilMark(conn, mark, progress, fd, file);
      file.complete(size);
      return size;
    }
    const size = Number(header.slice(1));
    if (!Number.isSafeInteger(size) || size < 0) throw new LinkClosed(`bad snapshot length ${header}`);
    progress.size = size;
    while (progress.read < size) {
      const chunk = await conn.chunk(Math.min(READ_SIZE, size - progress.read));
      writeSync(fd, chunk);
      progress.read += chunk.length;
      progress.lastIo = Date.now();
      file.readableUpTo(progress.read);
    }
    file.complete(size);
    return size;
  } finally {
    closeSync(fd);
  }
}

async function receiveUntilMark(
  conn: PrimaryConnection,
  mark: Buffer,
  progress: TransferProgress,
  fd: number,
  file: GrowingFile,
): Promise<number> {
  let tail = Buffer.alloc(0);
  for (;;) {
    const chunk = await conn.chunk(READ_SIZE);
    writeSync(fd, chunk);
    progress.read += chunk.length;
    progress.lastIo = Date.now();
    tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - EOF_MARK_BYTES))]);
    if (tail.length > EOF_MARK_BYTES) tail = tail.subarray(tail.length - EOF_MARK_BYTES);
    if (tail.length === EOF_MARK_BYTES && tail.equals(mark)) break;
    file.readableUpTo(Math.max(0, progress.read - EOF_MARK_BYTES));
  }
  // The mark is not part of the payload.
  const size = progress.read - EOF_MARK_BYTES;
  ftruncateSync(fd, size);
  return size;
}
