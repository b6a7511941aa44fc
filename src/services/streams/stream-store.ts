/**
 * The persisted side of outbound streams, in one LMDB sub-database (`streams`):
 *
 * | key                  | value                                            |
 * | -------------------- | ------------------------------------------------ |
 * | `['config', id]`     | `StreamConfig`                                   |
 * | `['state', id]`      | `QueueState`: position, exact queue size, counts |
 * | `['skip', id, lsn]`  | 1: a journal entry this stream did not queue     |
 *
 * The queue itself is the node journal: a stream's queue is the entries of its source
 * after its position. Queue sizes change only inside storage writes — the local write
 * that appends an entry, or the sender's commit that moves past entries — so they are
 * exact, and drain to 0.
 */
import type { Database } from 'lmdb';
import type { Storage } from '../../storage/environment.js';
import type { StreamConfig } from './stream-config.js';

export interface QueueState {
  /** Every entry up to this LSN is done (sent, dropped or purged). */
  lsn: number;
  /** Points of entry `lsn + 1` already done (a batch may end inside an entry). */
  skipPoints: number;
  /** Queued and not yet done. */
  queuedBytes: number;
  queuedPoints: number;
  /** Since creation. */
  totalQueuedBytes: number;
  totalQueuedPoints: number;
  sentBytes: number;
  sentPoints: number;
  /** Refused by a full queue (InfluxDB's "failed to queue"). */
  droppedFullBytes: number;
  droppedFullPoints: number;
  /** Dropped as non-retryable (400 with dropNonRetryableData). */
  droppedBadBytes: number;
  droppedBadPoints: number;
  /** Purged by maxAgeSeconds (or lost to journal retention). */
  purgedBytes: number;
  purgedPoints: number;
}

export function freshState(lsn: number): QueueState {
  return {
    lsn,
    skipPoints: 0,
    queuedBytes: 0,
    queuedPoints: 0,
    totalQueuedBytes: 0,
    totalQueuedPoints: 0,
    sentBytes: 0,
    sentPoints: 0,
    droppedFullBytes: 0,
    droppedFullPoints: 0,
    droppedBadBytes: 0,
    droppedBadPoints: 0,
    purgedBytes: 0,
    purgedPoints: 0,
  };
}

type Key = ['config' | 'state', string] | ['skip', string, number];

export class StreamStore {
  readonly #db: Database<unknown, Key>;
  readonly storage: Storage;

  constructor(storage: Storage) {
    this.storage = storage;
    this.#db = storage.structured<unknown, Key>('streams');
  }

  configs(): StreamConfig[] {
    const out: StreamConfig[] = [];
    for (const { value } of this.#db.getRange({ start: ['config'], end: ['config', '\uffff'] }))
      out.push(value as StreamConfig);
    return out;
  }

  config(id: string): StreamConfig | undefined {
    return this.#db.get(['config', id]) as StreamConfig | undefined;
  }

  state(id: string): QueueState | undefined {
    return this.#db.get(['state', id]) as QueueState | undefined;
  }

  /** Inside a storage write. */
  putConfig(config: StreamConfig): void {
    this.#db.putSync(['config', config.id], config);
  }

  /** Inside a storage write. */
  putState(id: string, state: QueueState): void {
    this.#db.putSync(['state', id], state);
  }

  /** Inside a storage write: this stream dropped the entry (its queue was full) and never sends it. */
  markDropped(id: string, lsn: number): void {
    this.#db.putSync(['skip', id, lsn], 1);
  }

  isSkipped(id: string, lsn: number): boolean {
    return this.#db.doesExist(['skip', id, lsn]);
  }

  /** Inside a storage write: forgets skip marks at or below `lsn`. */
  clearSkipsThrough(id: string, lsn: number): void {
    for (const key of this.#db.getKeys({ start: ['skip', id, 0], end: ['skip', id, lsn + 1] }))
      this.#db.removeSync(key);
  }

  /** Inside a storage write. */
  remove(id: string): void {
    this.#db.removeSync(['config', id]);
    this.#db.removeSync(['state', id]);
    this.clearSkipsThrough(id, Number.MAX_SAFE_INTEGER);
  }
}
