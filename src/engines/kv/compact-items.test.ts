/**
 * Compact collections: the in-record rows answer exactly as LMDB would, and
 * a collection moves to rows of its own once it outgrows the limits, with
 * nothing lost and nothing left behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Storage } from '../../storage/environment.js';
import { Journal } from '../journal/journal.js';
import { listRow, memberRow, scoreRow, uidEnd, uidPrefix } from './codec.js';
import { COMPACT_MAX_ELEMENTS, CompactItems, type ItemRange } from './compact-items.js';
import { hgetall, hset } from './hashes.js';
import { Keyspace } from './keyspace.js';
import { lrange, lset, push } from './lists.js';
import { insertZSet, zadd, zrangeByRank, zrangeByScore } from './zsets.js';

void describe('compact collections', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-compact-'));
  const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 0 });
  const ks = new Keyspace(storage, journal, { deleteExpired: true });
  const reference = storage.root.openDB<Buffer, Buffer>('compact-reference', {
    encoding: 'binary',
    keyEncoding: 'binary',
  });
  const b = (text: string): Buffer => Buffer.from(text);
  const itemRows = (): number => ks.items.getCount({});

  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  void it('answers gets and ranges (forward, reverse, limited) as an LMDB table of the same rows', async () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const rowFor = (i: number): Buffer => {
      const kind = i % 3;
      if (kind === 0) return memberRow(0, b(`m${i}`));
      if (kind === 1) return listRow(0, i - 20);
      return scoreRow(0, (i % 7) - 3.5, b(`z${i}`));
    };
    let compact = new CompactItems();
    for (let round = 0; round < 40; round++) {
      await storage.write(() => {
        for (let op = 0; op < 8; op++) {
          const row = rowFor(random(60));
          if (random(3) === 0) assert.equal(compact.remove(row), reference.removeSync(row));
          else {
            const value = b(`v${random(1000)}`);
            compact.put(row, value);
            reference.putSync(row, value);
          }
        }
      });
      compact = CompactItems.decode(compact.encode());
      const bounds = [undefined, uidPrefix(0), uidEnd(0), rowFor(random(60)), rowFor(random(60))];
      for (const start of bounds) {
        for (const end of bounds) {
          for (const reverse of [false, true]) {
            const unlimited: ItemRange = {
              ...(start === undefined ? {} : { start }),
              ...(end === undefined ? {} : { end }),
              reverse,
            };
            const range: ItemRange = { ...unlimited, limit: 1 + random(8) };
            const same = (x: Iterable<{ key: Buffer; value: Buffer }>): string[] =>
              [...x].map((r) => `${r.key.toString('hex')}=${r.value.toString()}`);
            assert.deepEqual(same(compact.getRange(range)), same(reference.getRange(range)));
            assert.equal(compact.getCount(unlimited), reference.getCount(unlimited));
          }
        }
      }
      for (let i = 0; i < 60; i++) {
        assert.deepEqual(compact.getBinary(rowFor(i)), reference.getBinary(rowFor(i)));
      }
    }
  });

  void it('built from rows at once, it holds what the same puts would (a row given twice keeps its last value)', () => {
    const rows = [
      memberRow(0, b('b')),
      listRow(0, 3),
      memberRow(0, b('a')),
      memberRow(0, b('b')),
      scoreRow(0, -1, b('z')),
    ];
    const values = [b('first'), b('x'), b('y'), b('last'), b('')];
    const put = new CompactItems();
    rows.forEach((row, i) => put.put(row, values[i]));
    const built = CompactItems.fromRows(rows, values);
    assert.equal(built.size, 4);
    assert.deepEqual(built.encode(), put.encode());
    assert.equal(built.getBinary(memberRow(0, b('b')))?.toString(), 'last');
    assert.equal(built.doesExist(memberRow(0, b('c'))), false);
  });

  void it('built from rows at once, small or large, with rows that prefix others, it matches the same puts', () => {
    let seed = 7;
    const next = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let round = 0; round < 200; round++) {
      const count = 1 + next(40);
      // Short rows from a small alphabet: repeats, and rows that are prefixes of others.
      const rows = Array.from({ length: count }, () =>
        Buffer.concat([uidPrefix(0), b('ab'.repeat(next(3)) + 'abc'.slice(0, next(4)))]),
      );
      const values = rows.map((_, i) => b(`v${i}`));
      const put = new CompactItems();
      rows.forEach((row, i) => put.put(row, values[i]));
      assert.deepEqual(CompactItems.fromRows(rows, values).encode(), put.encode(), `round ${round}`);
    }
  });

  void it('loads a sorted set given a member twice as ZADD would: the last score wins', async () => {
    await ks.write(() => assert.ok(insertZSet(ks, 0, b('z-twice'), [1, 2, 3], [b('m'), b('n'), b('m')], 0)));
    assert.deepEqual(
      zrangeByRank(ks, 0, b('z-twice'), 0, -1, false).map((m) => `${m.member.toString()}=${m.score}`),
      ['n=2', 'm=3'],
    );
  });

  void it('keeps a small hash in its record and moves a grown one to rows, every field intact', async () => {
    const before = itemRows();
    await ks.write(() => hset(ks, 0, b('h'), [b('a'), b('1'), b('b'), b('2')]));
    assert.equal(itemRows(), before, 'a small hash writes no element rows');
    const fields: Buffer[] = [];
    for (let i = 0; i < COMPACT_MAX_ELEMENTS; i++) fields.push(b(`f${i}`), b(`v${i}`));
    await ks.write(() => hset(ks, 0, b('h'), fields));
    assert.equal(itemRows(), before + COMPACT_MAX_ELEMENTS + 2);
    const all = new Map(hgetall(ks, 0, b('h')).map(([f, v]) => [f.toString(), v.toString()]));
    assert.equal(all.size, COMPACT_MAX_ELEMENTS + 2);
    assert.equal(all.get('a'), '1');
    assert.equal(all.get(`f${COMPACT_MAX_ELEMENTS - 1}`), `v${COMPACT_MAX_ELEMENTS - 1}`);
    await ks.write(() => ks.del(0, [b('h')]));
    assert.equal(itemRows(), before, 'deleting the grown hash removes its rows');
  });

  void it('moves a collection whose values outgrow the byte limit, and keeps lists and sorted sets in order', async () => {
    const before = itemRows();
    await ks.write(() => push(ks, 0, b('l'), 'right', [b('x'), b('y')]));
    await ks.write(() => push(ks, 0, b('l'), 'left', [b('w')]));
    await ks.write(() => lset(ks, 0, b('l'), 1, b('X')));
    assert.deepEqual(lrange(ks, 0, b('l'), 0, -1).map(String), ['w', 'X', 'y']);
    assert.equal(itemRows(), before);
    await ks.write(() => push(ks, 0, b('l'), 'right', [Buffer.alloc(1500, 0x61)]));
    assert.equal(itemRows(), before + 4);
    assert.deepEqual(
      lrange(ks, 0, b('l'), 0, 2).map(String),
      ['w', 'X', 'y'],
      'the moved list keeps its positions',
    );

    await ks.write(() => zadd(ks, 0, b('z'), [3, 1, 2], [b('c'), b('a'), b('b')]));
    assert.deepEqual(
      zrangeByRank(ks, 0, b('z'), 0, -1, true).map((m) => m.member.toString()),
      ['c', 'b', 'a'],
    );
    assert.deepEqual(
      zrangeByScore(ks, 0, b('z'), { value: 1, exclusive: true }, { value: 3, exclusive: false }, true).map(
        (m) => m.member.toString(),
      ),
      ['c', 'b'],
    );
    await ks.write(() => ks.rename(0, b('l'), b('z')));
    assert.equal(itemRows(), before + 4, 'renaming onto a compact key moves the rows only');
  });
});
