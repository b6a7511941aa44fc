/**
 * Writes queued by `Storage.writeNow`: readable at once through an
 * `OverlaidTable` (ranges merged with the committed rows, forward, reverse,
 * limited, across clears), acknowledged from the write-ahead log, committed
 * to LMDB afterwards; and the log's own format (blocks read back, a torn tail
 * ignored).
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, describe, it } from 'node:test';
import { Storage } from './environment.js';
import type { RowRange } from './overlaid-table.js';
import { WriteAheadLog } from './write-ahead-log.js';

const dir = mkdtempSync(join(tmpdir(), 'doppel-queued-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const options = (path: string) => ({ path, durability: 'flush', maxUnsyncedMs: 1000 }) as const;
const row = (n: number): Buffer => Buffer.from(`r${String(n).padStart(3, '0')}`);

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** A deterministic generator (mulberry32). */
function seeded(seed: number): (below: number) => number {
  let a = seed;
  return (below) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below);
  };
}

/** What `range` should answer over `reference`, as LMDB orders rows. */
function expected(reference: Map<string, string>, range: RowRange): string[] {
  const keys = [...reference.keys()].sort();
  const { start, end, reverse = false, limit = Infinity } = range;
  const [low, high] = reverse ? [end, start] : [start, end];
  const inRange = keys.filter((k) => {
    const key = Buffer.from(k);
    if (reverse) {
      return (
        (low === undefined || Buffer.compare(key, low) > 0) &&
        (high === undefined || Buffer.compare(key, high) <= 0)
      );
    }
    return (
      (low === undefined || Buffer.compare(key, low) >= 0) &&
      (high === undefined || Buffer.compare(key, high) < 0)
    );
  });
  if (reverse) inRange.reverse();
  return inRange.slice(0, limit).map((k) => `${k}=${reference.get(k)}`);
}

void describe('queued writes', () => {
  void it('reads every queued write at once, in ranges too, and commits them all', async () => {
    const path = join(dir, 'overlay');
    const storage = new Storage(options(path));
    storage.startLogging(() => 0);
    const table = storage.overlaid('t');
    const reference = new Map<string, string>();
    const random = seeded(7);
    const check = (): void => {
      for (let n = 0; n < 40; n++) {
        assert.equal(table.getBinary(row(n))?.toString(), reference.get(row(n).toString()));
      }
      const ranges: RowRange[] = [
        {},
        { start: row(5), end: row(30) },
        { start: row(30), end: row(5), reverse: true },
        { start: row(10), limit: 4 },
        { reverse: true, limit: 3 },
      ];
      for (const range of ranges) {
        const got = [...table.getRange(range)].map(
          ({ key, value }) => `${key.toString()}=${value.toString()}`,
        );
        assert.deepEqual(got, expected(reference, range), JSON.stringify(range));
        assert.equal(table.getCount(range), expected(reference, range).length);
      }
    };
    for (let round = 0; round < 60; round++) {
      const acks: Promise<void>[] = [];
      for (let action = 0; action < 1 + random(4); action++) {
        acks.push(
          new Promise<void>((resolve, reject) => {
            storage.writeNow(
              () => {
                for (let op = 0; op < 1 + random(6); op++) {
                  const key = row(random(40));
                  const choice = random(20);
                  if (choice === 0) {
                    table.clear();
                    reference.clear();
                  } else if (choice < 7) {
                    assert.equal(table.remove(key), reference.delete(key.toString()));
                  } else {
                    const value = `v${round}.${op}`;
                    table.put(key, Buffer.from(value));
                    reference.set(key.toString(), value);
                  }
                }
              },
              (failed) => (failed === undefined ? resolve() : reject(asError(failed))),
            );
            check();
          }),
        );
      }
      check();
      if (random(3) === 0) await Promise.all(acks);
    }
    await storage.sync();
    check();
    // What LMDB itself holds once everything committed.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const committed = [...table.db.getRange({})].map(
      ({ key, value }) => `${key.toString()}=${value.toString()}`,
    );
    assert.deepEqual(committed, expected(reference, {}));
    await storage.close();
    assert.deepEqual(readdirSync(join(path, 'wal')), [], 'a clean close leaves no log behind');
  });

  void it('does not wait for a queued write that wrote nothing (close, writes held for another thread)', async () => {
    const path = join(dir, 'empty-turn');
    const storage = new Storage(options(path));
    storage.startLogging(() => 0);
    await new Promise<void>((resolve, reject) =>
      storage.writeNow(
        () => undefined,
        (failed) => (failed === undefined ? resolve() : reject(asError(failed))),
      ),
    );
    // Both wait until every write run so far is visible; a turn without rows never shows in LMDB.
    await storage.whileWritingElsewhere(() => Promise.resolve());
    await storage.close();
  });

  void it('acknowledges a queued write only once a transaction that ran before it is committed', async () => {
    const storage = new Storage(options(join(dir, 'order')));
    storage.startLogging(() => 0);
    const table = storage.overlaid('t');
    let ran!: () => void;
    const transactionRan = new Promise<void>((resolve) => (ran = resolve));
    const before = storage.write(() => {
      table.put(row(1), Buffer.from('in a transaction'));
      ran();
    });
    await transactionRan;
    assert.ok(storage.canWriteNow);
    const committedAtAck = await new Promise<string | undefined>((resolve, reject) => {
      storage.writeNow(
        () => table.put(row(2), Buffer.from('queued')),
        (failed) => {
          if (failed !== undefined) reject(asError(failed));
          storage.root.resetReadTxn();
          resolve(table.db.getBinary(row(1))?.toString());
        },
      );
    });
    assert.equal(committedAtAck, 'in a transaction');
    await before;
    await storage.close();
  });

  void it('reads every queued row while thousands commit (its map is renewed on the way)', async () => {
    const storage = new Storage(options(join(dir, 'many-rows')));
    storage.startLogging(() => 0);
    const table = storage.overlaid('t');
    const key = (n: number): Buffer => Buffer.from(`k${n}`);
    const acks: Promise<void>[] = [];
    let written = 0;
    for (let round = 0; round < 600; round++) {
      acks.push(
        new Promise<void>((resolve, reject) =>
          storage.writeNow(
            () => {
              for (let i = 0; i < 50; i++, written++) table.put(key(written), Buffer.from(`v${written}`));
            },
            (failed) => (failed === undefined ? resolve() : reject(asError(failed))),
          ),
        ),
      );
      // Each round is a turn of its own; commits land while later rounds' rows are queued.
      await new Promise(setImmediate);
      if (round % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 5));
      // The last rounds' rows may still wait for LMDB: only the overlay has them.
      for (let n = Math.max(0, written - 150); n < written; n++) {
        assert.equal(table.getBinary(key(n))?.toString(), `v${n}`);
      }
    }
    await Promise.all(acks);
    await storage.sync();
    for (let n = 0; n < written; n++) assert.equal(table.getBinary(key(n))?.toString(), `v${n}`);
    await storage.close();
  });
});

void describe('a row rewritten without pause', () => {
  void it('lets its committed versions go', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const storage = new Storage(options(join(dir, 'hot-row')));
    storage.startLogging(() => 0);
    const table = storage.overlaid('t');
    const put = (value: Buffer): Promise<void> =>
      new Promise((resolve, reject) =>
        storage.writeNow(
          () => table.put(row(1), value),
          (failed) => (failed === undefined ? resolve() : reject(asError(failed))),
        ),
      );
    const first = new WeakRef(Buffer.from('first version'));
    await put(first.deref()!);
    // A new version on every event-loop turn: while one commits, a later one is always queued.
    const until = performance.now() + 300;
    for (let n = 0; performance.now() < until; n++) {
      await put(Buffer.from(`version ${n}`));
      await new Promise(setImmediate);
    }
    const last = put(Buffer.from('last version'));
    gc();
    assert.equal(first.deref(), undefined, 'the first version is still held in memory');
    assert.equal(table.getBinary(row(1))?.toString(), 'last version');
    await last;
    await storage.close();
  });
});

void describe('write-ahead log', () => {
  void it('reads back what it wrote, in order, and stops at a torn block', async () => {
    const path = join(dir, 'log');
    const log = new WriteAheadLog(path, { maxUnsyncedMs: 1000, onWritten: () => undefined });
    for (let lsn = 1; lsn <= 5; lsn++) log.append(lsn, Buffer.from(`entry ${lsn}`));
    await new Promise<void>((resolve, reject) =>
      log.afterWrite((err) => (err === undefined ? resolve() : reject(asError(err)))),
    );
    log.append(6, Buffer.from('entry 6'));
    await new Promise<void>((resolve) => log.afterWrite(() => resolve()));
    log.close();
    const read = (): string[] => [...WriteAheadLog.read(path)].map((f) => `${f.lsn}:${f.payload.toString()}`);
    assert.deepEqual(read(), ['1:entry 1', '2:entry 2', '3:entry 3', '4:entry 4', '5:entry 5', '6:entry 6']);
    // A crash in the middle of a write leaves part of a block: it is not read.
    const [segment] = readdirSync(path);
    appendFileSync(join(path, segment), Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 9, 9]));
    assert.equal(read().length, 6);
    WriteAheadLog.clear(path);
    assert.deepEqual(read(), []);
  });
});
