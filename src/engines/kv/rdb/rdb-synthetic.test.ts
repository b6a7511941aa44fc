/**
 * Hand-built RDB files for the encodings a Redis 7.0 master never writes but
 * still loads (ziplists, zipmaps, quicklist v1, ASCII zset scores, second
 * expiries) and for every listpack entry encoding; then property tests:
 * truncated and corrupted files must fail with an RdbError, never hang,
 * crash, or throw anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { int, prng } from '../../../../test/support/prng.js';
import { Crc64 } from './crc64.js';
import { RdbError, RdbReader, type RdbItem } from './rdb-reader.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');
const bytes = (...xs: number[]): Buffer => Buffer.from(xs);

function len(n: number): Buffer {
  if (n < 64) return bytes(n);
  if (n < 16384) return bytes(0x40 | (n >> 8), n & 0xff);
  const out = Buffer.alloc(5);
  out[0] = 0x80;
  out.writeUInt32BE(n, 1);
  return out;
}

const str = (value: Buffer | string): Buffer => {
  const raw = typeof value === 'string' ? b(value) : value;
  return Buffer.concat([len(raw.length), raw]);
};

type Entry = Buffer | number | bigint;

function ziplist(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  let prev = 0;
  for (const entry of entries) {
    const prevlen = prev < 254 ? bytes(prev) : Buffer.concat([bytes(0xfe), u32le(prev)]);
    let body: Buffer;
    if (Buffer.isBuffer(entry)) {
      const n = entry.length;
      const header =
        n < 64
          ? bytes(n)
          : n < 16384
            ? bytes(0x40 | (n >> 8), n & 0xff)
            : Buffer.concat([bytes(0x80), u32be(n)]);
      body = Buffer.concat([header, entry]);
    } else {
      const v = BigInt(entry);
      if (v >= 0n && v <= 12n) body = bytes(0xf1 + Number(v));
      else if (v >= -128n && v <= 127n) body = Buffer.concat([bytes(0xfe), intLE(v, 1)]);
      else if (v >= -32768n && v <= 32767n) body = Buffer.concat([bytes(0xc0), intLE(v, 2)]);
      else if (v >= -(1n << 23n) && v < 1n << 23n) body = Buffer.concat([bytes(0xf0), intLE(v, 3)]);
      else if (v >= -(1n << 31n) && v < 1n << 31n) body = Buffer.concat([bytes(0xd0), intLE(v, 4)]);
      else body = Buffer.concat([bytes(0xe0), intLE(v, 8)]);
    }
    const entryBytes = Buffer.concat([prevlen, body]);
    prev = entryBytes.length;
    parts.push(entryBytes);
  }
  const content = Buffer.concat(parts);
  const total = 10 + content.length + 1;
  return Buffer.concat([u32le(total), u32le(total - 1 - prev), u16le(entries.length), content, bytes(0xff)]);
}

function listpack(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    let body: Buffer;
    if (Buffer.isBuffer(entry)) {
      const n = entry.length;
      const header =
        n < 64
          ? bytes(0x80 | n)
          : n < 4096
            ? bytes(0xe0 | (n >> 8), n & 0xff)
            : Buffer.concat([bytes(0xf0), u32le(n)]);
      body = Buffer.concat([header, entry]);
    } else {
      const v = BigInt(entry);
      if (v >= 0n && v <= 127n) body = bytes(Number(v));
      else if (v >= -4096n && v <= 4095n) {
        const u = Number(v < 0n ? v + 8192n : v);
        body = bytes(0xc0 | (u >> 8), u & 0xff);
      } else if (v >= -32768n && v <= 32767n) body = Buffer.concat([bytes(0xf1), intLE(v, 2)]);
      else if (v >= -(1n << 23n) && v < 1n << 23n) body = Buffer.concat([bytes(0xf2), intLE(v, 3)]);
      else if (v >= -(1n << 31n) && v < 1n << 31n) body = Buffer.concat([bytes(0xf3), intLE(v, 4)]);
      else body = Buffer.concat([bytes(0xf4), intLE(v, 8)]);
    }
    const size = body.length;
    const backlen = size <= 127 ? 1 : size < 16383 ? 2 : size < 2097151 ? 3 : size < 268435455 ? 4 : 5;
    parts.push(body, Buffer.alloc(backlen, 1));
  }
  const content = Buffer.concat(parts);
  const total = 6 + content.length + 1;
  return Buffer.concat([u32le(total), u16le(entries.length), content, bytes(0xff)]);
}

function zipmap(pairs: string[]): Buffer {
  const parts: Buffer[] = [bytes(pairs.length / 2)];
  for (let i = 0; i < pairs.length; i += 2) {
    parts.push(
      bytes(pairs[i].length),
      b(pairs[i]),
      bytes(pairs[i + 1].length, 2),
      b(pairs[i + 1]),
      bytes(0, 0),
    );
  }
  parts.push(bytes(0xff));
  return Buffer.concat(parts);
}

function intset(width: 2 | 4 | 8, values: bigint[]): Buffer {
  return Buffer.concat([u32le(width), u32le(values.length), ...values.map((v) => intLE(v, width))]);
}

function u32le(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(n);
  return out;
}
function u32be(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}
function u16le(n: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16LE(n);
  return out;
}
function intLE(v: bigint, width: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigInt64LE(v);
  return out.subarray(0, width);
}

/** A whole file: header, body, EOF, and a real (or zero) checksum. */
function rdbFile(version: number, body: Buffer[], checksum = true): Buffer {
  const content = Buffer.concat([b(`REDIS${String(version).padStart(4, '0')}`), ...body, bytes(0xff)]);
  if (version < 5) return content;
  const crc = new Crc64();
  crc.update(content);
  const sum = Buffer.alloc(8);
  if (checksum) sum.writeBigUInt64LE(crc.value);
  return Buffer.concat([content, sum]);
}

function readAll(file: Buffer, chunk = file.length): RdbItem[] {
  const reader = new RdbReader();
  const items: RdbItem[] = [];
  for (let at = 0; at < file.length; at += chunk) {
    reader.feed(file.subarray(at, at + chunk));
    for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
  }
  reader.end();
  for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
  return items;
}

const text = (items: RdbItem[]): unknown[] =>
  items.flatMap((item) => {
    if (item.kind !== 'key') return [];
    const v = item.value;
    const list = (xs: Buffer[]): string[] => xs.map((x) => x.toString('latin1'));
    const value =
      v.type === 'string'
        ? v.value.toString('latin1')
        : v.type === 'list'
          ? list(v.items)
          : v.type === 'set'
            ? list(v.members)
            : v.type === 'hash'
              ? list(v.pairs)
              : v.members.map((m, i) => `${m.toString('latin1')}=${v.scores[i]}`);
    return [[item.db, item.key.toString('latin1'), v.type, value, item.expireAt]];
  });

const INTS = [0n, 12n, 13n, -1n, 127n, 128n, -128n, -4096n, 4095n, 4096n, 32767n, -32768n, 70000n, -8388608n];
const BIG_INTS = [2147483647n, -2147483648n, 9007199254740993n, -9223372036854775808n];

/** A file using every legacy and compact encoding. */
function legacyBody(): Buffer[] {
  const long = b('L'.repeat(5000));
  const mid = b('M'.repeat(300));
  return [
    bytes(0xfa),
    str('redis-ver'),
    str('6.2.0'),
    bytes(0xfe),
    len(0),
    bytes(0xfb),
    len(9),
    len(1),
    // Type 0 with the integer encodings and a key expiring in seconds (0xFD).
    bytes(0xfd),
    u32le(2000000000),
    bytes(0),
    str('secs'),
    bytes(0xc0, 0x85),
    bytes(0),
    str('i16'),
    bytes(0xc1),
    intLE(-1234n, 2),
    bytes(0),
    str('i32'),
    bytes(0xc2),
    intLE(123456789n, 4),
    // Type 1 (plain list), 3 (ASCII scores), 9 (zipmap), 10/12/13 (ziplists), 14 (quicklist v1).
    bytes(1),
    str('list1'),
    len(2),
    str('a'),
    str('b'),
    bytes(3),
    str('zset1'),
    len(4),
    str('a'),
    bytes(3),
    b('1.5'),
    str('n'),
    bytes(253),
    str('p'),
    bytes(254),
    str('m'),
    bytes(255),
    bytes(9),
    str('zipmap'),
    str(zipmap(['f1', 'v1', 'field2', 'value2'])),
    bytes(10),
    str('zl-list'),
    str(ziplist([b('x'), ...INTS, ...BIG_INTS, mid, long])),
    bytes(12),
    str('zl-zset'),
    str(ziplist([b('one'), 1n, b('half'), b('0.5'), b('inf'), b('inf')])),
    bytes(13),
    str('zl-hash'),
    str(ziplist([b('f'), b('v'), b('n'), 7n])),
    bytes(14),
    str('quick1'),
    len(2),
    str(ziplist([b('a'), 1n])),
    str(ziplist([b('b'), 2n])),
    // IDLE and FREQ before keys; intsets of each width; a 7.2 listpack set.
    bytes(0xfe),
    len(5),
    bytes(0xf8),
    len(1000),
    bytes(11),
    str('is2'),
    str(intset(2, [-2n, 5n])),
    bytes(0xf9),
    bytes(3),
    bytes(11),
    str('is4'),
    str(intset(4, [-70000n, 70000n])),
    bytes(11),
    str('is8'),
    str(intset(8, [-(1n << 40n), 1n << 40n])),
    bytes(20),
    str('lp-set'),
    str(listpack([b('s'), 5n])),
    // Every listpack entry encoding, in a hash and a quicklist 2 node.
    bytes(16),
    str('lp-hash'),
    str(listpack([b('a'), mid, b('b'), long, b('c'), 4095n])),
    bytes(18),
    str('quick2'),
    len(2),
    len(2),
    str(listpack([b('y'), ...INTS, ...BIG_INTS, mid, long])),
    len(1),
    str(b('plain node')),
    // A module value (skipped) and module aux data.
    bytes(0xf7),
    len(12345),
    len(2),
    len(1),
    len(5),
    str('aux'),
    len(0),
    bytes(7),
    str('mod-key'),
    len(54321),
    len(1),
    len(7),
    len(3),
    u32le(0),
    len(4),
    Buffer.alloc(8),
    len(5),
    str('data'),
    len(0),
  ];
}

void describe('RDB reader: encodings Redis 7.0 loads but does not write', () => {
  void it('reads ziplists, zipmaps, quicklist v1, ASCII scores, intsets and every listpack encoding', () => {
    const file = rdbFile(9, legacyBody());
    const items = readAll(file);
    const ints = [...INTS, ...BIG_INTS].map(String);
    assert.deepEqual(text(items), [
      [0, 'secs', 'string', '-123', 2000000000 * 1000],
      [0, 'i16', 'string', '-1234', 0],
      [0, 'i32', 'string', '123456789', 0],
      [0, 'list1', 'list', ['a', 'b'], 0],
      [0, 'zset1', 'zset', ['a=1.5', 'n=NaN', 'p=Infinity', 'm=-Infinity'], 0],
      [0, 'zipmap', 'hash', ['f1', 'v1', 'field2', 'value2'], 0],
      [0, 'zl-list', 'list', ['x', ...ints, 'M'.repeat(300), 'L'.repeat(5000)], 0],
      [0, 'zl-zset', 'zset', ['one=1', 'half=0.5', 'inf=Infinity'], 0],
      [0, 'zl-hash', 'hash', ['f', 'v', 'n', '7'], 0],
      [0, 'quick1', 'list', ['a', '1', 'b', '2'], 0],
      [5, 'is2', 'set', ['-2', '5'], 0],
      [5, 'is4', 'set', ['-70000', '70000'], 0],
      [5, 'is8', 'set', [String(-(1n << 40n)), String(1n << 40n)], 0],
      [5, 'lp-set', 'set', ['s', '5'], 0],
      [5, 'lp-hash', 'hash', ['a', 'M'.repeat(300), 'b', 'L'.repeat(5000), 'c', '4095'], 0],
      [5, 'quick2', 'list', ['y', ...ints, 'M'.repeat(300), 'L'.repeat(5000), 'plain node'], 0],
    ]);
    assert.deepEqual(
      items.filter((i) => i.kind === 'skipped').map((i) => [i.what, i.key.toString()]),
      [['module', 'mod-key']],
    );
    assert.deepEqual(items.at(-1), { kind: 'eof', checksum: 'verified' });
    // The same one byte at a time.
    assert.deepEqual(text(readAll(file, 1)), text(items));
  });

  void it('accepts a zero checksum and files older than RDB 5 (no checksum)', () => {
    assert.deepEqual(readAll(rdbFile(9, legacyBody(), false)).at(-1), { kind: 'eof', checksum: 'absent' });
    assert.equal(text(readAll(rdbFile(4, [bytes(0), str('k'), str('v')]))).length, 1);
  });

  void it('names what it refuses', () => {
    assert.throws(() => readAll(b('REDIS0013')), /unsupported RDB version "0013"/);
    assert.throws(() => readAll(b('HELLO0010')), /not an RDB file/);
    assert.throws(() => readAll(rdbFile(10, [bytes(42), str('k')])), /unknown value type 42/);
    assert.throws(() => readAll(rdbFile(10, [bytes(6), str('k')])), /pre-GA module/);
    assert.throws(() => readAll(rdbFile(10, [bytes(0), str('k')])), { name: 'RdbError' });
  });
});

void describe('RDB reader: property tests on bad input', () => {
  const file = rdbFile(10, legacyBody());

  /** Reads `input` whole; only RdbError may come out, and quickly. */
  function outcome(input: Buffer, chunk: number): 'ok' | 'error' {
    const started = Date.now();
    try {
      readAll(input, chunk);
      return 'ok';
    } catch (err) {
      if (!(err instanceof RdbError)) throw err;
      return 'error';
    } finally {
      assert.ok(Date.now() - started < 2000, 'no input takes long');
    }
  }

  void it('every truncation of a file is an RdbError', () => {
    const rng = prng(3);
    for (let cut = 0; cut < file.length; cut++) {
      assert.equal(outcome(file.subarray(0, cut), 1 + int(rng, 64)), 'error', `cut at ${cut}`);
    }
  });

  void it('corrupted bytes give a result or an RdbError, nothing else', () => {
    const rng = prng(5);
    for (let round = 0; round < 3000; round++) {
      const copy = Buffer.from(file);
      const flips = 1 + int(rng, 4);
      for (let i = 0; i < flips; i++) copy[9 + int(rng, copy.length - 9)] = int(rng, 256);
      outcome(copy, 1 + int(rng, 512));
    }
  });

  void it('random garbage after a valid header is an RdbError', () => {
    const rng = prng(9);
    for (let round = 0; round < 2000; round++) {
      const garbage = Buffer.from(Array.from({ length: int(rng, 300) }, () => int(rng, 256)));
      const input = Buffer.concat([b('REDIS0010'), garbage]);
      // A garbage tail could in theory be a valid file; it never is with this seed.
      assert.equal(outcome(input, 1 + int(rng, 100)), 'error');
    }
  });
});
