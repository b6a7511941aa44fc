/**
 * Loading an RDB into the keyspace: everything replaced at once, expired
 * keys kept, TTLs restored, and a corrupt or truncated file changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Storage } from '../../../storage/environment.js';
import { Journal } from '../../journal/journal.js';
import { hgetall } from '../hashes.js';
import { Keyspace } from '../keyspace.js';
import { get, set } from '../strings.js';
import { otherSet } from '../table-sets.js';
import { RdbLoad, replaceKeyspaceWithRdb } from './rdb-loader.js';

const bytes = (...xs: number[]): Buffer => Buffer.from(xs);
const str = (text: string): Buffer => Buffer.concat([bytes(text.length), Buffer.from(text, 'latin1')]);
const ms = (at: number): Buffer => {
  const out = Buffer.alloc(8);
  out.writeBigInt64LE(BigInt(at));
  return out;
};

/** RDB 10, zero checksum: db 0 `fresh` (string), `gone` (expired string), db 3 hash `h` with a TTL. */
function file(now: number): Buffer {
  return Buffer.concat([
    Buffer.from('REDIS0010'),
    bytes(0xfe, 0),
    bytes(0),
    str('fresh'),
    str('new'),
    bytes(0xfc),
    ms(now - 1000),
    bytes(0),
    str('gone'),
    str('old'),
    bytes(0xfe, 3),
    bytes(0xfc),
    ms(now + 60_000),
    bytes(4),
    str('h'),
    bytes(1),
    str('f'),
    str('v'),
    bytes(0xff),
    Buffer.alloc(8),
  ]);
}

/** A replica's keyspace (expired keys hidden) in a fresh data directory, removed after the suite. */
function freshKeyspace(prefix: string): { storage: Storage; journal: Journal; ks: Keyspace } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 0 });
  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { storage, journal, ks: new Keyspace(storage, journal, { deleteExpired: false }) };
}

const k = (text: string): Buffer => Buffer.from(text);

void describe('replaceKeyspaceWithRdb', () => {
  const { journal, ks } = freshKeyspace('doppel-rdb-load-');

  void it('a truncated or corrupt file, or one with a key twice, leaves the keyspace as it was', async () => {
    await ks.write(() => set(ks, 0, k('before'), k('1')));
    const good = file(Date.now());
    const twice = Buffer.concat([
      Buffer.from('REDIS0010'),
      bytes(0xfe, 0),
      ...[bytes(0), str('dup'), str('a'), bytes(4), str('dup'), bytes(1), str('f'), str('v')],
      bytes(0xff),
      Buffer.alloc(8),
    ]);
    for (const bad of [
      good.subarray(0, good.length - 12),
      Buffer.concat([good.subarray(0, 20), bytes(42)]),
      twice,
    ]) {
      await assert.rejects(replaceKeyspaceWithRdb(ks, [bad]), { name: 'RdbError' });
      assert.equal(get(ks, 0, k('before'))?.toString(), '1');
      assert.equal(ks.dbSize(0), 1);
    }
  });

  void it('a good file replaces every database at once, expired keys and TTLs included', async () => {
    const now = Date.now();
    const summary = await replaceKeyspaceWithRdb(ks, [file(now)]);
    assert.equal(summary.keys, 3);
    assert.equal(get(ks, 0, k('before')), null);
    assert.equal(get(ks, 0, k('fresh'))?.toString(), 'new');
    // Hidden (a replica waits for its primary's DEL) but stored.
    assert.equal(get(ks, 0, k('gone')), null);
    assert.equal(ks.dbSize(0), 2);
    assert.deepEqual(
      hgetall(ks, 3, k('h')).map(([f, v]) => [f.toString(), v.toString()]),
      [['f', 'v']],
    );
    assert.equal(ks.expireTime(3, k('h')), now + 60_000);
    assert.deepEqual(ks.counts()[3], { keys: 1, expires: 1 });
  });

  void it("reports the key counts the file's RESIZEDB records announced (Redis writes each database's)", async () => {
    const announcing = (db0: number, db3: number): Buffer =>
      Buffer.concat([
        Buffer.from('REDIS0010'),
        ...[bytes(0xfe, 0), bytes(0xfb, db0, 0), bytes(0), str('a'), str('1'), bytes(0), str('b'), str('2')],
        ...[bytes(0xfe, 3), bytes(0xfb, db3, 0), bytes(0), str('c'), str('3')],
        bytes(0xff),
        Buffer.alloc(8),
      ]);
    const exact = await replaceKeyspaceWithRdb(ks, [announcing(2, 1)]);
    assert.deepEqual([exact.keys, exact.announcedKeys], [3, 3]);
    // Reported, not judged here: the replica link flags the difference.
    const short = await replaceKeyspaceWithRdb(ks, [announcing(3, 1)]);
    assert.deepEqual([short.keys, short.announcedKeys], [3, 4]);
    assert.equal((await replaceKeyspaceWithRdb(ks, [file(Date.now())])).announcedKeys, null);
  });

  void it('journals every key', async () => {
    const head = journal.head;
    await replaceKeyspaceWithRdb(ks, [file(Date.now())]);
    // flushall, then fresh, gone, and h with its TTL.
    assert.ok(journal.head - head >= 4);
  });
});

void describe('a staged RDB load', () => {
  const { storage, journal, ks: live } = freshKeyspace('doppel-rdb-stage-');

  /** `count` string keys `k0`… in db 0, each written with its own number. */
  function manyKeys(count: number): Buffer {
    const records = Array.from({ length: count }, (_, i) => [bytes(0), str(`k${i}`), str(String(i))]).flat();
    return Buffer.concat([
      Buffer.from('REDIS0010'),
      bytes(0xfe, 0),
      ...records,
      bytes(0xff),
      Buffer.alloc(8),
    ]);
  }

  void it('fills the other tables in steps, unseen and unjournaled, while the live keyspace takes writes; adopting swaps at once', async () => {
    await live.write(() => set(live, 0, k('old'), k('1')));
    assert.equal(live.tables, 0);
    const staged = new Keyspace(storage, journal, { deleteExpired: false, tables: 1 });
    // Leftovers of an earlier load are cleared by the first step.
    await staged.stage(() => set(staged, 0, k('leftover'), k('x')));
    const head = journal.head;
    const load = new RdbLoad(staged, [manyKeys(5000)], {});
    let steps = 0;
    let done = await staged.stage(() => {
      staged.clearTables();
      steps++;
      return load.step(() => true);
    });
    while (!done) {
      // The live keyspace writes between the steps, and does not see the staged keys.
      await live.write(() => set(live, 0, k('old'), k(String(steps))));
      assert.equal(get(live, 0, k('k0')), null);
      done = await staged.stage(() => {
        steps++;
        return load.step(() => true);
      });
    }
    assert.ok(steps > 2, `steps: ${steps}`);
    assert.equal(load.summary().keys, 5000);
    assert.equal(journal.head, head + steps - 1, 'only the live writes were journaled');
    assert.equal(live.dbSize(0), 1);

    let ran = 0;
    await live.adoptStaged(staged.tables, staged.cachedCounters(), () => ran++);
    assert.equal(ran, 1);
    assert.equal(live.tables, 1);
    assert.equal(live.dbSize(0), 5000);
    assert.equal(get(live, 0, k('old')), null);
    assert.equal(get(live, 0, k('leftover')), null);
    assert.equal(get(live, 0, k('k4999'))?.toString(), '4999');
    // The replaced tables were emptied; a keyspace opened now (a restart) uses the new ones.
    const reopened = new Keyspace(storage, journal, { deleteExpired: false });
    assert.equal(reopened.tables, 1);
    assert.equal(reopened.dbSize(0), 5000);
    const previous = new Keyspace(storage, journal, { deleteExpired: false, tables: 0 });
    assert.equal(previous.dbSize(0), 0);
    // Writes go to the new tables.
    await live.write(() => set(live, 0, k('after'), k('y')));
    assert.equal(get(reopened, 0, k('after'))?.toString(), 'y');
  });

  void it('a load cut short leaves rows that the next start clears, the live keyspace untouched', async () => {
    const size = live.dbSize(0);
    const staged = new Keyspace(storage, journal, { deleteExpired: false, tables: otherSet(live.tables) });
    const load = new RdbLoad(staged, [manyKeys(3000)], {});
    await staged.stage(() => load.step(() => true));
    assert.ok(staged.dbSize(0) > 0);
    // As at the next start: a keyspace opened anew.
    const started = new Keyspace(storage, journal, { deleteExpired: false });
    assert.equal(await started.clearUnfinishedLoad(), true);
    const reopened = new Keyspace(storage, journal, { deleteExpired: false, tables: otherSet(live.tables) });
    assert.equal(reopened.dbSize(0), 0);
    assert.equal(started.dbSize(0), size);
    assert.equal(await started.clearUnfinishedLoad(), false);
  });

  void it('refuses to stage into the live tables or adopt them', async () => {
    await assert.rejects(
      live.stage(() => undefined),
      /live keyspace tables/,
    );
    await assert.rejects(
      live.adoptStaged(live.tables, live.cachedCounters(), () => undefined),
      /are the live ones/,
    );
  });
});
