/**
 * Restores a spooled node snapshot on a worker thread
 * (`snapshot-restore-worker.ts`), as one storage write of that thread (see
 * `services/write-thread.ts`): the replicated tables, the journal reset to
 * the snapshot's LSN and the node's new identity commit together.
 */
import type { KeyspaceCounters } from '../../engines/kv/keyspace.js';
import { WriteThread } from '../write-thread.js';

export interface SnapshotRestoreRequest {
  readonly storagePath: string;
  readonly spoolPath: string;
  /** The primary's history and the snapshot's LSN, which the replica's journal and identity take. */
  readonly replid: string;
  readonly lsn: number;
}

/** Bytes of the spool restored so far. */
export interface SnapshotRestoreProgress {
  readonly bytesRead: number;
}

export interface SnapshotRestoreResult {
  readonly rows: number;
  /** The counters the main thread's keyspace takes over (saving it a recount). */
  readonly counters: KeyspaceCounters;
}

export type SnapshotRestoreThread = WriteThread<
  SnapshotRestoreRequest,
  SnapshotRestoreProgress,
  SnapshotRestoreResult
>;

/** Started when a transfer starts, so that loading its modules overlaps the transfer. */
export function startSnapshotRestoreThread(): SnapshotRestoreThread {
  return new WriteThread(new URL('./snapshot-restore-worker.js', import.meta.url));
}
