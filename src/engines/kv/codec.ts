/**
 * Byte layouts of the keyspace in LMDB. All keys compare as raw bytes
 * (`keyEncoding: 'binary'`), so every number inside a key is written in a
 * sortable form.
 *
 * - `kv` rows: `[db][hash32(key)][key]`. The hash prefix spreads keys evenly
 *   and gives SCAN a stable numeric cursor: the next hash value to visit.
 * - `kv-items` rows, one per element of a collection, under the collection's
 *   uid (never reused, so a recreated key never sees old rows):
 *   hash field `[uid][hash32(field)][field]`, set member `[uid][hash32(m)][m]`,
 *   sorted-set member `[uid][0][hash32(m)][m]` → score and score index
 *   `[uid][1][sortable score][m]`, list element `[uid][sortable position]`.
 * - `kv-expires` rows: `[sortable expire-at ms][kv row]`, the order in which
 *   keys expire.
 */

/** Largest key or member LMDB can index with our prefixes (its key limit is 1978 bytes). */
export const MAX_KEY_BYTES = 1900;

export const UID_BYTES = 6;

/** FNV-1a over the bytes: cheap, and spreads short keys well enough for cursors. */
export function hash32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function rowKey(db: number, key: Uint8Array): Buffer {
  const row = Buffer.allocUnsafe(5 + key.length);
  row[0] = db;
  row.writeUInt32BE(hash32(key), 1);
  row.set(key, 5);
  return row;
}

/** The first row of `db` whose key hash is at least `cursor`. */
export function rowCursor(db: number, cursor: number): Buffer {
  const row = Buffer.allocUnsafe(5);
  row[0] = db;
  row.writeUInt32BE(cursor, 1);
  return row;
}

export const rowDb = (row: Buffer): number => row[0];
export const rowHash = (row: Buffer): number => row.readUInt32BE(1);
export const rowUserKey = (row: Buffer): Buffer => row.subarray(5);

export function dbStart(db: number): Buffer {
  return Buffer.from([db]);
}

export function uidPrefix(uid: number, extra = 0): Buffer {
  const out = Buffer.allocUnsafe(UID_BYTES + extra);
  out.writeUIntBE(uid, 0, UID_BYTES);
  return out;
}

/** `[uid][tag?][hash32(member)][member]` for hash fields, set members and sorted-set members. */
export function memberRow(uid: number, member: Uint8Array, tag?: number): Buffer {
  const tagBytes = tag === undefined ? 0 : 1;
  const row = Buffer.allocUnsafe(UID_BYTES + tagBytes + 4 + member.length);
  row.writeUIntBE(uid, 0, UID_BYTES);
  if (tag !== undefined) row[UID_BYTES] = tag;
  row.writeUInt32BE(hash32(member), UID_BYTES + tagBytes);
  row.set(member, UID_BYTES + tagBytes + 4);
  return row;
}

/** The first member row at or after hash `cursor`. */
export function memberCursor(uid: number, cursor: number, tag?: number): Buffer {
  const tagBytes = tag === undefined ? 0 : 1;
  const row = Buffer.allocUnsafe(UID_BYTES + tagBytes + 4);
  row.writeUIntBE(uid, 0, UID_BYTES);
  if (tag !== undefined) row[UID_BYTES] = tag;
  row.writeUInt32BE(cursor, UID_BYTES + tagBytes);
  return row;
}

/** Rows of one collection lie in `[uidPrefix(uid), uidEnd(uid))`. */
export function uidEnd(uid: number, tag?: number): Buffer {
  if (tag === undefined) return uidPrefix(uid + 1);
  const out = uidPrefix(uid, 1);
  out[UID_BYTES] = tag + 1;
  return out;
}

export function uidTagStart(uid: number, tag: number): Buffer {
  const out = uidPrefix(uid, 1);
  out[UID_BYTES] = tag;
  return out;
}

/**
 * A double as 8 bytes whose unsigned order is the numeric order (-0 is
 * written as +0; NaN never reaches here).
 */
export function writeSortableDouble(target: Buffer, offset: number, value: number): void {
  target.writeDoubleBE(value === 0 ? 0 : value, offset);
  if ((target[offset] & 0x80) !== 0) {
    for (let i = offset; i < offset + 8; i++) target[i] = ~target[i] & 0xff;
  } else {
    target[offset] = target[offset] | 0x80;
  }
}

export function readSortableDouble(source: Buffer, offset: number): number {
  const tmp = Buffer.from(source.subarray(offset, offset + 8));
  if ((tmp[0] & 0x80) !== 0) tmp[0] = tmp[0] & 0x7f;
  else for (let i = 0; i < 8; i++) tmp[i] = ~tmp[i] & 0xff;
  return tmp.readDoubleBE(0);
}

export const ZSET_MEMBER_TAG = 0;
export const ZSET_SCORE_TAG = 1;

/** `[uid][1][sortable score][member]`: the sorted-set order (score, then member bytes). */
export function scoreRow(uid: number, score: number, member: Uint8Array): Buffer {
  const row = Buffer.allocUnsafe(UID_BYTES + 9 + member.length);
  row.writeUIntBE(uid, 0, UID_BYTES);
  row[UID_BYTES] = ZSET_SCORE_TAG;
  writeSortableDouble(row, UID_BYTES + 1, score);
  row.set(member, UID_BYTES + 9);
  return row;
}

/** The first score row with a score ≥ `score` (or > when `exclusive`: past every member of it). */
export function scoreBound(uid: number, score: number, exclusive: boolean): Buffer {
  const row = Buffer.allocUnsafe(UID_BYTES + 9);
  row.writeUIntBE(uid, 0, UID_BYTES);
  row[UID_BYTES] = ZSET_SCORE_TAG;
  if (score === Infinity && exclusive) return uidEnd(uid, ZSET_SCORE_TAG);
  writeSortableDouble(row, UID_BYTES + 1, score);
  if (!exclusive) return row;
  // Just past every row of this score: increment the 8 score bytes as a big-endian integer.
  for (let i = UID_BYTES + 8; i > UID_BYTES; i--) {
    if (row[i] === 0xff) row[i] = 0;
    else {
      row[i] = row[i] + 1;
      break;
    }
  }
  return row;
}

export const scoreOfRow = (row: Buffer): number => readSortableDouble(row, UID_BYTES + 1);
export const memberOfScoreRow = (row: Buffer): Buffer => row.subarray(UID_BYTES + 9);
export const memberOfRow = (row: Buffer, tagged: boolean): Buffer =>
  row.subarray(UID_BYTES + (tagged ? 5 : 4));
export const hashOfMemberRow = (row: Buffer, tagged: boolean): number =>
  row.readUInt32BE(UID_BYTES + (tagged ? 1 : 0));

/** List positions are integers around 0, stored with an offset so they are positive and sortable. */
const POSITION_OFFSET = 2 ** 52;

export function listRow(uid: number, position: number): Buffer {
  const row = Buffer.allocUnsafe(UID_BYTES + 8);
  row.writeUIntBE(uid, 0, UID_BYTES);
  row.writeDoubleBE(position + POSITION_OFFSET, UID_BYTES);
  return row;
}

export const positionOfListRow = (row: Buffer): number => row.readDoubleBE(UID_BYTES) - POSITION_OFFSET;

/** `[expire-at ms][kv row]` in the expiry index. */
export function expiryRow(expireAt: number, row: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + row.length);
  out.writeDoubleBE(expireAt, 0);
  out.set(row, 8);
  return out;
}

export const expiryTime = (row: Buffer): number => row.readDoubleBE(0);
export const expiryKvRow = (row: Buffer): Buffer => row.subarray(8);

export function expiryBound(time: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(time, 0);
  return out;
}
