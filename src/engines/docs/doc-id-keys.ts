/**
 * Keys of the tables addressed by document id (`[uid, id]`, `[uid, id, rev]`).
 *
 * lmdb-js' default key encoding (ordered-binary) escapes the characters
 * U+0000–U+0004, which it uses as separators, only in strings shorter than 64
 * characters; a longer id holding one is written raw and read back wrong (split
 * at that character), and two different ids can even share a key. So these
 * tables write every string of a key with those characters escaped first:
 * U+0000–U+0005 become U+0005 followed by '0'–'5'. The escape keeps the order
 * of ids (it maps each character to a code that sorts where the character
 * did, and no code is a prefix of another), and leaves every other id's
 * bytes as they were: only ids holding U+0000–U+0005 were rewritten, by the
 * storage upgrade to format 3 (`upgradeDocIdKeys`).
 */
import { bufferToKeyValue, keyValueToBuffer, type Database, type Key } from 'lmdb';
import type { Storage } from '../../storage/environment.js';

// lmdb-js exports ordered-binary's whole-key codec under these names without declaring them.
declare module 'lmdb' {
  export function keyValueToBuffer(key: Key): Buffer;
  export function bufferToKeyValue(bytes: Uint8Array): Key;
}

/** The tables whose keys hold document ids, with the parts of their keys. */
export const DOC_ID_TABLES: Readonly<Record<string, 2 | 3>> = { docs: 2, revs: 3, locals: 2 };

const ESCAPE = 0x05;

function needsEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) <= ESCAPE) return true;
  return false;
}

export function escapeKeyString(s: string): string {
  if (!needsEscape(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c <= ESCAPE ? String.fromCharCode(ESCAPE, 0x30 + c) : s[i];
  }
  return out;
}

export function unescapeKeyString(s: string): string {
  if (s.indexOf(String.fromCharCode(ESCAPE)) < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === ESCAPE) out += String.fromCharCode(s.charCodeAt(++i) - 0x30);
    else out += s[i];
  }
  return out;
}

const mapStrings = (key: Key, map: (s: string) => string): Key =>
  Array.isArray(key)
    ? key.map((part) => (typeof part === 'string' ? map(part) : part))
    : typeof key === 'string'
      ? map(key)
      : key;

/** lmdb-js' `keyEncoder` option for the tables in `DOC_ID_TABLES`. */
export const docIdKeyEncoder = {
  writeKey(key: Key, target: Uint8Array, position: number): number {
    const bytes = keyValueToBuffer(mapStrings(key, escapeKeyString));
    // Throws a RangeError when the target is too small: lmdb-js then retries with a larger one.
    target.set(bytes, position);
    return position + bytes.length;
  },
  readKey(source: Uint8Array, start: number, end: number): Key {
    return mapStrings(bufferToKeyValue(source.subarray(start, end)), unescapeKeyString);
  },
};

/** ordered-binary writes a positive integer inside an array key in 9 bytes, then a 0 separator. */
const UID_BYTES = 9;

/**
 * The fast path of the upgrade (most rows): no byte below U+0006 after the uid but the
 * separator before a revision, so the id holds no character the escape changes.
 */
function plainRow(key: Uint8Array, parts: 2 | 3): boolean {
  if (key.length <= UID_BYTES || key[UID_BYTES] !== 0) return false;
  let separators = 0;
  for (let i = UID_BYTES + 1; i < key.length; i++) {
    if (key[i] > ESCAPE) continue;
    if (key[i] === 0 && ++separators < parts - 1) continue;
    return false;
  }
  return true;
}

/**
 * Storage format 2 → 3, inside a write: rewrites the rows whose key holds an id
 * with U+0000–U+0005 under the escaped key. `raw` is the table opened with
 * binary keys. A long id ordered-binary wrote raw reads back as more key parts
 * than the table has; its id is then the bytes between the uid and, for
 * revision rows, the last separator (revisions hold no control characters).
 * Not idempotent (an escaped key reads like a format 2 key holding U+0005):
 * it runs once, in the write that stamps format 3.
 */
export function upgradeDocIdKeys(raw: Database<Buffer, Buffer>, parts: 2 | 3): number {
  const moves: { from: Buffer; to: Buffer; value: Buffer }[] = [];
  // Keys only: values are read for the few rows that move.
  for (const key of raw.getKeys({})) {
    if (plainRow(key, parts)) continue;
    const decoded = bufferToKeyValue(key);
    // Rows only: a structured table also keeps its msgpack structures under a symbol key.
    if (!Array.isArray(decoded) || typeof decoded[0] !== 'number') continue;
    const readBack =
      decoded.length === parts && typeof decoded[1] === 'string' && keyValueToBuffer(decoded).equals(key);
    if (readBack && !needsEscape(decoded[1] as string)) continue;
    let exact = decoded as (string | number)[];
    if (!readBack) {
      const idStart = keyValueToBuffer([decoded[0]]).length + 1;
      const idEnd = parts === 3 ? key.lastIndexOf(0) : key.length;
      let id = key.subarray(idStart, idEnd);
      // ordered-binary marks a string starting below U+001C with a leading 27.
      if (id[0] === 27) id = id.subarray(1);
      exact = [decoded[0], id.toString('utf8')];
      if (parts === 3) exact.push(key.subarray(idEnd + 1).toString('latin1'));
    }
    // The iterator may reuse its buffers: what is kept is copied.
    const to = keyValueToBuffer(mapStrings(exact, escapeKeyString));
    const from = Buffer.from(key);
    moves.push({ from, to, value: Buffer.from(raw.getBinary(from)!) });
  }
  for (const { from, to, value } of moves) {
    raw.removeSync(from);
    raw.putSync(to, value);
  }
  return moves.length;
}

/** Inside the write that stamps format 3, once: re-keys the rows of every table in `DOC_ID_TABLES`. */
export function upgradeDocIdTables(storage: Storage): number {
  let moved = 0;
  for (const [name, parts] of Object.entries(DOC_ID_TABLES)) {
    const raw = storage.root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoding: 'binary' });
    moved += upgradeDocIdKeys(raw, parts);
  }
  return moved;
}
