/**
 * Where this node's journal stands in a replication history, in Redis'
 * terms: `replid` names the history (this node's own as a primary, its
 * primary's as a replica), `replid2`/`secondOffset` the history it came from
 * before its last promotion. LSNs are the offsets.
 *
 * Kept in the node's own table, so a restarted replica continues from its
 * LSN (a partial resync) and a restarted primary keeps serving partial
 * resyncs. `replicaLsn` is the LSN up to which this node's journal is a copy
 * of its primary's: any other write (the node was writable for a moment)
 * makes the journal head differ from it, and the next sync is a full one.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from 'lmdb';
import type { Storage } from '../../storage/environment.js';

export const ZERO_REPLID = '0'.repeat(40);
export const newReplid = (): string => randomBytes(20).toString('hex');

export interface IdentityRecord {
  readonly replid: string;
  readonly replid2: string;
  readonly secondOffset: number;
  /** Set while this node follows a Doppel primary: its journal copies the primary's up to here. */
  readonly replicaLsn: number | null;
  /** `host port` of the primary this node follows (REPLICAOF), so a restart keeps following it. */
  readonly primary: string | null;
}

const KEY = 'replication';

export class NodeIdentity {
  readonly #table: Database<IdentityRecord, string>;
  readonly #storage: Storage;
  #record: IdentityRecord;

  constructor(storage: Storage) {
    this.#storage = storage;
    this.#table = storage.structured<IdentityRecord, string>('node');
    this.#record = this.#table.get(KEY) ?? {
      replid: newReplid(),
      replid2: ZERO_REPLID,
      secondOffset: -1,
      replicaLsn: null,
      primary: null,
    };
  }

  /** Stores a new node's identity (its replid must outlive a restart, or replicas could never continue after one). */
  async persistNew(): Promise<void> {
    if (this.#table.get(KEY) === undefined) await this.update({});
  }

  get current(): IdentityRecord {
    return this.#record;
  }

  /** Inside a write: records a change (kept in memory at once; a failed write is followed by `reload`). */
  putInWrite(change: Partial<IdentityRecord>): void {
    this.#record = { ...this.#record, ...change };
    this.#storage.put(this.#table, KEY, this.#record);
  }

  async update(change: Partial<IdentityRecord>): Promise<void> {
    await this.#storage.write(() => this.putInWrite(change));
  }

  /** After a failed write: back to what storage holds. */
  reload(): void {
    this.#record = this.#table.get(KEY) ?? this.#record;
  }

  /**
   * REPLICAOF NO ONE: this node's history continues under a new id; the old
   * one stays valid up to `head` (replicas of the old primary may continue).
   */
  async promote(head: number): Promise<void> {
    const { replid } = this.#record;
    await this.update({
      replid: newReplid(),
      replid2: replid,
      secondOffset: head + 1,
      replicaLsn: null,
      primary: null,
    });
  }

  /** May a replica at `replid`, asking for entries from `nextLsn` on, continue from our journal? */
  canContinue(replid: string, nextLsn: number, head: number, low: number): boolean {
    const record = this.#record;
    const known = replid === record.replid || (replid === record.replid2 && nextLsn <= record.secondOffset);
    return known && nextLsn >= low && nextLsn <= head + 1;
  }
}
