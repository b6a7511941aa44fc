/**
 * Bitmaps: strings read and written bit by bit, bit 0 being the most
 * significant bit of the first byte (Redis' order). Writes journal as the
 * string operations they amount to (SETRANGE of one byte, SET, DEL).
 */
import type { Keyspace } from './keyspace.js';
import { get, set, setRange } from './strings.js';

/** Where a range's bounds count: bytes (the default) or bits. */
export type RangeUnit = 'byte' | 'bit';

/** SETBIT: the bit's previous value. `offset` is checked by the caller. */
export function setBit(ks: Keyspace, db: number, key: Buffer, offset: number, on: boolean): number {
  const bytes = get(ks, db, key);
  const index = Math.floor(offset / 8);
  const mask = 0x80 >> (offset % 8);
  const byte = bytes !== null && index < bytes.length ? bytes[index] : 0;
  const was = (byte & mask) !== 0;
  // As Redis: nothing is written (nor journaled) when neither the bit nor the length changes.
  if (was !== on || bytes === null || index >= bytes.length) {
    setRange(ks, db, key, index, Buffer.from([on ? byte | mask : byte & ~mask]));
  }
  return was ? 1 : 0;
}

export function getBit(ks: Keyspace, db: number, key: Buffer, offset: number): number {
  const bytes = get(ks, db, key);
  const index = Math.floor(offset / 8);
  if (bytes === null || index >= bytes.length) return 0;
  return (bytes[index] & (0x80 >> (offset % 8))) !== 0 ? 1 : 0;
}

/**
 * A GETRANGE-style range (negative from the end, clamped, inclusive) turned
 * into bit positions `[first, last]`; null when it is empty.
 */
function bitRange(length: number, start: number, end: number, unit: RangeUnit): [number, number] | null {
  const total = unit === 'bit' ? length * 8 : length;
  if (start < 0 && end < 0 && start > end) return null;
  if (start < 0) start += total;
  if (end < 0) end += total;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= total) end = total - 1;
  if (start > end) return null;
  return unit === 'bit' ? [start, end] : [start * 8, end * 8 + 7];
}

function bitAt(bytes: Buffer, position: number): number {
  return (bytes[position >> 3] >> (7 - (position & 7))) & 1;
}

/** BITCOUNT: the set bits of the whole string, or of a range. */
export function bitCount(
  ks: Keyspace,
  db: number,
  key: Buffer,
  range?: { start: number; end: number; unit: RangeUnit },
): number {
  const bytes = get(ks, db, key);
  if (bytes === null) return 0;
  const bits =
    range === undefined
      ? bitRange(bytes.length, 0, -1, 'byte')
      : bitRange(bytes.length, range.start, range.end, range.unit);
  if (bits === null) return 0;
  let count = 0;
  let position = bits[0];
  for (; position <= bits[1] && (position & 7) !== 0; position++) count += bitAt(bytes, position);
  for (; position + 7 <= bits[1]; position += 8) count += popcount(bytes[position >> 3]);
  for (; position <= bits[1]; position++) count += bitAt(bytes, position);
  return count;
}

function popcount(byte: number): number {
  let n = byte - ((byte >> 1) & 0x55);
  n = (n & 0x33) + ((n >> 2) & 0x33);
  return (n + (n >> 4)) & 0x0f;
}

/**
 * BITPOS: the first bit equal to `bit` within the range, or -1. A missing key
 * is all zeros; looking for 0 without an explicit end finds the first bit
 * past the string when every bit in the range is 1 (the string's zero padding).
 */
export function bitPos(
  ks: Keyspace,
  db: number,
  key: Buffer,
  bit: 0 | 1,
  range: { start?: number; end?: number; unit: RangeUnit },
): number {
  const bytes = get(ks, db, key);
  if (bytes === null) return bit === 1 ? -1 : 0;
  const bits = bitRange(bytes.length, range.start ?? 0, range.end ?? -1, range.unit);
  if (bits === null) return -1;
  const skip = bit === 1 ? 0x00 : 0xff;
  let position = bits[0];
  while (position <= bits[1]) {
    if ((position & 7) === 0 && position + 7 <= bits[1] && bytes[position >> 3] === skip) {
      position += 8;
      continue;
    }
    if (bitAt(bytes, position) === bit) return position;
    position++;
  }
  return bit === 0 && range.end === undefined ? bits[1] + 1 : -1;
}

export type BitOperation = 'and' | 'or' | 'xor' | 'not';

/** BITOP: stores the result in `destination` (deleting it when empty); the result's length. */
export function bitOp(
  ks: Keyspace,
  db: number,
  operation: BitOperation,
  destination: Buffer,
  keys: readonly Buffer[],
): number {
  // Copies: reading the next key may invalidate a view of the previous one.
  const sources = keys.map((key) => Buffer.from(get(ks, db, key) ?? Buffer.alloc(0)));
  const length = Math.max(0, ...sources.map((source) => source.length));
  const result = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    if (operation === 'not') {
      result[i] = ~sources[0][i] & 0xff;
      continue;
    }
    let byte = i < sources[0].length ? sources[0][i] : 0;
    for (let s = 1; s < sources.length; s++) {
      const other = i < sources[s].length ? sources[s][i] : 0;
      byte = operation === 'and' ? byte & other : operation === 'or' ? byte | other : byte ^ other;
    }
    result[i] = byte;
  }
  if (length === 0) ks.del(db, [destination]);
  else set(ks, db, destination, result);
  return length;
}

/** How BITFIELD's SET and INCRBY treat a result that does not fit the field. */
export type Overflow = 'wrap' | 'sat' | 'fail';

/** One BITFIELD operation on a field of `bits` bits (signed: up to 64, unsigned: up to 63) at bit `offset`. */
export interface BitfieldOp {
  readonly kind: 'get' | 'set' | 'incrby';
  readonly signed: boolean;
  readonly bits: number;
  readonly offset: number;
  /** SET's value, INCRBY's increment (an int64). */
  readonly value: bigint;
  readonly overflow: Overflow;
}

const TWO_64 = 1n << 64n;

/** The field's bits as an unsigned integer; bits past the string's end read as 0. */
function readField(bytes: Buffer, offset: number, bits: number): bigint {
  let value = 0n;
  for (let i = 0; i < bits; i++) {
    const position = offset + i;
    const index = Math.floor(position / 8);
    const bit = index < bytes.length ? (bytes[index] >> (7 - (position % 8))) & 1 : 0;
    value = (value << 1n) | BigInt(bit);
  }
  return value;
}

/** Writes the low `bits` bits of `value` (non-negative) into the field. */
function writeField(bytes: Buffer, offset: number, bits: number, value: bigint): void {
  for (let i = 0; i < bits; i++) {
    const position = offset + i;
    const index = Math.floor(position / 8);
    const mask = 0x80 >> (position % 8);
    if (((value >> BigInt(bits - 1 - i)) & 1n) === 1n) bytes[index] |= mask;
    else bytes[index] &= ~mask;
  }
}

/** `value` modulo 2^bits, in [0, 2^bits). */
function lowBits(value: bigint, bits: number): bigint {
  const size = 1n << BigInt(bits);
  return ((value % size) + size) % size;
}

function asSigned(unsigned: bigint, bits: number): bigint {
  return unsigned >= 1n << BigInt(bits - 1) ? unsigned - (1n << BigInt(bits)) : unsigned;
}

/**
 * `value + increment` in the field's range, as Redis' bitfield overflow
 * checks decide: the result, or null when it overflows under FAIL. (Plain
 * BigInt arithmetic: `BigInt.asUintN` in a hot function crashes Node 20's
 * optimizing compiler, see hyperloglog.ts.)
 */
function fieldResult(op: BitfieldOp, value: bigint, increment: bigint): bigint | null {
  const { bits, overflow } = op;
  if (!op.signed) {
    // Redis holds the value as a uint64: a negative SET value is 2^64 + value.
    const v = value < 0n ? value + TWO_64 : value;
    const max = (1n << BigInt(bits)) - 1n;
    const over = v > max || (increment > 0n && increment > max - v);
    const under = !over && increment < 0n && increment < -v;
    if (!over && !under) return v + increment;
    if (overflow === 'fail') return null;
    if (overflow === 'sat') return over ? max : 0n;
    return lowBits(v + increment, bits);
  }
  const max = (1n << BigInt(bits - 1)) - 1n;
  const min = -max - 1n;
  const sum = value + increment;
  const over = value > max || sum > max;
  const under = !over && (value < min || sum < min);
  if (!over && !under) return sum;
  if (overflow === 'fail') return null;
  if (overflow === 'sat') return over ? max : min;
  return asSigned(lowBits(sum, bits), bits);
}

/**
 * BITFIELD: runs `ops` in order on the string at `key` (missing: empty); one
 * result per operation — GET the field, SET the field's previous value,
 * INCRBY its new value, null for a write refused by OVERFLOW FAIL. With any
 * SET or INCRBY the string first grows to the farthest field written, as in
 * Redis. Journaled as a SETRANGE of the bytes that changed.
 */
export function bitfield(
  ks: Keyspace,
  db: number,
  key: Buffer,
  ops: readonly BitfieldOp[],
): (bigint | null)[] {
  const current = get(ks, db, key);
  let farthest = -1;
  for (const op of ops) if (op.kind !== 'get') farthest = Math.max(farthest, op.offset + op.bits - 1);
  const length = Math.max(current?.length ?? 0, farthest < 0 ? 0 : Math.floor(farthest / 8) + 1);
  const bytes = Buffer.alloc(length);
  current?.copy(bytes);
  const results: (bigint | null)[] = [];
  for (const op of ops) {
    const raw = readField(bytes, op.offset, op.bits);
    const old = op.signed ? asSigned(raw, op.bits) : raw;
    if (op.kind === 'get') {
      results.push(old);
      continue;
    }
    const next = op.kind === 'set' ? fieldResult(op, op.value, 0n) : fieldResult(op, old, op.value);
    if (next !== null) writeField(bytes, op.offset, op.bits, lowBits(next, op.bits));
    results.push(next === null ? null : op.kind === 'set' ? old : next);
  }
  const before = current ?? Buffer.alloc(0);
  let first = 0;
  while (first < before.length && bytes[first] === before[first]) first++;
  let last = bytes.length - 1;
  while (last >= first && last < before.length && bytes[last] === before[last]) last--;
  if (first <= last) setRange(ks, db, key, first, bytes.subarray(first, last + 1));
  return results;
}
