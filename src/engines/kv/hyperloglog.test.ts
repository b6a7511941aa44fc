/**
 * HyperLogLog strings byte for byte as redis-server 7.0 writes them (the
 * bytes below are what it answered to GET). The side-by-side e2e test
 * compares many more against a running redis-server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Storage } from '../../storage/environment.js';
import { Journal } from '../journal/journal.js';
import { pfadd, pfcount, pfmerge } from './hyperloglog.js';
import { Keyspace } from './keyspace.js';
import { get } from './strings.js';

const HEADER_STALE = '48594c4c01000000000000000000008' + '0';
const k = (text: string): Buffer => Buffer.from(text);

void describe('HyperLogLog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-hll-'));
  const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 0 });
  const ks = new Keyspace(storage, journal, { deleteExpired: true });
  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const hex = (key: string): string | undefined => get(ks, 0, k(key))?.toString('hex');

  void it("creates Redis' empty sparse HLL, then adds to it as Redis does", async () => {
    assert.equal(await ks.write(() => pfadd(ks, 0, k('h'), [])), 1);
    assert.equal(hex('h'), `${HEADER_STALE}7fff`);
    assert.equal(await ks.write(() => pfadd(ks, 0, k('h'), [k('a'), k('b'), k('c')])), 1);
    assert.equal(hex('h'), `${HEADER_STALE}60f38050b1844bfb80425a`);
    assert.equal(await ks.write(() => pfadd(ks, 0, k('h'), [k('a')])), 0);
  });

  void it('counts; caches the count only inside a write', async () => {
    assert.equal(pfcount(ks, 0, [k('h')]), 3);
    assert.equal(hex('h')?.slice(0, 32), HEADER_STALE);
    assert.equal(await ks.write(() => pfcount(ks, 0, [k('h')])), 3);
    assert.equal(hex('h')?.slice(0, 32), '48594c4c010000000300000000000000');
    assert.equal(pfcount(ks, 0, [k('h'), k('missing')]), 3);
  });

  void it('turns dense past the sparse limit and merges', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => k(`element-${i}`));
    await ks.write(() => pfadd(ks, 0, k('big'), many));
    assert.equal(get(ks, 0, k('big'))?.length, 16 + 12288);
    const count = pfcount(ks, 0, [k('big')]);
    assert.ok(Math.abs(count - 3000) < 100, `estimate ${count}`);
    await ks.write(() => pfmerge(ks, 0, k('merged'), [k('h'), k('big')]));
    assert.equal(pfcount(ks, 0, [k('merged')]), pfcount(ks, 0, [k('h'), k('big')]));
  });
});
