/**
 * The value stored under a key's `kv` row:
 *
 *     [type][flags][expire-at ms, float64 BE, when flags & HAS_TTL][payload]
 *
 * A string's payload is its bytes. A collection's payload is
 * `[uid f64][count f64]`, and a list adds `[head f64][tail f64]` (positions
 * of its first element and one past its last).
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
    return { type, expireAt, value: raw.subarray(at), uid: 0, count: 0, head: 0, tail: 0 };
  }
  const uid = raw.readDoubleBE(at);
  const count = raw.readDoubleBE(at + 8);
  const head = type === KeyType.List ? raw.readDoubleBE(at + 16) : 0;
  const tail = type === KeyType.List ? raw.readDoubleBE(at + 24) : 0;
  return { type, expireAt, value: EMPTY, uid, count, head, tail };
}

function writeHeader(out: Buffer, type: KeyType, expireAt: number): number {
  out[0] = type;
  if (expireAt === 0) {
    out[1] = 0;
    return 2;
  }
  out[1] = HAS_TTL;
  out.writeDoubleBE(expireAt, 2);
  return 10;
}

export function encodeString(value: Uint8Array, expireAt: number): Buffer {
  const at = headerBytes(expireAt);
  const out = Buffer.allocUnsafe(at + value.length);
  writeHeader(out, KeyType.String, expireAt);
  out.set(value, at);
  return out;
}

export interface CollectionState {
  readonly uid: number;
  readonly count: number;
  readonly head?: number;
  readonly tail?: number;
}

export function encodeCollection(type: KeyType, expireAt: number, state: CollectionState): Buffer {
  const at = headerBytes(expireAt);
  const out = Buffer.allocUnsafe(at + (type === KeyType.List ? 32 : 16));
  writeHeader(out, type, expireAt);
  out.writeDoubleBE(state.uid, at);
  out.writeDoubleBE(state.count, at + 8);
  if (type === KeyType.List) {
    out.writeDoubleBE(state.head ?? 0, at + 16);
    out.writeDoubleBE(state.tail ?? 0, at + 24);
  }
  return out;
}

/** The same record with another expiry (the payload is kept byte for byte). */
export function withExpiry(raw: Buffer, expireAt: number): Buffer {
  const oldAt = (raw[1] & HAS_TTL) !== 0 ? 10 : 2;
  const payload = raw.subarray(oldAt);
  const at = headerBytes(expireAt);
  const out = Buffer.allocUnsafe(at + payload.length);
  writeHeader(out, raw[0] as KeyType, expireAt);
  payload.copy(out, at);
  return out;
}
