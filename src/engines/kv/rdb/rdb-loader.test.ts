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
import { replaceKeyspaceWithRdb } from './rdb-loader.js';

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

void describe('replaceKeyspaceWithRdb', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-rdb-load-'));
  const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 0 });
  const ks = new Keyspace(storage, journal, { deleteExpired: false });
  const k = (text: string): Buffer => Buffer.from(text);

  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

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

  void it('journals every key, or with newHistory nothing (newHistory runs in the same write)', async () => {
    const journaled = async (newHistory?: () => void): Promise<number> => {
      const head = journal.head;
      await replaceKeyspaceWithRdb(ks, [file(Date.now())], newHistory === undefined ? {} : { newHistory });
      return journal.head - head;
    };
    // flushall, then fresh, gone, and h with its TTL.
    assert.ok((await journaled()) >= 4);
    let ranInWrite = false;
    assert.equal(await journaled(() => (ranInWrite = ks.inWrite)), 0);
    assert.ok(ranInWrite, 'newHistory runs inside the load write');
    assert.equal(get(ks, 0, k('fresh'))?.toString(), 'new');
    // A failed load runs no newHistory.
    let ran = false;
    await assert.rejects(replaceKeyspaceWithRdb(ks, [bytes(1, 2, 3)], { newHistory: () => (ran = true) }), {
      name: 'RdbError',
    });
    assert.equal(ran, false);
  });
});
