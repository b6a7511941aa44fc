/**
 * The RDB reader against files written by a real redis-server 7.0: every
 * type in every encoding Redis picks (listpacks, intsets, quicklists with
 * packed and plain nodes, hash tables, skiplists, LZF and integer strings),
 * TTLs, several databases, a function library and a stream (skipped). The
 * file is fed whole and in random small chunks; both must give what was
 * written.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prng, int } from '../../../../test/support/prng.js';
import { RedisPeer } from '../../../../test/support/redis-peer.js';
import type { RespClient } from '../../../../test/support/resp-client.js';
import { Crc64, crc64 } from './crc64.js';
import { RdbReader, type RdbItem, type RdbValue } from './rdb-reader.js';

type Expected = { db: number; key: string; value: RdbValue; expireAt: number };

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Items of a whole file, fed in chunks of the sizes `chunkSize` picks. */
export function readAll(file: Buffer, chunkSize: () => number = () => file.length): RdbItem[] {
  const reader = new RdbReader();
  const items: RdbItem[] = [];
  let at = 0;
  while (at < file.length) {
    const n = Math.max(1, chunkSize());
    reader.feed(file.subarray(at, at + n));
    at += n;
    for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
  }
  reader.end();
  for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
  assert.ok(reader.done, 'the reader reached EOF');
  return items;
}

/** A value in a canonical form: sets and hashes sorted, zsets by member. */
function canonical(value: RdbValue): unknown {
  const hex = (x: Buffer): string => x.toString('latin1');
  switch (value.type) {
    case 'string':
      return ['string', hex(value.value)];
    case 'list':
      return ['list', value.items.map(hex)];
    case 'set':
      return ['set', value.members.map(hex).sort()];
    case 'hash': {
      const pairs: string[] = [];
      for (let i = 0; i < value.pairs.length; i += 2)
        pairs.push(`${hex(value.pairs[i])}=${hex(value.pairs[i + 1])}`);
      return ['hash', pairs.sort()];
    }
    case 'zset':
      return ['zset', value.members.map((m, i) => `${hex(m)}=${String(value.scores[i])}`).sort()];
  }
}

void describe('RDB reader against redis-server 7.0 files', () => {
  let redis: RedisPeer;
  let client: RespClient;
  const expected: Expected[] = [];
  let file: Buffer;

  before(async () => {
    redis = await RedisPeer.start(['--enable-debug-command', 'yes']);
    client = await redis.client();
    // Elements of 1000+ bytes go to PLAIN quicklist nodes.
    assert.equal(await client.call('DEBUG', 'QUICKLIST-PACKED-THRESHOLD', '1000'), 'OK');
    const rng = prng(7);
    const now = Date.now();
    const put = async (db: number, name: string, value: RdbValue, expireAt = 0): Promise<void> => {
      const key = b(name);
      await client.call('SELECT', db);
      switch (value.type) {
        case 'string':
          await client.call('SET', key, value.value);
          break;
        case 'list':
          for (let i = 0; i < value.items.length; i += 500)
            await client.call('RPUSH', key, ...value.items.slice(i, i + 500));
          break;
        case 'set':
          for (let i = 0; i < value.members.length; i += 500)
            await client.call('SADD', key, ...value.members.slice(i, i + 500));
          break;
        case 'hash':
          for (let i = 0; i < value.pairs.length; i += 500)
            await client.call('HSET', key, ...value.pairs.slice(i, i + 500));
          break;
        case 'zset': {
          const args: (string | Buffer)[] = [];
          value.members.forEach((m, i) => args.push(String(value.scores[i]), m));
          for (let i = 0; i < args.length; i += 500)
            await client.call('ZADD', key, ...args.slice(i, i + 500));
          break;
        }
      }
      if (expireAt !== 0) await client.call('PEXPIREAT', key, expireAt);
      expected.push({ db, key: name, value, expireAt });
    };
    const random = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(rng, 256)));
    const range = (n: number, f: (i: number) => string): Buffer[] =>
      Array.from({ length: n }, (_, i) => b(f(i)));

    // Strings: raw, the three integer encodings, integer-looking but raw, LZF, incompressible, binary, empty.
    await put(0, 'str:raw', { type: 'string', value: b('hello') });
    await put(0, 'str:int8', { type: 'string', value: b('-7') });
    await put(0, 'str:int16', { type: 'string', value: b('12345') });
    await put(0, 'str:int32', { type: 'string', value: b('-2000000000') });
    await put(0, 'str:bigint', { type: 'string', value: b('123456789012') });
    await put(0, 'str:lzf', { type: 'string', value: b('abcdefgh'.repeat(5000)) });
    await put(0, 'str:random', { type: 'string', value: random(3000) });
    await put(0, 'str:empty', { type: 'string', value: b('') });
    await put(0, 'str:ttl', { type: 'string', value: b('soon') }, now + 3_600_000);
    await put(0, random(40).toString('latin1'), { type: 'string', value: random(50) });
    // Lists: one listpack node, many nodes (some LZF-compressed), plain nodes for big elements.
    await put(0, 'list:small', {
      type: 'list',
      items: [b('a'), b('1'), b('-300'), b('70000'), b('5000000000'), b('')],
    });
    await put(0, 'list:big', {
      type: 'list',
      items: range(5000, (i) => `element-${i}-${'x'.repeat(i % 40)}`),
    });
    await put(0, 'list:plain', {
      type: 'list',
      items: [b('small'), b('P'.repeat(5000)), random(2000), b('tail')],
    });
    await put(1, 'list:ttl', { type: 'list', items: range(10, (i) => String(i * 1000)) }, now + 7_200_000);
    // Sets: intsets of each width, a hash table of strings.
    await put(0, 'set:int16', { type: 'set', members: range(20, (i) => String(i - 5)) });
    await put(0, 'set:int32', { type: 'set', members: range(20, (i) => String(i * 100000)) });
    await put(0, 'set:int64', { type: 'set', members: range(20, (i) => String(i * 10_000_000_000)) });
    await put(0, 'set:strings', { type: 'set', members: range(40, (i) => `m${i}`) });
    await put(0, 'set:big', { type: 'set', members: range(2000, (i) => `member:${i}`) });
    // Hashes: listpack, hash table by size and by value length.
    await put(0, 'hash:small', {
      type: 'hash',
      pairs: [b('f1'), b('v1'), b('n'), b('42'), b('neg'), b('-1')],
    });
    await put(0, 'hash:big', {
      type: 'hash',
      pairs: range(2000, (i) => (i % 2 === 0 ? `field${i}` : `value${i}`)),
    });
    await put(
      0,
      'hash:long',
      { type: 'hash', pairs: [b('f'), b('L'.repeat(500)), b('g'), b('1')] },
      now + 60_000,
    );
    // Sorted sets: listpack (integer, fractional, infinite scores), skiplist by size and by member length.
    await put(0, 'zset:small', {
      type: 'zset',
      members: [b('a'), b('b'), b('c'), b('d'), b('e')],
      scores: [1, 2.5, -3, Infinity, -Infinity],
    });
    await put(0, 'zset:big', {
      type: 'zset',
      members: range(1000, (i) => `z${i}`),
      scores: Array.from({ length: 1000 }, (_, i) => i / 7),
    });
    await put(2, 'zset:long', { type: 'zset', members: [b('M'.repeat(100)), b('x')], scores: [0.1, 1e300] });

    await client.call('SELECT', 0);
    await client.call(
      'FUNCTION',
      'LOAD',
      "#!lua name=mylib\nredis.register_function('f', function() return 1 end)",
    );
    await client.call('XADD', 'stream:1', '*', 'a', '1');
    await client.call('XGROUP', 'CREATE', 'stream:1', 'g1', '0');
    await client.call('XREADGROUP', 'GROUP', 'g1', 'c1', 'COUNT', '1', 'STREAMS', 'stream:1', '>');
    assert.equal(await client.call('SAVE'), 'OK');
    file = readFileSync(join(redis.dir, 'dump.rdb'));
  });

  after(async () => {
    client?.close();
    await redis?.stop();
  });

  function check(items: RdbItem[]): void {
    const keys = items.filter((i) => i.kind === 'key');
    assert.equal(keys.length, expected.length);
    const byName = new Map(keys.map((k) => [`${k.db}:${k.key.toString('latin1')}`, k]));
    for (const want of expected) {
      const got = byName.get(`${want.db}:${want.key}`);
      assert.ok(got !== undefined, `key ${want.db}:${want.key} was read`);
      assert.deepEqual(canonical(got.value), canonical(want.value), want.key);
      assert.equal(got.expireAt, want.expireAt, `${want.key} expiry`);
    }
    // Lists keep their order exactly.
    const list = byName.get('0:list:big')!;
    assert.equal(list.value.type, 'list');
    const skipped = items.filter((i) => i.kind === 'skipped');
    assert.deepEqual(
      skipped.map((s) => [s.what, s.key.toString()]),
      [['stream', 'stream:1']],
    );
    const functions = items.filter((i) => i.kind === 'function');
    assert.equal(functions.length, 1);
    const aux = new Map(items.flatMap((i) => (i.kind === 'aux' ? [[i.name, i.value.toString()]] : [])));
    assert.match(aux.get('redis-ver') ?? '', /^7\.0\./);
    assert.deepEqual(items.at(-1), { kind: 'eof', checksum: 'verified' });
  }

  void it('reads the whole file', () => {
    assert.equal(file.toString('latin1', 0, 9), 'REDIS0010');
    check(readAll(file));
  });

  void it('reads the file fed in random small chunks (incremental)', () => {
    const rng = prng(11);
    check(readAll(file, () => 1 + int(rng, 700)));
  });

  void it('reads the file fed one byte at a time, in linear time', () => {
    const started = Date.now();
    check(readAll(file, () => 1));
    assert.ok(Date.now() - started < 20_000);
  });

  void it('verifies the checksum when its 8 bytes come after the EOF opcode, in a later chunk', () => {
    const reader = new RdbReader();
    const items: RdbItem[] = [];
    reader.feed(file.subarray(0, file.length - 8));
    for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
    reader.feed(file.subarray(file.length - 8));
    reader.end();
    for (let item = reader.next(); item !== undefined; item = reader.next()) items.push(item);
    assert.ok(reader.done);
    check(items);
  });

  void it('rejects a flipped byte in the body with a checksum or format error', () => {
    const copy = Buffer.from(file);
    copy[Math.floor(copy.length / 2)] ^= 0x01;
    assert.throws(() => readAll(copy), { name: 'RdbError' });
  });
});

void describe('CRC-64/Jones', () => {
  void it('has the reference check value', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0xe9c6d914c4b8d9can);
  });

  void it("gives the bit-by-bit definition's value, whatever the input's length and its split", () => {
    const bitwise = (bytes: Uint8Array): bigint => {
      let crc = 0n;
      for (const byte of bytes) {
        crc ^= BigInt(byte);
        for (let bit = 0; bit < 8; bit++)
          crc = (crc & 1n) !== 0n ? (crc >> 1n) ^ 0x95ac9329ac4bc9b5n : crc >> 1n;
      }
      return crc;
    };
    const random = prng(64);
    for (let length = 0; length < 70; length++) {
      const bytes = Uint8Array.from({ length }, () => int(random, 256));
      const split = new Crc64();
      for (let at = 0; at < length;) {
        const end = Math.min(length, at + 1 + int(random, 11));
        split.update(bytes, at, end);
        at = end;
      }
      assert.equal(crc64(bytes), bitwise(bytes), `length ${length}`);
      assert.equal(split.value, bitwise(bytes), `length ${length}, split`);
    }
  });
});
