/**
 * The storage format marker: a data directory is stamped with the format this
 * code writes, and one stamped by a newer Doppel is refused, untouched. And
 * writes held while another thread writes (`whileWritingElsewhere`), and turns asked
 * for while it writes in steps (`whileSharingWrites`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { Storage, STORAGE_FORMAT, StorageFormatError } from './environment.js';

const options = (path: string) => ({ path, durability: 'flush', maxUnsyncedMs: 1000 }) as const;

/** The format stamped in `path`, read with lmdb-js directly (undefined: none). */
async function stampedFormat(path: string, rewrite?: number): Promise<number | undefined> {
  const root = open({ path, maxDbs: 32 });
  const table = root.openDB<Buffer, Buffer>('storage', { encoding: 'binary', keyEncoding: 'binary' });
  const key = Buffer.from('format');
  if (rewrite !== undefined) {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(rewrite, 0);
    await table.put(key, value);
  }
  const found = table.get(key);
  await root.close();
  return found?.readUInt32BE(0);
}

void describe('storage format', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-format-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('stamps a new data directory with the current format in a write', async () => {
    const path = join(dir, 'new');
    const storage = new Storage(options(path));
    assert.equal(storage.foundFormat, 1, 'an unmarked directory');
    await storage.write(() => storage.stampFormat());
    await storage.close();
    assert.equal(await stampedFormat(path), STORAGE_FORMAT);
    const reopened = new Storage(options(path));
    assert.equal(reopened.foundFormat, STORAGE_FORMAT);
    await reopened.close();
  });

  void it('refuses a data directory of a newer format and leaves its marker as it was', async () => {
    const path = join(dir, 'newer');
    await new Storage(options(path)).close();
    await stampedFormat(path, STORAGE_FORMAT + 1);
    assert.throws(
      () => new Storage(options(path)),
      (err: unknown) =>
        err instanceof StorageFormatError &&
        err.message.includes(`storage format ${STORAGE_FORMAT + 1}`) &&
        err.message.includes(`formats up to ${STORAGE_FORMAT}`),
    );
    assert.equal(await stampedFormat(path), STORAGE_FORMAT + 1);
  });

  void it('reports an older format and leaves its marker until stamped', async () => {
    const path = join(dir, 'older');
    const root = open({ path, maxDbs: 32 });
    await root.openDB<string, string>('kv', { encoding: 'string' }).put('a', 'b');
    await root.close();
    await stampedFormat(path, STORAGE_FORMAT - 1);
    const storage = new Storage(options(path));
    assert.equal(storage.foundFormat, STORAGE_FORMAT - 1);
    await storage.close();
    assert.equal(await stampedFormat(path), STORAGE_FORMAT - 1);
  });
});

void describe('whileWritingElsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-hold-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('holds writes started meanwhile until the work is done, then runs them in order', async () => {
    const storage = new Storage(options(join(dir, 'held')));
    const table = storage.binary<string>('t');
    const order: string[] = [];
    let release!: () => void;
    const held = storage.whileWritingElsewhere(async () => {
      await new Promise<void>((resolve) => (release = resolve));
      order.push('work done');
    });
    const first = storage.write(() => order.push('first'));
    const second = storage.write(() => {
      order.push('second');
      table.putSync('k', Buffer.from('v'));
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(order, []);
    release();
    await Promise.all([held, first, second]);
    assert.deepEqual(order, ['work done', 'first', 'second']);
    assert.equal(table.get('k')?.toString(), 'v');
    await storage.close();
  });

  void it('releases the writes when the work fails', async () => {
    const storage = new Storage(options(join(dir, 'failed')));
    const held = storage.whileWritingElsewhere(() => Promise.reject(new Error('thread failed')));
    const write = storage.write(() => 'ran');
    await assert.rejects(held, /thread failed/);
    assert.equal(await write, 'ran');
    await storage.close();
  });
});

void describe('whileSharingWrites', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-share-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('asks for a turn at every write made while the work runs, and only then', async () => {
    const storage = new Storage(options(join(dir, 'shared')));
    const table = storage.binary<string>('t');
    let asked = 0;
    await storage.whileSharingWrites(
      () => asked++,
      async () => {
        await storage.write(() => table.putSync('a', Buffer.from('1')));
        await storage.write(() => table.putSync('b', Buffer.from('2')));
      },
    );
    await storage.write(() => table.putSync('c', Buffer.from('3')));
    assert.equal(asked, 2);
    assert.equal(table.get('c')?.toString(), '3');
    await storage.close();
  });
});
