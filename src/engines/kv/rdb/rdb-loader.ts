/**
 * Loads an RDB file into the keyspace: either replacing everything in it at
 * once (`replaceKeyspaceWithRdb`, `Keyspace.replaceAll`: one storage write
 * that first clears every database, each key journaled like a write —
 * `flushall`, then `set`/`push`/`sadd`/`hset`/`zadd` and `pexpireat` per key
 * — so that downstream consumers can follow), or in steps (`RdbLoad`) into
 * tables being staged (`Keyspace.stage`, not journaled). Each key is inserted
 * without a lookup (an RDB holds each key once; a repeated key fails the load).
 *
 * Keys are loaded even when their TTL has already passed: on a replica only
 * the primary's DEL removes them (Redis does the same).
 */
import { MAX_KEY_BYTES } from '../codec.js';
import { insertHash } from '../hashes.js';
import { DATABASES, type Keyspace } from '../keyspace.js';
import { insertList } from '../lists.js';
import { insertSet } from '../sets.js';
import { insertString } from '../strings.js';
import { insertZSet } from '../zsets.js';
import { RdbError, RdbReader, type RdbItem, type RdbValue } from './rdb-reader.js';

export interface RdbLoadSummary {
  readonly version: number;
  readonly keys: number;
  readonly keysWithTtl: number;
  /** Keys read but not loaded, by reason. */
  readonly skipped: { stream: number; module: number; empty: number; tooLong: number };
  readonly functions: number;
  readonly checksum: 'verified' | 'absent';
  /**
   * How many keys the file's RESIZEDB records announced (null without any): Redis writes
   * each database's exact key count before its keys, so `keys` plus every skipped key
   * must equal it.
   */
  readonly announcedKeys: number | null;
  /** AUX fields (redis-ver, repl-id, repl-offset …) as text. */
  readonly aux: Readonly<Record<string, string>>;
  readonly bytes: number;
}

/** Called for each key that is not loaded (rate-limit it in the caller if it logs). */
export type RdbWarning = (message: string, detail: { db: number; key: string }) => void;

export interface RdbLoadOptions {
  readonly warn?: RdbWarning;
  /** Called every `PROGRESS_EVERY_ITEMS` records with the bytes read so far. */
  readonly whileLoading?: (bytesRead: number) => void;
}

const PROGRESS_EVERY_ITEMS = 1024;

/**
 * Replaces the keyspace with the RDB in `chunks` (the whole file, in order).
 * Rejects with RdbError (and changes nothing) when the file is malformed or
 * truncated.
 */
export async function replaceKeyspaceWithRdb(
  ks: Keyspace,
  chunks: Iterable<Buffer>,
  options: RdbLoadOptions = {},
): Promise<RdbLoadSummary> {
  const load = new RdbLoad(ks, chunks, options);
  await ks.replaceAll(() => load.step(() => false));
  return load.summary();
}

/**
 * An RDB loaded in steps, each inside a keyspace write (one write for
 * `replaceKeyspaceWithRdb`; many short ones for a staged load, see
 * `Keyspace.stage`).
 */
export class RdbLoad {
  readonly #reader = new RdbReader();
  readonly #chunks: Iterator<Buffer>;
  readonly #loader: KeyLoader;
  readonly #whileLoading: ((bytesRead: number) => void) | undefined;
  #items = 0;
  #ended = false;

  constructor(ks: Keyspace, chunks: Iterable<Buffer>, options: RdbLoadOptions) {
    this.#chunks = chunks[Symbol.iterator]();
    this.#loader = new KeyLoader(ks, options.warn ?? (() => undefined));
    this.#whileLoading = options.whileLoading;
  }

  /**
   * Loads records until the file ends (true) or `enough()` (asked every
   * `PROGRESS_EVERY_ITEMS` records) says so (false). Throws RdbError when the
   * file is malformed or truncated.
   */
  step(enough: () => boolean): boolean {
    const reader = this.#reader;
    for (;;) {
      for (let item = reader.next(); item !== undefined; item = reader.next()) {
        this.#loader.apply(item);
        if (++this.#items % PROGRESS_EVERY_ITEMS === 0) {
          this.#whileLoading?.(reader.offset);
          if (enough()) return false;
        }
      }
      if (this.#ended) {
        if (!reader.done) throw new RdbError('truncated RDB: no EOF record');
        return true;
      }
      const next = this.#chunks.next();
      if (next.done === true) {
        reader.end();
        this.#ended = true;
      } else reader.feed(next.value);
    }
  }

  /** What was loaded (once `step` returned true). */
  summary(): RdbLoadSummary {
    return this.#loader.summary(this.#reader.version, this.#reader.offset);
  }
}

class KeyLoader {
  readonly #ks: Keyspace;
  readonly #warn: RdbWarning;
  #keys = 0;
  #keysWithTtl = 0;
  readonly #skipped = { stream: 0, module: 0, empty: 0, tooLong: 0 };
  #functions = 0;
  #checksum: 'verified' | 'absent' = 'absent';
  #announcedKeys: number | null = null;
  readonly #aux: Record<string, string> = {};

  constructor(ks: Keyspace, warn: RdbWarning) {
    this.#ks = ks;
    this.#warn = warn;
  }

  apply(item: RdbItem): void {
    switch (item.kind) {
      case 'key':
        this.#key(item.db, item.key, item.expireAt, item.value);
        return;
      case 'skipped':
        this.#skipped[item.what]++;
        this.#warn(`not loaded: ${item.detail} (Doppel has no such type)`, name(item.db, item.key));
        return;
      case 'aux':
        this.#aux[item.name] = item.value.toString('latin1');
        return;
      case 'function':
        // Function libraries run on the primary; a replica receives their effects as commands.
        this.#functions++;
        return;
      case 'eof':
        this.#checksum = item.checksum;
        return;
      case 'select':
        if (item.db >= DATABASES) {
          throw new RdbError(`database ${item.db} is out of range (Doppel has ${DATABASES})`);
        }
        return;
      case 'resize':
        this.#announcedKeys = (this.#announcedKeys ?? 0) + item.keys;
        return;
      case 'module-aux':
        return;
    }
  }

  #key(db: number, key: Buffer, expireAt: number, value: RdbValue): void {
    const ks = this.#ks;
    if (key.length > MAX_KEY_BYTES || !fits(value)) {
      this.#skipped.tooLong++;
      this.#warn(
        `not loaded: the key or one of its members is longer than ${MAX_KEY_BYTES} bytes`,
        name(db, key),
      );
      return;
    }
    let inserted: boolean;
    switch (value.type) {
      case 'string':
        inserted = insertString(ks, db, key, value.value, expireAt);
        break;
      case 'list':
        if (this.#empty(db, key, value.items.length)) return;
        inserted = insertList(ks, db, key, value.items, expireAt);
        break;
      case 'set':
        if (this.#empty(db, key, value.members.length)) return;
        inserted = insertSet(ks, db, key, value.members, expireAt);
        break;
      case 'hash':
        if (this.#empty(db, key, value.pairs.length)) return;
        inserted = insertHash(ks, db, key, value.pairs, expireAt);
        break;
      case 'zset':
        if (this.#empty(db, key, value.members.length)) return;
        inserted = insertZSet(ks, db, key, value.scores, value.members, expireAt);
        break;
    }
    if (!inserted) throw repeatedKey(db, key);
    this.#counted(expireAt);
  }

  #counted(expireAt: number): void {
    this.#keys++;
    if (expireAt !== 0) this.#keysWithTtl++;
  }

  #empty(db: number, key: Buffer, size: number): boolean {
    if (size > 0) return false;
    this.#skipped.empty++;
    this.#warn('not loaded: an empty collection', name(db, key));
    return true;
  }

  summary(version: number, bytes: number): RdbLoadSummary {
    return {
      version,
      keys: this.#keys,
      keysWithTtl: this.#keysWithTtl,
      skipped: { ...this.#skipped },
      functions: this.#functions,
      checksum: this.#checksum,
      announcedKeys: this.#announcedKeys,
      aux: { ...this.#aux },
      bytes,
    };
  }
}

/** Whether every member (hash field, set or sorted-set member) fits an LMDB key. */
function fits(value: RdbValue): boolean {
  switch (value.type) {
    case 'string':
    case 'list':
      return true;
    case 'set':
    case 'zset':
      return value.members.every((m) => m.length <= MAX_KEY_BYTES);
    case 'hash':
      for (let i = 0; i < value.pairs.length; i += 2) if (value.pairs[i].length > MAX_KEY_BYTES) return false;
      return true;
  }
}

/** The error of an RDB holding `key` twice (found by whoever writes its rows). */
export function repeatedKey(db: number, key: Buffer): RdbError {
  const { key: shown } = name(db, key);
  return new RdbError(`key ${JSON.stringify(shown)} of database ${db} appears twice`);
}

const name = (db: number, key: Buffer): { db: number; key: string } => ({
  db,
  key: key.toString('utf8', 0, Math.min(key.length, 200)),
});
