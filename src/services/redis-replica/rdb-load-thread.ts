/**
 * Loads a Redis primary's RDB on a worker thread (`rdb-load-worker.ts`, see
 * `services/write-thread.ts`) into the keyspace tables that are not live;
 * `Keyspace.adoptStaged` then makes them live.
 */
import type { KeyspaceCounters } from '../../engines/kv/keyspace.js';
import { RdbError } from '../../engines/kv/rdb/rdb-error.js';
import type { RdbLoadSummary } from '../../engines/kv/rdb/rdb-loader.js';
import type { TableSet } from '../../engines/kv/table-sets.js';
import { WriteThread } from '../write-thread.js';

export interface RdbLoadRequest {
  readonly storagePath: string;
  readonly spoolPath: string;
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

export type RdbLoadThread = WriteThread<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>;

/** Started at the start of a transfer, so that loading its modules overlaps the transfer. */
export function startRdbLoadThread(): RdbLoadThread {
  return new WriteThread(new URL('./rdb-load-worker.js', import.meta.url), (name, message) =>
    name === 'RdbError' ? new RdbError(message) : new Error(message),
  );
}
