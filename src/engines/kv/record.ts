/**
 * The value stored under a key's `kv` row:
 *
 *     [type][flags][expire-at ms, float64 BE, when flags & HAS_TTL][payload]
 *
 * A string's payload is its bytes. A collection's payload is
 * `[uid f64][count f64]`, and a list adds `[head f64][tail f64]` (positions
 * of its first element and one past its last). A compact collection
 * (flags & COMPACT, uid 0) is followed by its element rows themselves
 * (`compact-items.ts`) instead of owning rows in `kv-items`.
 */
export const KeyType = { String: 0, List: 1, Set: 2, ZSet: 3, Hash: 4 } as const;
export type KeyType = (typeof KeyType)[keyof typeof KeyType];

export const TYPE_NAMES: Readonly<Record<KeyType, string>> = {
  [KeyType.String]: 'string',
  [KeyType.List]: 'list',
  [KeyType.Set]: 'set',
  [KeyType.ZSet]: 'zset',
  [KeyType.Hash]: 'hash',
};

const HAS_TTL = 1;
const COMPACT = 2;

/** The uid of every compact collection: element rows of uid 0 never exist in `kv-items` (uids start at 1). */
export const COMPACT_UID = 0;

export interface KeyRecord {
  readonly type: KeyType;
  /** Absolute expiry in ms since the epoch; 0 when the key has no TTL. */
  readonly expireAt: number;
  /** A string's bytes: a view that is valid only until the next keyspace read. Empty for collections. */
  readonly value: Buffer;
  readonly uid: number;
  readonly count: number;
  readonly head: number;
  readonly tail: number;
  /** A compact collection's encoded element rows (a copy, valid after later reads); undefined otherwise. */
  readonly compact: Buffer | undefined;
}

const EMPTY = Buffer.alloc(0);

export function headerBytes(expireAt: number): number {
  return expireAt === 0 ? 2 : 10;
}

export function decodeRecord(raw: Buffer): KeyRecord {
  const type = raw[0] as KeyType;
  const hasTtl = (raw[1] & HAS_TTL) !== 0;
  const expireAt = hasTtl ? raw.readDoubleBE(2) : 0;
  const at = hasTtl ? 10 : 2;
  if (type === KeyType.String) {
    return {
      type,
      expireAt,
      value: raw.subarray(at),
      uid: 0,
      count: 0,
      head: 0,
      tail: 0,
      compact: undefined,
    };
  }
  const uid = raw.readDoubleBE(at);
  const count = raw.readDoubleBE(at + 8);
  const isList = type === KeyType.List;
  const head = isList ? raw.readDoubleBE(at + 16) : 0;
  const tail = isList ? raw.readDoubleBE(at + 24) : 0;
  const compact = (raw[1] & COMPACT) === 0 ? undefined : Buffer.from(raw.subarray(at + (isList ? 32 : 16)));
  return { type, expireAt, value: EMPTY, uid, count, head, tail, compact };
}

function writeHeader(out: Buffer, type: KeyType, expireAt: number, compact: boolean): number {
  out[0] = type;
  out[1] = (expireAt === 0 ? 0 : HAS_TTL) | (compact ? COMPACT : 0);
  if (expireAt === 0) return 2;
  out.writeDoubleBE(expireAt, 2);
  return 10;
}

export function encodeString(value: Uint8Array, expireAt: number): Buffer {
  const at = headerBytes(expireAt);
  const out = Buffer.allocUnsafe(at + value.length);
  writeHeader(out, KeyType.String, expireAt, false);
  out.set(value, at);
  return out;
}

export interface CollectionState {
  readonly uid: number;
  readonly count: number;
  readonly head?: number;
  readonly tail?: number;
}

/** A collection's record; `compact` (the encoded element rows) makes it a compact one. */
export function encodeCollection(
  type: KeyType,
  expireAt: number,
  state: CollectionState,
  compact?: Buffer,
): Buffer {
  const at = headerBytes(expireAt);
  const fixed = type === KeyType.List ? 32 : 16;
  const out = Buffer.allocUnsafe(at + fixed + (compact?.length ?? 0));
  writeHeader(out, type, expireAt, compact !== undefined);
  out.writeDoubleBE(state.uid, at);
  out.writeDoubleBE(state.count, at + 8);
  if (type === KeyType.List) {
    out.writeDoubleBE(state.head ?? 0, at + 16);
    out.writeDoubleBE(state.tail ?? 0, at + 24);
  }
  compact?.copy(out, at + fixed);
  return out;
}

/** The same record with another expiry (the payload is kept byte for byte). */
export function withExpiry(raw: Buffer, expireAt: number): Buffer {
  const oldAt = (raw[1] & HAS_TTL) !== 0 ? 10 : 2;
  const payload = raw.subarray(oldAt);
  const at = headerBytes(expireAt);
  const out = Buffer.allocUnsafe(at + payload.length);
  writeHeader(out, raw[0] as KeyType, expireAt, (raw[1] & COMPACT) !== 0);
  payload.copy(out, at);
  return out;
}
