/**
 * Where this node stands in a Redis primary's history: the primary's replid
 * and the offset applied here, written in the same storage write as the
 * commands (or the full sync) up to that offset. A restarted replica then
 * asks to continue (`PSYNC replid offset+1`) instead of syncing in full, as
 * a Redis replica does from the replication info saved in its RDB.
 */
import type { Database } from 'lmdb';
import type { Storage } from '../../storage/environment.js';

export interface SavedRedisPosition {
  readonly replid: string;
  readonly offset: number;
  /**
   * The database the primary's stream had selected at `offset`: Redis sends SELECT only
   * when it changes, so a stream continued after a restart starts in it (Redis keeps it
   * in its RDB as `repl-stream-db`). Absent in positions saved before it was kept.
   */
  readonly db?: number;
}

/** In the node's own table (node-local: never copied to its Doppel replicas). */
const KEY = 'redis-position';

export class RedisPositionStore {
  readonly #storage: Storage;
  readonly #table: Database<SavedRedisPosition, string>;

  constructor(storage: Storage) {
    this.#storage = storage;
    this.#table = storage.structured<SavedRedisPosition, string>('node');
  }

  read(): SavedRedisPosition | undefined {
    return this.#table.get(KEY);
  }

  /** Inside a write. */
  putInWrite(position: SavedRedisPosition): void {
    this.#storage.put(this.#table, KEY, position);
  }

  /** The node no longer follows that history (promoted). */
  async clear(): Promise<void> {
    await this.#storage.write(() => this.#table.removeSync(KEY));
  }
}
