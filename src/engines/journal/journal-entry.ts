/**
 * One committed mutation of the node, as consumers (node replicas, cluster
 * secondaries, outbound streams) read it. Entries are self-contained: a
 * document entry carries the revision path and the body, so a consumer never
 * needs the (possibly compacted) document store to apply it.
 */
export type JournalEntry =
  | { readonly k: 'db.create'; readonly db: string; readonly uid: number; readonly kind: DatabaseKind }
  | { readonly k: 'db.delete'; readonly db: string; readonly uid: number }
  | {
      readonly k: 'doc';
      readonly db: string;
      readonly id: string;
      readonly seq: number;
      /** Newest first: the written revision then its known ancestors. */
      readonly path: readonly string[];
      readonly deleted: boolean;
      /** The stored body (JSON text without `_id`/`_rev`), null for a stub-only graft. */
      readonly body: string;
      readonly atts?: Readonly<Record<string, AttachmentMeta>>;
    }
  | {
      /**
       * Line protocol points written to a bucket in one request. Deterministic given the
       * state before it: each line becomes (or merges into) the document named by its
       * series key and timestamp (`engines/points/point-document.ts`); `seq` is the
       * bucket's update seq after the write. Outbound streams forward `lines` as they are.
       */
      readonly k: 'points';
      readonly db: string;
      readonly seq: number;
      /** At ns precision, each line ending in "\n". */
      readonly lines: string;
      readonly count: number;
    }
  | { readonly k: 'local'; readonly db: string; readonly id: string; readonly body: string | null }
  | { readonly k: 'security'; readonly db: string; readonly security: unknown }
  | { readonly k: 'revs_limit'; readonly db: string; readonly limit: number }
  /** A database marked read-only (a follower) with the 403's reason, or writable again (null). */
  | { readonly k: 'read_only'; readonly db: string; readonly reason: string | null }
  | { readonly k: 'admin'; readonly name: string; readonly hash: unknown }
  | KvEntry;

export type DatabaseKind = 'database' | 'bucket';

export interface AttachmentMeta {
  readonly content_type: string;
  /** `md5-<base64>` of the bytes, also their storage key. */
  readonly digest: string;
  readonly length: number;
  readonly revpos: number;
}

export interface JournalRecord {
  readonly lsn: number;
  /** Commit time, ms since the epoch. */
  readonly ts: number;
  readonly entry: JournalEntry;
}

/**
 * A keyspace mutation (Redis-compatible data, logical databases 0–15). Each
 * entry is deterministic given the state before it: times are absolute,
 * computed results (INCR, HINCRBY, ZINCRBY, SPOP …) are written as their
 * outcome, and keys the primary expires become explicit `del` entries with
 * `expired: true`. A collection emptied by an entry is deleted by it. Byte
 * strings (keys, values, members) are Buffers.
 */
export type KvEntry =
  KvMutation | { readonly k: 'kv'; readonly op: 'multi'; readonly ops: readonly KvMutation[] };

export type KvMutation =
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'set';
      readonly key: Buffer;
      readonly value: Buffer;
      /** Absolute expiry in ms; absent: no TTL (unless `keepttl`). */
      readonly pxat?: number;
      /** Keep the key's current TTL. */
      readonly keepttl?: true;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'append';
      readonly key: Buffer;
      readonly value: Buffer;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'setrange';
      readonly key: Buffer;
      readonly offset: number;
      readonly value: Buffer;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'del';
      readonly keys: readonly Buffer[];
      /** The primary removed the key because its TTL passed. */
      readonly expired?: true;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'pexpireat';
      readonly key: Buffer;
      readonly pxat: number;
    }
  | { readonly k: 'kv'; readonly db: number; readonly op: 'persist'; readonly key: Buffer }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'rename';
      readonly key: Buffer;
      readonly to: Buffer;
    }
  | { readonly k: 'kv'; readonly db: number; readonly op: 'flushdb' }
  | { readonly k: 'kv'; readonly db: number; readonly op: 'swapdb'; readonly with: number }
  | { readonly k: 'kv'; readonly op: 'flushall' }
  /** `pairs`: field, value, field, value … */
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'hset';
      readonly key: Buffer;
      readonly pairs: readonly Buffer[];
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'hdel';
      readonly key: Buffer;
      readonly fields: readonly Buffer[];
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'push';
      readonly key: Buffer;
      readonly side: 'left' | 'right';
      readonly values: readonly Buffer[];
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'pop';
      readonly key: Buffer;
      readonly side: 'left' | 'right';
      readonly count: number;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'lset';
      readonly key: Buffer;
      readonly index: number;
      readonly value: Buffer;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'lrem';
      readonly key: Buffer;
      readonly count: number;
      readonly value: Buffer;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'ltrim';
      readonly key: Buffer;
      readonly start: number;
      readonly stop: number;
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'sadd';
      readonly key: Buffer;
      readonly members: readonly Buffer[];
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'srem';
      readonly key: Buffer;
      readonly members: readonly Buffer[];
    }
  /** Final scores, one per member. */
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'zadd';
      readonly key: Buffer;
      readonly scores: readonly number[];
      readonly members: readonly Buffer[];
    }
  | {
      readonly k: 'kv';
      readonly db: number;
      readonly op: 'zrem';
      readonly key: Buffer;
      readonly members: readonly Buffer[];
    };
