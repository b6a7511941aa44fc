/**
 * Loads a Redis primary's RDB, as it arrives, into the keyspace tables that are
 * not live, on two worker threads: `rdb-decode-worker.ts` decodes it and records
 * the rows, `rdb-load-worker.ts` writes them (see `services/write-thread.ts`,
 * `services/recorded-batches.ts`); `Keyspace.adoptStaged` then makes them live.
 */
import type { KeyspaceCounters } from '../../engines/kv/keyspace.js';
import { RdbError } from '../../engines/kv/rdb/rdb-error.js';
import type { RdbLoadSummary } from '../../engines/kv/rdb/rdb-loader.js';
import type { TableSet } from '../../engines/kv/table-sets.js';
import { startDecoder } from '../recorded-batches.js';
import { WriteThread } from '../write-thread.js';

export interface RdbLoadRequest {
  readonly storagePath: string;
  readonly spoolPath: string;
  /** The spool's `GrowingFile` state: the load reads it as it arrives. */
  readonly spool: BigInt64Array;
}

export type RdbLoadEvent =
  | { readonly kind: 'progress'; readonly bytesRead: number }
  | { readonly kind: 'warning'; readonly message: string; readonly detail: { db: number; key: string } };

/** What the load read, where it put it, and the counters the main thread's keyspace takes over (saving it a recount). */
export interface RdbLoadResult {
  readonly summary: RdbLoadSummary;
  readonly tables: TableSet;
  readonly counters: KeyspaceCounters;
}

/** What the load worker asks its decoder (`rdb-decode-worker.ts`) for. */
export interface RdbDecodeRequest extends RdbLoadRequest {
  readonly tables: TableSet;
}

export type RdbDecodeResult = Omit<RdbLoadResult, 'tables'>;

export type RdbLoadThread = WriteThread<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>;

/**
 * Started at the start of a transfer, so that loading its modules overlaps the transfer:
 * the writing thread and its decoder (`rdb-decode-worker.ts`, see `recorded-batches.ts`).
 */
export function startRdbLoadThread(): RdbLoadThread {
  const decoder = startDecoder(new URL('./rdb-decode-worker.js', import.meta.url));
  const thread: RdbLoadThread = new WriteThread(
    new URL('./rdb-load-worker.js', import.meta.url),
    (name, message) => (name === 'RdbError' ? new RdbError(message) : new Error(message)),
    { workerData: decoder.link, transferList: [decoder.link.port] },
  );
  void thread.exited.then(() => decoder.stop());
  return thread;
}
