import type { Database } from 'lmdb';
import type { Storage } from '../../storage/environment.js';
import type { OverlaidTable } from '../../storage/overlaid-table.js';
import type { WriteRecorder } from '../../storage/recorded-writes.js';
import type { KvMutation } from '../journal/journal-entry.js';
import type { Journal } from '../journal/journal.js';
import {
  dbStart,
  expiryBound,
  expiryKvRow,
  expiryRow,
  expiryTime,
  MAX_KEY_BYTES,
  rowCursor,
  rowDb,
  rowHash,
  rowKey,
  rowUserKey,
  UID_BYTES,
  uidEnd,
  uidPrefix,
} from './codec.js';
import { CompactItems, type ItemStore } from './compact-items.js';
import { globMatch } from './glob.js';
import { keyTooLong, noSuchKey } from './kv-errors.js';
import {
  decodeRecord,
  encodeCollection,
  encodeString,
  KeyType,
  TYPE_NAMES,
  withExpiry,
  type CollectionState,
  type KeyRecord,
} from './record.js';
import { liveSet, otherSet, overlaidRowTable, putLiveSet, ROW_TABLES, type TableSet } from './table-sets.js';

export const DATABASES = 16;

/** Distributed mutations might need db-less entries (`flushall`, `multi`); these are the ones with a db. */
type DbMutation = Extract<KvMutation, { db: number }>;
/** A mutation body without the `k` and `db` the keyspace fills in. */
export type KvOp = DbMutation extends infer M ? (M extends DbMutation ? Omit<M, 'k' | 'db'> : never) : never;

export interface KeyspaceOptions {
  /**
   * True on a primary: an expired key found on access (or by the active
   * cycle) is deleted and journaled as `del`. A replica sets false: it hides
   * expired keys and waits for its primary's `del`.
   */
  readonly deleteExpired: boolean;
  /** The row tables to use (see `table-sets.ts`); the live set when absent. */
  readonly tables?: TableSet;
}

/**
 * What reads do with a key whose TTL has passed: `delete` it (a primary),
 * `hide` it (a replica: its primary sends the DEL), or treat it as `live`
 * (a replica applying its primary's stream, which may still see the key).
 */
export type ExpiredKeys = 'delete' | 'hide' | 'live';

export interface KeyspaceStats {
  expiredKeys: number;
  hits: number;
  misses: number;
}

export interface ScanResult<T> {
  /** The cursor to pass next; 0 when the scan is complete. */
  readonly cursor: number;
  readonly items: T[];
}

export type ExpireCondition = 'nx' | 'xx' | 'gt' | 'lt';

export interface KeyspaceCounters {
  readonly keys: readonly number[];
  readonly expires: readonly number[];
  readonly nextUid: number;
}

interface PendingWrite {
  readonly action: () => unknown;
  readonly done: (err: unknown, result?: unknown) => void;
  result: unknown;
  error: unknown;
}

interface WriteBatch {
  readonly items: PendingWrite[];
  /** Run once the batch committed, or failed (`afterCommit`). */
  readonly committed: (() => void)[];
  readonly failed: (() => void)[];
}

/**
 * The Redis-compatible keyspace in LMDB: 16 logical databases of strings,
 * hashes, lists, sets and sorted sets with TTLs. Reads go straight to LMDB;
 * every mutation must run inside `write()` (one storage transaction shared by
 * all writes of an event-loop turn), and appends a journal entry describing
 * itself in that same transaction.
 *
 * The per-type operations live beside this file (`strings.ts`, `hashes.ts`,
 * …) and use the primitives here; front doors call those operations.
 */
export class Keyspace {
  kv: OverlaidTable;
  items: OverlaidTable;
  #expires: OverlaidTable;
  #tables: TableSet;
  readonly #meta: Database<number, string>;
  readonly #storage: Storage;
  readonly #journal: Journal;
  #nextUid: number;
  #inWrite = false;
  /** Set during `stage` writes, which are not journaled. */
  #unjournaled = false;
  #batch: WriteBatch | null = null;
  /** The batch whose actions are running (see `afterCommit`). */
  #running: WriteBatch | null = null;
  #group: KvMutation[] | null = null;
  readonly #keyCounts: number[] = new Array<number>(DATABASES).fill(0);
  readonly #expireCounts: number[] = new Array<number>(DATABASES).fill(0);
  readonly #pendingExpiry = new Set<string>();
  readonly stats: KeyspaceStats = { expiredKeys: 0, hits: 0, misses: 0 };
  /** Called (inside the write) for every key a mutation touches: WATCH uses it. */
  onTouch: ((db: number, key: Buffer) => void) | null = null;
  /** Called (inside the write) when a database (or every one, `null`) is flushed. */
  onFlush: ((db: number | null) => void) | null = null;
  /** Starts as the options say (`deleteExpired`); a node that becomes a replica switches it. */
  expiredKeys: ExpiredKeys;

  constructor(storage: Storage, journal: Journal, options: KeyspaceOptions) {
    this.#storage = storage;
    this.#journal = journal;
    this.expiredKeys = options.deleteExpired ? 'delete' : 'hide';
    this.#tables = options.tables ?? liveSet(storage);
    [this.kv, this.items, this.#expires] = this.#openTables(this.#tables);
    this.#meta = storage.structured<number, string>('kv-meta');
    this.#nextUid = this.#meta.get('uid') ?? 1;
    this.#recount();
  }

  /** Inside a write that replaced the keyspace's rows (a node replica's full sync): re-reads what is cached. */
  reloadCounters(): void {
    this.#nextUid = this.#meta.get('uid') ?? 1;
    this.#recount();
  }

  /** The row tables in use. */
  get tables(): TableSet {
    return this.#tables;
  }

  /** The counters this instance keeps in memory (for `replacedElsewhere`). */
  cachedCounters(): KeyspaceCounters {
    return { keys: [...this.#keyCounts], expires: [...this.#expireCounts], nextUid: this.#nextUid };
  }

  /**
   * After another thread's write replaced the keyspace (an RDB loaded on a
   * worker, whose keyspace counted `counters`): reads from a fresh snapshot,
   * and WATCH sees every key changed, as after `replaceAll`.
   */
  replacedElsewhere(counters: KeyspaceCounters): void {
    this.#storage.root.resetReadTxn();
    for (let db = 0; db < DATABASES; db++) {
      this.#keyCounts[db] = counters.keys[db];
      this.#expireCounts[db] = counters.expires[db];
    }
    this.#nextUid = counters.nextUid;
    this.onFlush?.(null);
  }

  /** Counts keys and TTLs per database from storage (at open, and after a failed `replaceAll`). */
  #recount(): void {
    this.#expireCounts.fill(0);
    for (let db = 0; db < DATABASES; db++) {
      this.#keyCounts[db] = this.kv.getCount({ start: dbStart(db), end: dbStart(db + 1) });
    }
    for (const key of this.#expires.getKeys()) {
      const db = rowDb(expiryKvRow(key));
      this.#expireCounts[db] = this.#expireCounts[db] + 1;
    }
  }

  // ---- transactions ----------------------------------------------------------

  /**
   * Runs `action` inside the next storage write and resolves once committed.
   * `action` must validate before it mutates: a throw does not undo the
   * mutations it already made.
   */
  write<T>(action: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(action, (err, result) => {
        if (err === undefined) resolve(result as T);
        else reject(err instanceof Error ? err : new Error('write failed', { cause: err }));
      });
    });
  }

  /**
   * Runs `action` as a write and calls `done` (in submission order) once it
   * is acknowledged, with the action's result or what it threw. When the
   * storage can queue writes (`Storage.canWriteNow`) the action runs at once
   * and is acknowledged from the write-ahead log; otherwise (or with
   * `inTransaction`, for writes that store state the log does not carry)
   * actions submitted until the next transaction starts all run, in order,
   * inside one `Storage.write` (group commit).
   */
  submit<T>(action: () => T, done: (err: unknown, result?: T) => void, inTransaction = false): void {
    if (!inTransaction && this.#batch === null && this.#storage.canWriteNow) {
      this.#writeNow(action, done);
      return;
    }
    let batch = this.#batch;
    if (batch === null) {
      const fresh: WriteBatch = { items: [], committed: [], failed: [] };
      batch = this.#batch = fresh;
      this.#storage
        .write(() => this.#runBatch(fresh))
        .then(
          () => {
            for (const item of fresh.items) item.done(item.error, item.result);
            for (const then of fresh.committed) then();
          },
          (err: unknown) => {
            for (const item of fresh.items) item.done(err ?? new Error('storage write failed'));
            for (const then of fresh.failed) then();
          },
        );
    }
    batch.items.push({ action, done: done as PendingWrite['done'], result: undefined, error: undefined });
  }

  /** `submit` when nothing waits for a transaction: the action runs now, its writes queued (`Storage.writeNow`). */
  #writeNow<T>(action: () => T, done: (err: unknown, result?: T) => void): void {
    const effects: WriteBatch = { items: [], committed: [], failed: [] };
    let result: T | undefined;
    let error: unknown;
    this.#storage.writeNow(
      () => {
        this.#inWrite = true;
        this.#running = effects;
        try {
          result = action();
        } catch (err) {
          error = err ?? new Error('write action failed');
        } finally {
          this.#inWrite = false;
          this.#running = null;
        }
      },
      (failed) => {
        if (failed === undefined) done(error, result);
        else done(failed);
        for (const then of failed === undefined ? effects.committed : effects.failed) then();
      },
    );
  }

  #runBatch(batch: WriteBatch): void {
    // Later submissions go to the next transaction.
    if (this.#batch === batch) this.#batch = null;
    this.#inWrite = true;
    this.#running = batch;
    try {
      for (const item of batch.items) {
        try {
          item.result = item.action();
        } catch (err) {
          item.error = err ?? new Error('write action failed');
        }
      }
    } finally {
      this.#inWrite = false;
      this.#running = null;
    }
  }

  /**
   * Runs `then` once the write running now has committed (after its actions'
   * completions), or at once outside a `submit` action; `failed` instead if
   * that write fails. For effects that must not be seen before the data they
   * follow, e.g. a Pub/Sub message published after a write in the same
   * transaction.
   */
  afterCommit(then: () => void, failed?: () => void): void {
    if (this.#running === null) then();
    else {
      this.#running.committed.push(then);
      if (failed !== undefined) this.#running.failed.push(failed);
    }
  }

  get inWrite(): boolean {
    return this.#inWrite;
  }

  /**
   * Runs `action` (inside a write) so that the mutations it makes are journaled
   * as one `multi` entry, applied all together by consumers (MULTI/EXEC).
   */
  group<T>(action: () => T): T {
    if (this.#group !== null || this.#unjournaled) return action();
    const ops: KvMutation[] = [];
    this.#group = ops;
    try {
      return action();
    } finally {
      this.#group = null;
      if (ops.length === 1) this.#journal.append(ops[0], Date.now());
      else if (ops.length > 1) this.#journal.append({ k: 'kv', op: 'multi', ops }, Date.now());
    }
  }

  /**
   * Runs `action` inside a storage write that is not the keyspace's own (a
   * replica replaying its primary's journal): in write mode, seeing keys the
   * local clock already expired as live (the primary still had them), and
   * journaling what it does as one entry.
   */
  replaying<T>(action: () => T): T {
    const previous = this.expiredKeys;
    this.#inWrite = true;
    this.expiredKeys = 'live';
    try {
      return this.group(action);
    } finally {
      this.#inWrite = false;
      this.expiredKeys = previous;
    }
  }

  /** Journals a mutation of `db` (inside a write). */
  emit(db: number, op: KvOp): void {
    if (!this.#unjournaled) this.#append({ k: 'kv', db, ...op });
  }

  /** `emit` of the most frequent mutation, a plain SET, without a spread copy. */
  emitSet(db: number, key: Buffer, value: Buffer): void {
    if (!this.#unjournaled) this.#append({ k: 'kv', db, op: 'set', key, value });
  }

  #append(entry: KvMutation): void {
    if (this.#unjournaled) return;
    if (this.#group !== null) this.#group.push(entry);
    else this.#journal.append(entry, Date.now());
  }

  touch(db: number, key: Buffer): void {
    this.onTouch?.(db, key);
  }

  // ---- records -----------------------------------------------------------------

  /** The row of `key`, refusing keys LMDB cannot index. */
  row(db: number, key: Buffer): Buffer {
    if (key.length > MAX_KEY_BYTES) throw keyTooLong();
    return rowKey(db, key);
  }

  /**
   * The live record of a key, or undefined when it is missing or expired (an
   * expired key is deleted at once inside a write, soon otherwise).
   */
  lookup(db: number, key: Buffer, row = this.row(db, key)): KeyRecord | undefined {
    const raw = this.kv.getBinaryFast(row);
    if (raw === undefined) return undefined;
    const record = decodeRecord(raw);
    if (record.expireAt !== 0 && record.expireAt <= Date.now() && this.expiredKeys !== 'live') {
      this.#expired(db, key, row, record);
      return undefined;
    }
    return record;
  }

  /** Like `lookup`, counting a keyspace hit or miss (for INFO). */
  lookupRead(db: number, key: Buffer): KeyRecord | undefined {
    const record = this.lookup(db, key);
    if (record === undefined) this.stats.misses++;
    else this.stats.hits++;
    return record;
  }

  #expired(db: number, key: Buffer, row: Buffer, record: KeyRecord): void {
    if (this.expiredKeys !== 'delete') return;
    if (this.#inWrite) {
      this.#removeExpired(db, key, row, record);
      return;
    }
    const id = row.toString('latin1');
    if (this.#pendingExpiry.has(id)) return;
    this.#pendingExpiry.add(id);
    const ownKey = Buffer.from(key);
    this.write(() => {
      this.#pendingExpiry.delete(id);
      this.lookup(db, ownKey, row);
    }).catch(() => this.#pendingExpiry.delete(id));
  }

  #removeExpired(db: number, key: Buffer, row: Buffer, record: KeyRecord): void {
    const ownKey = Buffer.from(key);
    this.removeRecord(db, ownKey, row, record);
    this.stats.expiredKeys++;
    this.#append({ k: 'kv', db, op: 'del', keys: [ownKey], expired: true });
  }

  /** Deletes a key and its elements (inside a write); the caller journals. */
  removeRecord(db: number, key: Buffer, row: Buffer, record: KeyRecord): void {
    this.kv.remove(row);
    if (record.expireAt !== 0) {
      this.#expires.remove(expiryRow(record.expireAt, row));
      this.#expireCounts[db] = this.#expireCounts[db] - 1;
    }
    this.#keyCounts[db] = this.#keyCounts[db] - 1;
    this.#dropItems(record);
    this.touch(db, key);
  }

  /** Removes every element row a collection owns in `kv-items` (a compact one owns none). */
  #dropItems(record: KeyRecord): void {
    if (record.type === KeyType.String || record.compact !== undefined) return;
    const rows: Buffer[] = [];
    for (const item of this.items.getKeys({ start: uidPrefix(record.uid), end: uidEnd(record.uid) }))
      rows.push(item);
    for (const item of rows) this.items.remove(item);
  }

  /**
   * Where the elements of `record` are (a new collection: `undefined`) for
   * the type operations; a compact collection's elements are decoded from
   * its record, and `putCollection` writes them back.
   */
  itemsOf(record: KeyRecord | undefined): ItemStore {
    if (record === undefined) return new CompactItems();
    if (record.compact !== undefined) return CompactItems.decode(record.compact);
    return this.items;
  }

  /**
   * Stores `encoded` as the key's record (inside a write), keeping the key
   * count and the expiry index in step. `previous` is the live record being
   * replaced, if any; a replaced collection of another uid loses its elements.
   */
  putRecord(
    db: number,
    key: Buffer,
    row: Buffer,
    encoded: Buffer,
    expireAt: number,
    previous: KeyRecord | undefined,
    keepItems = false,
  ): void {
    if (previous === undefined) this.#keyCounts[db] = this.#keyCounts[db] + 1;
    else if (!keepItems) this.#dropItems(previous);
    const oldAt = previous?.expireAt ?? 0;
    if (oldAt !== expireAt) {
      if (oldAt !== 0) {
        this.#expires.remove(expiryRow(oldAt, row));
        this.#expireCounts[db] = this.#expireCounts[db] - 1;
      }
      if (expireAt !== 0) {
        this.#expires.put(expiryRow(expireAt, row), Buffer.alloc(0));
        this.#expireCounts[db] = this.#expireCounts[db] + 1;
      }
    }
    this.kv.put(row, encoded);
    this.touch(db, key);
  }

  putString(
    db: number,
    key: Buffer,
    row: Buffer,
    value: Uint8Array,
    expireAt: number,
    previous: KeyRecord | undefined,
  ): void {
    this.putRecord(db, key, row, encodeString(value, expireAt), expireAt, previous);
  }

  /**
   * Writes a collection's record with its elements `items` (from `itemsOf`).
   * Compact elements go into the record while they fit, else move to rows of
   * a fresh uid for good; `previous` of the same uid keeps its rows.
   */
  putCollection(
    db: number,
    key: Buffer,
    row: Buffer,
    type: KeyType,
    state: CollectionState,
    previous: KeyRecord | undefined,
    items: ItemStore,
  ): void {
    const expireAt = previous?.expireAt ?? 0;
    if (items instanceof CompactItems) {
      if (items.fits(state.count)) {
        this.putRecord(
          db,
          key,
          row,
          encodeCollection(type, expireAt, state, items.encode()),
          expireAt,
          previous,
        );
        return;
      }
      state = { ...state, uid: this.allocateUid() };
      this.#moveToRows(items, state.uid);
    }
    const same = previous?.compact === undefined && previous?.type === type && previous.uid === state.uid;
    this.putRecord(db, key, row, encodeCollection(type, expireAt, state), expireAt, previous, same);
  }

  /** Writes a compact collection's rows into `kv-items` under `uid`. */
  #moveToRows(items: CompactItems, uid: number): void {
    for (const element of items.getRange({})) {
      const moved = Buffer.from(element.key);
      moved.writeUIntBE(uid, 0, UID_BYTES);
      this.items.put(moved, element.value);
    }
  }

  /**
   * Stores a key known to be new without reading first (loading an RDB, which
   * holds each key once, inside `replaceAll`), its TTL included: false, and
   * nothing written, when the key exists after all. The caller journals.
   */
  insertString(db: number, key: Buffer, value: Uint8Array, expireAt: number): boolean {
    return this.#insert(db, key, this.row(db, key), encodeString(value, expireAt), expireAt);
  }

  /** `insertString` for a collection whose elements were put in fresh `items`. */
  insertCollection(
    db: number,
    key: Buffer,
    type: KeyType,
    state: CollectionState,
    items: CompactItems,
    expireAt: number,
  ): boolean {
    const row = this.row(db, key);
    if (items.fits(state.count)) {
      return this.#insert(db, key, row, encodeCollection(type, expireAt, state, items.encode()), expireAt);
    }
    const uid = this.allocateUid();
    if (!this.#insert(db, key, row, encodeCollection(type, expireAt, { ...state, uid }), expireAt))
      return false;
    this.#moveToRows(items, uid);
    return true;
  }

  #insert(db: number, key: Buffer, row: Buffer, encoded: Buffer, expireAt: number): boolean {
    if (!this.kv.insert(row, encoded)) return false;
    this.#keyCounts[db] = this.#keyCounts[db] + 1;
    if (expireAt !== 0) {
      this.#expires.put(expiryRow(expireAt, row), Buffer.alloc(0));
      this.#expireCounts[db] = this.#expireCounts[db] + 1;
    }
    this.touch(db, key);
    return true;
  }

  /** A fresh collection uid (inside a write). */
  allocateUid(): number {
    const uid = this.#nextUid++;
    this.#storage.put(this.#meta, 'uid', this.#nextUid);
    return uid;
  }

  // ---- generic key operations -----------------------------------------------

  /** DEL / UNLINK: how many of the keys existed. */
  del(db: number, keys: readonly Buffer[]): number {
    const removed: Buffer[] = [];
    for (const key of keys) {
      const row = this.row(db, key);
      const record = this.lookup(db, key, row);
      if (record === undefined) continue;
      const ownKey = Buffer.from(key);
      this.removeRecord(db, ownKey, row, record);
      removed.push(ownKey);
    }
    if (removed.length > 0) this.emit(db, { op: 'del', keys: removed });
    return removed.length;
  }

  exists(db: number, keys: readonly Buffer[]): number {
    let n = 0;
    for (const key of keys) if (this.lookup(db, key) !== undefined) n++;
    return n;
  }

  type(db: number, key: Buffer): string {
    const record = this.lookup(db, key);
    return record === undefined ? 'none' : TYPE_NAMES[record.type];
  }

  /**
   * EXPIRE family with an absolute time in ms: 1 when set (or when the time
   * has passed and the key was deleted), 0 when the key is missing or a
   * condition refused it. Conditions combine as in Redis 7 (XX with GT or LT:
   * both must hold); the caller has refused NX with another, and GT with LT.
   */
  expireAt(db: number, key: Buffer, at: number, conditions: readonly ExpireCondition[] = []): 0 | 1 {
    const row = this.row(db, key);
    const record = this.lookup(db, key, row);
    if (record === undefined) return 0;
    const current = record.expireAt;
    for (const condition of conditions) {
      // A key without a TTL counts as an infinite one: GT never beats it, LT always does.
      if (condition === 'nx' && current !== 0) return 0;
      if (condition === 'xx' && current === 0) return 0;
      if (condition === 'gt' && (current === 0 || at <= current)) return 0;
      if (condition === 'lt' && current !== 0 && at >= current) return 0;
    }
    const ownKey = Buffer.from(key);
    if (at <= Date.now()) {
      this.removeRecord(db, ownKey, row, record);
      this.emit(db, { op: 'del', keys: [ownKey] });
      return 1;
    }
    this.#setExpiry(db, ownKey, row, record, at);
    this.emit(db, { op: 'pexpireat', key: ownKey, pxat: at });
    return 1;
  }

  #setExpiry(db: number, key: Buffer, row: Buffer, record: KeyRecord, at: number): void {
    const raw = this.kv.getBinary(row);
    if (raw === undefined) return;
    this.putRecord(db, key, row, withExpiry(raw, at), at, record, true);
  }

  /** PTTL: -2 missing, -1 no TTL, else the ms left. */
  pttl(db: number, key: Buffer): number {
    const record = this.lookup(db, key);
    if (record === undefined) return -2;
    if (record.expireAt === 0) return -1;
    return Math.max(0, record.expireAt - Date.now());
  }

  /** The absolute expiry (EXPIRETIME family): -2 missing, -1 none. */
  expireTime(db: number, key: Buffer): number {
    const record = this.lookup(db, key);
    if (record === undefined) return -2;
    return record.expireAt === 0 ? -1 : record.expireAt;
  }

  persist(db: number, key: Buffer): 0 | 1 {
    const row = this.row(db, key);
    const record = this.lookup(db, key, row);
    if (record === undefined || record.expireAt === 0) return 0;
    const ownKey = Buffer.from(key);
    this.#setExpiry(db, ownKey, row, record, 0);
    this.emit(db, { op: 'persist', key: ownKey });
    return 1;
  }

  /** RENAME (and RENAMENX with `onlyIfAbsent`): false when RENAMENX found the target. */
  rename(db: number, key: Buffer, to: Buffer, onlyIfAbsent = false): boolean {
    const row = this.row(db, key);
    const toRow = this.row(db, to);
    const record = this.lookup(db, key, row);
    if (record === undefined) throw noSuchKey();
    if (row.equals(toRow)) return !onlyIfAbsent;
    const target = this.lookup(db, to, toRow);
    if (target !== undefined && onlyIfAbsent) return false;
    const raw = this.kv.getBinary(row)!;
    const ownKey = Buffer.from(key);
    const ownTo = Buffer.from(to);
    // Move the record as is: a collection keeps its uid, so its elements follow.
    this.kv.remove(row);
    if (record.expireAt !== 0) this.#expires.remove(expiryRow(record.expireAt, row));
    if (target !== undefined) {
      this.#dropItems(target);
      if (target.expireAt !== 0) {
        this.#expires.remove(expiryRow(target.expireAt, toRow));
        this.#expireCounts[db] = this.#expireCounts[db] - 1;
      }
      this.#keyCounts[db] = this.#keyCounts[db] - 1;
    }
    this.kv.put(toRow, raw);
    if (record.expireAt !== 0) this.#expires.put(expiryRow(record.expireAt, toRow), Buffer.alloc(0));
    this.touch(db, ownKey);
    this.touch(db, ownTo);
    this.emit(db, { op: 'rename', key: ownKey, to: ownTo });
    return true;
  }

  /** KEYS: every live key of `db` matching the glob pattern. */
  keys(db: number, pattern: Buffer): Buffer[] {
    const all = pattern.length === 1 && pattern[0] === 0x2a;
    const now = Date.now();
    const out: Buffer[] = [];
    for (const { key, value } of this.kv.getRange({ start: dbStart(db), end: dbStart(db + 1) })) {
      const userKey = rowUserKey(key);
      if (!all && !globMatch(pattern, userKey)) continue;
      if (isExpired(value, now)) continue;
      out.push(userKey);
    }
    return out;
  }

  /**
   * SCAN: about `count` keys from hash position `cursor` on. It stops only
   * between two hash values, so every key present for the whole scan is
   * returned at least once.
   */
  scan(db: number, cursor: number, count: number, pattern?: Buffer, type?: KeyType): ScanResult<Buffer> {
    const out: Buffer[] = [];
    if (cursor > 0xffffffff) return { cursor: 0, items: out };
    const now = Date.now();
    let seen = 0;
    let lastHash = -1;
    for (const { key, value } of this.kv.getRange({ start: rowCursor(db, cursor), end: dbStart(db + 1) })) {
      const hash = rowHash(key);
      if (seen >= count && hash !== lastHash) return { cursor: hash, items: out };
      seen++;
      lastHash = hash;
      const userKey = rowUserKey(key);
      if (pattern !== undefined && !globMatch(pattern, userKey)) continue;
      if (type !== undefined && value[0] !== type) continue;
      if (isExpired(value, now)) continue;
      out.push(userKey);
    }
    return { cursor: 0, items: out };
  }

  /** A random live key of `db`, or undefined when it has none. */
  randomKey(db: number): Buffer | undefined {
    const now = Date.now();
    for (let attempt = 0; attempt < 8; attempt++) {
      const cursor = Math.floor(Math.random() * 0x100000000);
      for (const start of [rowCursor(db, cursor), dbStart(db)]) {
        for (const { key, value } of this.kv.getRange({ start, end: dbStart(db + 1), limit: 1 })) {
          if (!isExpired(value, now)) return rowUserKey(key);
        }
      }
    }
    return undefined;
  }

  dbSize(db: number): number {
    return this.#keyCounts[db];
  }

  /** Per database: keys and keys with a TTL (INFO keyspace). */
  counts(): { keys: number; expires: number }[] {
    return this.#keyCounts.map((keys, db) => ({ keys, expires: this.#expireCounts[db] }));
  }

  flushDb(db: number): void {
    const rows: Buffer[] = [];
    const records: KeyRecord[] = [];
    for (const { key, value } of this.kv.getRange({ start: dbStart(db), end: dbStart(db + 1) })) {
      rows.push(key);
      const record = decodeRecord(value);
      records.push(record);
      if (record.expireAt !== 0) this.#expires.remove(expiryRow(record.expireAt, key));
    }
    for (const row of rows) this.kv.remove(row);
    for (const record of records) this.#dropItems(record);
    this.#keyCounts[db] = 0;
    this.#expireCounts[db] = 0;
    this.onFlush?.(db);
    this.emit(db, { op: 'flushdb' });
  }

  /**
   * SWAPDB: the keys of `db` and `other` change places. Redis swaps two
   * pointers; here every key row of both databases is rewritten under the
   * other's prefix (elements stay: they hang off the record's uid), in the
   * current write, so the cost grows with the keys. Each key counts as
   * touched (WATCH, blocked pops); journaled as one `swapdb`.
   */
  swapDb(db: number, other: number): void {
    if (db === other) return;
    const take = (from: number): [Buffer, Buffer][] => {
      const rows: [Buffer, Buffer][] = [];
      for (const { key, value } of this.kv.getRange({ start: dbStart(from), end: dbStart(from + 1) })) {
        rows.push([Buffer.from(key), Buffer.from(value)]);
      }
      for (const [row, value] of rows) {
        this.kv.remove(row);
        const expireAt = decodeRecord(value).expireAt;
        if (expireAt !== 0) this.#expires.remove(expiryRow(expireAt, row));
      }
      return rows;
    };
    const place = (rows: [Buffer, Buffer][], to: number): void => {
      for (const [row, value] of rows) {
        const moved = Buffer.from(row);
        moved[0] = to;
        this.kv.put(moved, value);
        const expireAt = decodeRecord(value).expireAt;
        if (expireAt !== 0) this.#expires.put(expiryRow(expireAt, moved), Buffer.alloc(0));
        this.touch(rowDb(row), rowUserKey(row));
        this.touch(to, rowUserKey(row));
      }
    };
    const [fromDb, fromOther] = [take(db), take(other)];
    place(fromDb, other);
    place(fromOther, db);
    [this.#keyCounts[db], this.#keyCounts[other]] = [this.#keyCounts[other], this.#keyCounts[db]];
    [this.#expireCounts[db], this.#expireCounts[other]] = [this.#expireCounts[other], this.#expireCounts[db]];
    this.emit(db, { op: 'swapdb', with: other });
  }

  flushAll(): void {
    this.clearTables();
    this.onFlush?.(null);
    this.#append({ k: 'kv', op: 'flushall' });
  }

  /**
   * Replaces the whole keyspace in one storage write of its own: clears every
   * database, then runs `load`. Readers see the old keyspace until the commit;
   * a throw from `load` discards all of it, the clearing included (a full
   * resync). The clearing (`flushall`) and every write of `load` are
   * journaled. (A node's own load from a Redis primary is staged instead, see
   * `stage`.)
   */
  async replaceAll<T>(load: () => T): Promise<T> {
    // Later submissions wait for this write rather than joining an earlier open batch.
    this.#batch = null;
    try {
      return await this.#storage.write(() => {
        this.#inWrite = true;
        try {
          this.flushAll();
          return load();
        } finally {
          this.#inWrite = false;
        }
      });
    } catch (err) {
      this.#recount();
      throw err;
    }
  }

  /**
   * For a keyspace opened on the set that is not live (see `table-sets.ts`):
   * runs `action` in a storage write that is not journaled and not waited on
   * for its disk sync — nobody sees these rows before the write that makes
   * the set live (`adoptStaged`), which commits after them.
   */
  async stage<T>(action: () => T): Promise<T> {
    this.#mustBeStaged();
    return await this.#storage.writeStaged(() => this.#withoutJournal(action));
  }

  /**
   * `stage` on a thread that does not write: runs `action` with its rows
   * recorded in `recorder` (see `Storage.record`) for the thread that writes
   * to replay in its `stage` writes. Counters move here as if it wrote.
   */
  stageRecorded<T>(recorder: WriteRecorder, action: () => T): T {
    this.#mustBeStaged();
    return this.#storage.record(recorder, () => this.#withoutJournal(action));
  }

  #mustBeStaged(): void {
    if (this.#tables === liveSet(this.#storage)) throw new Error('staging into the live keyspace tables');
  }

  #withoutJournal<T>(action: () => T): T {
    this.#inWrite = true;
    this.#unjournaled = true;
    try {
      return action();
    } finally {
      this.#inWrite = false;
      this.#unjournaled = false;
    }
  }

  /** Inside a write: empties this keyspace's tables and counts, unjournaled (a staged load starts so). */
  clearTables(): void {
    this.kv.clear();
    this.items.clear();
    this.#expires.clear();
    this.#keyCounts.fill(0);
    this.#expireCounts.fill(0);
  }

  /**
   * Makes `tables`, filled by `stage` writes (on another thread, whose
   * keyspace counted `counters`), the live set, in one write that also runs
   * `inSameWrite`; then empties the set it replaced. Readers and writers see
   * the old keyspace until that write, the new one from it on; WATCH sees
   * every key changed.
   */
  async adoptStaged(tables: TableSet, counters: KeyspaceCounters, inSameWrite: () => void): Promise<void> {
    const replaced = this.#tables;
    if (tables === replaced) throw new Error('the staged tables are the live ones');
    // Later submissions run after the swap rather than joining an earlier open batch.
    this.#batch = null;
    try {
      await this.#storage.write(() => {
        putLiveSet(this.#storage, tables);
        inSameWrite();
        // Switched inside the write: an action that runs after this one, in this very
        // transaction or a later one, must already use the new tables.
        this.#useTables(tables);
        this.replacedElsewhere(counters);
      });
    } catch (err) {
      this.#useTables(replaced);
      this.#recount();
      throw err;
    }
    await this.#storage.write(() => {
      for (const table of this.#openTables(replaced)) table.clear();
    });
  }

  /**
   * At start: empties the set that is not live, which holds rows only when a
   * load into it was cut short (a crash, a shutdown) — they would otherwise
   * take disk space until the next full sync. Resolves true when it did.
   */
  async clearUnfinishedLoad(): Promise<boolean> {
    const staged = this.#openTables(otherSet(this.#tables));
    if (!staged.some((table) => table.db.getKeysCount({ limit: 1 }) > 0)) return false;
    await this.#storage.write(() => {
      for (const table of staged) table.clear();
    });
    return true;
  }

  #useTables(tables: TableSet): void {
    this.#tables = tables;
    [this.kv, this.items, this.#expires] = this.#openTables(tables);
  }

  /** `kv`, `kv-items`, `kv-expires` of `tables`. */
  #openTables(tables: TableSet): OverlaidTable[] {
    return ROW_TABLES.map((table) => overlaidRowTable(this.#storage, table, tables));
  }

  // ---- active expiry -----------------------------------------------------------

  /**
   * Deletes up to `limit` keys whose TTL has passed, each journaled as an
   * expired `del`. Resolves to how many were due (a full `limit` means more
   * may be waiting). A replica never calls this.
   */
  async expireDue(limit = 200): Promise<number> {
    const now = Date.now();
    const due: Buffer[] = [];
    for (const key of this.#expires.getKeys({ end: expiryBound(now + 1), limit })) due.push(key);
    if (due.length === 0) return 0;
    await this.write(() => {
      const at = Date.now();
      for (const entry of due) {
        const row = expiryKvRow(entry);
        const raw = this.kv.getBinaryFast(row);
        if (raw === undefined) {
          // A stale index row (should not happen): drop it.
          this.#expires.remove(entry);
          continue;
        }
        const record = decodeRecord(raw);
        if (record.expireAt !== expiryTime(entry) || record.expireAt > at) continue;
        this.#removeExpired(rowDb(row), Buffer.from(rowUserKey(row)), Buffer.from(row), record);
      }
    });
    return due.length;
  }
}

function isExpired(raw: Buffer, now: number): boolean {
  return (raw[1] & 1) !== 0 && raw.readDoubleBE(2) <= now;
}
