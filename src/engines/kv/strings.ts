/**
 * String commands. Every function that mutates must run inside
 * `Keyspace.write`; the read functions run anywhere.
 */
import type { Keyspace } from './keyspace.js';
import {
  MAX_STRING_BYTES,
  nanOrInfinity,
  notFloat,
  notInteger,
  overflow,
  tooBig,
  wrongType,
} from './kv-errors.js';
import { addInt64, formatHumanDouble, parseDouble, parseInt64 } from './numbers.js';
import { KeyType, type KeyRecord } from './record.js';

function stringOf(record: KeyRecord | undefined): Buffer | null {
  if (record === undefined) return null;
  if (record.type !== KeyType.String) throw wrongType();
  return record.value;
}

/** GET: the value as a view that is valid only until the next keyspace read, or null. */
export function get(ks: Keyspace, db: number, key: Buffer): Buffer | null {
  return stringOf(ks.lookupRead(db, key));
}

/** MGET: copies; null for missing keys and keys of other types. */
export function mget(ks: Keyspace, db: number, keys: readonly Buffer[]): (Buffer | null)[] {
  return keys.map((key) => {
    const record = ks.lookupRead(db, key);
    return record === undefined || record.type !== KeyType.String ? null : Buffer.from(record.value);
  });
}

export interface SetOptions {
  readonly condition?: 'nx' | 'xx';
  /** Absolute expiry in ms; absent: no TTL (or the kept one with `keepTtl`). */
  readonly expireAt?: number;
  readonly keepTtl?: boolean;
  /** Return the previous value (SET … GET): refuses a key of another type. */
  readonly get?: boolean;
}

export interface SetResult {
  readonly written: boolean;
  /** With `get`: the previous value (a copy) or null. */
  readonly previous: Buffer | null;
}

const NOT_WRITTEN: SetResult = { written: false, previous: null };
const WRITTEN: SetResult = { written: true, previous: null };

export function set(
  ks: Keyspace,
  db: number,
  key: Buffer,
  value: Buffer,
  options: SetOptions = {},
): SetResult {
  if (value.length > MAX_STRING_BYTES) throw tooBig();
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  let previous: Buffer | null = null;
  if (options.get === true) {
    const bytes = stringOf(old);
    previous = bytes === null ? null : Buffer.from(bytes);
  }
  if (
    (options.condition === 'nx' && old !== undefined) ||
    (options.condition === 'xx' && old === undefined)
  ) {
    return previous === null ? NOT_WRITTEN : { written: false, previous };
  }
  const keep = options.keepTtl === true;
  const expireAt = keep ? (old?.expireAt ?? 0) : (options.expireAt ?? 0);
  ks.putString(db, key, row, value, expireAt, old);
  if (keep) ks.emit(db, { op: 'set', key, value, keepttl: true });
  else if (expireAt !== 0) ks.emit(db, { op: 'set', key, value, pxat: expireAt });
  else ks.emitSet(db, key, value);
  return previous === null ? WRITTEN : { written: true, previous };
}

/** Loads a new string with its TTL (an RDB's key): false when the key exists. */
export function insertString(
  ks: Keyspace,
  db: number,
  key: Buffer,
  value: Buffer,
  expireAt: number,
): boolean {
  if (value.length > MAX_STRING_BYTES) throw tooBig();
  if (!ks.insertString(db, key, value, expireAt)) return false;
  ks.emit(db, expireAt === 0 ? { op: 'set', key, value } : { op: 'set', key, value, pxat: expireAt });
  return true;
}

/** MSET (and MSETNX with `onlyIfNoneExist`): false when MSETNX found one of the keys. */
export function mset(ks: Keyspace, db: number, pairs: readonly Buffer[], onlyIfNoneExist = false): boolean {
  for (let i = 0; i < pairs.length; i += 2) {
    ks.row(db, pairs[i]);
    if (pairs[i + 1].length > MAX_STRING_BYTES) throw tooBig();
  }
  if (onlyIfNoneExist) {
    for (let i = 0; i < pairs.length; i += 2) if (ks.lookup(db, pairs[i]) !== undefined) return false;
  }
  ks.group(() => {
    for (let i = 0; i < pairs.length; i += 2) set(ks, db, pairs[i], pairs[i + 1]);
  });
  return true;
}

/** INCRBY and friends; keeps the key's TTL. */
export function incrBy(ks: Keyspace, db: number, key: Buffer, delta: number | bigint): number | bigint {
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  let current: number | bigint = 0;
  const bytes = stringOf(old);
  if (bytes !== null) {
    const parsed = parseInt64(bytes);
    if (parsed === undefined) throw notInteger();
    current = parsed;
  }
  const next = addInt64(current, delta);
  if (next === undefined) throw overflow();
  const value = Buffer.from(String(next), 'latin1');
  ks.putString(db, key, row, value, old?.expireAt ?? 0, old);
  ks.emit(db, { op: 'set', key, value, keepttl: true });
  return next;
}

/** INCRBYFLOAT: the new value as Redis prints it; keeps the key's TTL. */
export function incrByFloat(ks: Keyspace, db: number, key: Buffer, delta: number): Buffer {
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  let current = 0;
  const bytes = stringOf(old);
  if (bytes !== null) {
    const parsed = parseDouble(bytes);
    if (parsed === undefined) throw notFloat();
    current = parsed;
  }
  const next = current + delta;
  if (!Number.isFinite(next)) throw nanOrInfinity();
  const value = Buffer.from(formatHumanDouble(next), 'latin1');
  ks.putString(db, key, row, value, old?.expireAt ?? 0, old);
  ks.emit(db, { op: 'set', key, value, keepttl: true });
  return value;
}

export function append(ks: Keyspace, db: number, key: Buffer, value: Buffer): number {
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  const bytes = stringOf(old);
  const length = (bytes?.length ?? 0) + value.length;
  if (length > MAX_STRING_BYTES) throw tooBig();
  const next = bytes === null ? value : Buffer.concat([bytes, value], length);
  ks.putString(db, key, row, next, old?.expireAt ?? 0, old);
  ks.emit(db, { op: 'append', key, value });
  return length;
}

export function strlen(ks: Keyspace, db: number, key: Buffer): number {
  return stringOf(ks.lookupRead(db, key))?.length ?? 0;
}

/** GETRANGE with Redis' index rules (negative from the end, clamped, inclusive end). */
export function getRange(ks: Keyspace, db: number, key: Buffer, start: number, end: number): Buffer {
  const bytes = stringOf(ks.lookupRead(db, key));
  if (bytes === null) return Buffer.alloc(0);
  const length = bytes.length;
  if (start < 0 && end < 0 && start > end) return Buffer.alloc(0);
  if (start < 0) start = length + start;
  if (end < 0) end = length + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= length) end = length - 1;
  if (start > end || length === 0) return Buffer.alloc(0);
  return Buffer.from(bytes.subarray(start, end + 1));
}

/** SETRANGE: the new length. `offset` is ≥ 0 (checked by the caller). */
export function setRange(ks: Keyspace, db: number, key: Buffer, offset: number, value: Buffer): number {
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  const bytes = stringOf(old);
  if (value.length === 0) return bytes?.length ?? 0;
  const length = Math.max(bytes?.length ?? 0, offset + value.length);
  if (offset + value.length > MAX_STRING_BYTES) throw tooBig();
  const next = Buffer.alloc(length);
  if (bytes !== null) bytes.copy(next, 0);
  value.copy(next, offset);
  ks.putString(db, key, row, next, old?.expireAt ?? 0, old);
  ks.emit(db, { op: 'setrange', key, offset, value });
  return length;
}

export function getDel(ks: Keyspace, db: number, key: Buffer): Buffer | null {
  const row = ks.row(db, key);
  const old = ks.lookup(db, key, row);
  const bytes = stringOf(old);
  if (bytes === null || old === undefined) return null;
  const value = Buffer.from(bytes);
  ks.removeRecord(db, key, row, old);
  ks.emit(db, { op: 'del', keys: [key] });
  return value;
}

export type GetExOption = { readonly expireAt: number } | { readonly persist: true } | undefined;

/** GETEX: the value (a copy) or null; sets or clears the TTL on the way. */
export function getEx(ks: Keyspace, db: number, key: Buffer, option: GetExOption): Buffer | null {
  const bytes = stringOf(ks.lookupRead(db, key));
  if (bytes === null) return null;
  const value = Buffer.from(bytes);
  if (option === undefined) return value;
  if ('persist' in option) ks.persist(db, key);
  else ks.expireAt(db, key, option.expireAt);
  return value;
}
