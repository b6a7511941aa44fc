/**
 * Loads a Redis primary's RDB on a worker thread (`rdb-load-worker.ts`), as
 * one storage write of that thread (see `services/write-thread.ts`).
 */
import type { KeyspaceCounters } from '../../engines/kv/keyspace.js';
import { RdbError } from '../../engines/kv/rdb/rdb-error.js';
import type { RdbLoadSummary } from '../../engines/kv/rdb/rdb-loader.js';
import type { IdentityRecord } from '../node-replication/node-identity.js';
import { WriteThread } from '../write-thread.js';

export interface RdbLoadRequest {
  readonly storagePath: string;
  readonly spoolPath: string;
  /** Written in the same write: the node's history starts anew (see `Keyspace.replaceAll`). */
  readonly newHistory: Pick<IdentityRecord, 'replid' | 'replid2' | 'secondOffset'>;
}

export type RdbLoadEvent =
  | { readonly kind: 'progress'; readonly bytesRead: number }
  | { readonly kind: 'warning'; readonly message: string; readonly detail: { db: number; key: string } };

/** What the load read, and the counters the main thread's keyspace takes over (saving it a recount). */
export interface RdbLoadResult {
  readonly summary: RdbLoadSummary;
  readonly counters: KeyspaceCounters;
}

export type RdbLoadThread = WriteThread<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>;

/** Started at the start of a transfer, so that loading its modules overlaps the transfer. */
export function startRdbLoadThread(): RdbLoadThread {
  return new WriteThread(new URL('./rdb-load-worker.js', import.meta.url), (name, message) =>
    name === 'RdbError' ? new RdbError(message) : new Error(message),
  );
}
