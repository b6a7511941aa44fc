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

/** Slots of a `GrowingFile`'s shared state. */
const READABLE = 0;
const STATE = 1;
const GROWING = 0n;
const COMPLETE = 1n;
const ABANDONED = 2n;
/** How long a reader of a growing file sleeps at once (it rechecks whether the writer gave up). */
const GROWTH_WAIT_MS = 100;

/**
 * A file written on one thread while another reads it (`growingFileChunks`): a spool
 * loaded while it still arrives. The writer says how far it may be read — not always
 * as far as written: a diskless RDB ends with a mark that is not part of it — and
 * whether it is complete or abandoned. `shared` goes to the reading thread.
 */
export class GrowingFile {
  readonly shared = new BigInt64Array(new SharedArrayBuffer(16));

  readableUpTo(bytes: number): void {
    Atomics.store(this.shared, READABLE, BigInt(bytes));
    Atomics.notify(this.shared, READABLE);
  }

  /** The file is whole at `bytes` (its final size). */
  complete(bytes: number): void {
    // The size first: a reader that sees the state complete must see the final size too.
    Atomics.store(this.shared, READABLE, BigInt(bytes));
    Atomics.store(this.shared, STATE, COMPLETE);
    Atomics.notify(this.shared, READABLE);
  }

  /** The file will not be completed: its reader fails at the end of what it may read. */
  abandon(): void {
    if (Atomics.compareExchange(this.shared, STATE, GROWING, ABANDONED) === GROWING) {
      Atomics.notify(this.shared, READABLE);
    }
  }
}

/**
 * `fileChunks` of a `GrowingFile` (its `shared` state), read as it grows: waits (blocking
 * the thread) for more, until the writer completes it; throws if the writer abandons it.
 */
export function* growingFileChunks(path: string, shared: BigInt64Array): Generator<Buffer> {
  const readable = (): number => Number(Atomics.load(shared, READABLE));
  const abandoned = (): Error => new Error(`${path} was abandoned before it was complete`);
  // Opened once it has been written to: the writer creates (truncates) it first.
  while (readable() === 0 && Atomics.load(shared, STATE) === GROWING) {
    Atomics.wait(shared, READABLE, 0n, GROWTH_WAIT_MS);
  }
  if (readable() === 0 && Atomics.load(shared, STATE) === ABANDONED) throw abandoned();
  const fd = openSync(path, 'r');
  try {
    let position = 0;
    for (;;) {
      const end = readable();
      if (position < end) {
        const length = Math.min(CHUNK_BYTES, end - position);
        const chunk = Buffer.allocUnsafe(length);
        const n = readSync(fd, chunk, 0, length, position);
        if (n === 0) throw new Error(`${path} is shorter than its writer said`);
        position += n;
        yield n === length ? chunk : chunk.subarray(0, n);
        continue;
      }
      const state = Atomics.load(shared, STATE);
      if (state === COMPLETE && readable() === position) return;
      if (state === ABANDONED) throw abandoned();
      Atomics.wait(shared, READABLE, BigInt(end), GROWTH_WAIT_MS);
    }
  } finally {
    closeSync(fd);
  }
}
