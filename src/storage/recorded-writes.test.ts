/**
 * Writes recorded by one `Storage` (`record`) and written by another
 * (`replay`), as a load split over two threads does; and a file read while it
 * grows (`growingFileChunks`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Storage } from './environment.js';
import { GrowingFile, growingFileChunks } from './file-chunks.js';
import { WriteRecorder } from './recorded-writes.js';

const options = (path: string) => ({ path, durability: 'fsync', maxUnsyncedMs: 0 }) as const;
const b = (text: string): Buffer => Buffer.from(text);

void describe('recorded writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-recorded-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('replays puts, inserts, removes, clears and structured rows in order; records nothing itself', async () => {
    const path = join(dir, 'replay');
    const writer = new Storage(options(path));
    const rows = writer.overlaid('rows').db;
    const meta = writer.structured<number, string>('meta');
    await writer.write(() => {
      writer.put(rows, b('old'), b('gone after the clear'));
    });
    const recorder = new Storage(options(path));
    const recordedRows = recorder.overlaid('rows').db;
    const recordedMeta = recorder.structured<number, string>('meta');
    const log = new WriteRecorder();
    recorder.record(log, () => {
      recorder.clear(recordedRows);
      recorder.put(recordedRows, b('a'), b('1'));
      assert.equal(recorder.putIfAbsent(recordedRows, b('b'), b('2')), true);
      recorder.put(recordedRows, b('c'), b('3'));
      recorder.remove(recordedRows, b('c'));
      recorder.put(recordedMeta, 'uid', 42);
    });
    assert.equal(recordedRows.get(b('old'))?.toString(), 'gone after the clear', 'recording wrote nothing');
    const writes = log.take();
    assert.equal(log.size, 0, 'the recorder starts again');
    const existing = await writer.write(() => writer.replay(writes));
    assert.equal(existing, null);
    const keys = [...rows.getKeys({})].map((k) => k.toString());
    assert.deepEqual(keys, ['a', 'b']);
    assert.equal(rows.get(b('b'))?.toString(), '2');
    assert.equal(meta.get('uid'), 42);
    await recorder.close();
    await writer.close();
  });

  void it('stops at an insert whose row exists and names it', async () => {
    const path = join(dir, 'repeated');
    const storage = new Storage(options(path));
    const rows = storage.overlaid('rows').db;
    const log = new WriteRecorder();
    storage.record(log, () => {
      storage.putIfAbsent(rows, b('k'), b('first'));
      storage.putIfAbsent(rows, b('k'), b('second'));
      storage.put(rows, b('after'), b('never written'));
    });
    const existing = await storage.write(() => storage.replay(log.take()));
    assert.equal(existing?.table, 'rows');
    assert.equal((existing?.key as Buffer).toString(), 'k');
    assert.equal(rows.get(b('k'))?.toString(), 'first');
    assert.equal(rows.get(b('after')), undefined, 'replay stopped there');
    await storage.close();
  });

  void it('refuses to record writes to a table it did not open', async () => {
    const storage = new Storage(options(join(dir, 'unknown')));
    const stray = storage.root.openDB<Buffer, Buffer>('stray', { encoding: 'binary', keyEncoding: 'binary' });
    assert.throws(
      () => storage.record(new WriteRecorder(), () => storage.put(stray, b('k'), b('v'))),
      /not opened through Storage/,
    );
    await storage.close();
  });
});

void describe('a growing file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-growing-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('is read up to where it may be, then to its end once complete', () => {
    const path = join(dir, 'spool');
    writeFileSync(path, 'payload+MARK');
    const file = new GrowingFile();
    file.readableUpTo(4);
    file.complete(7);
    const read = Buffer.concat([...growingFileChunks(path, file.shared)]).toString();
    assert.equal(read, 'payload', 'not the bytes past its end');
  });

  void it('fails its reader at once when abandoned before anything was written', () => {
    const file = new GrowingFile();
    file.abandon();
    assert.throws(() => growingFileChunks(join(dir, 'never-written'), file.shared).next(), /abandoned/);
  });

  void it('fails its reader at the end of what was readable once abandoned', () => {
    const path = join(dir, 'abandoned');
    writeFileSync(path, 'part');
    const file = new GrowingFile();
    file.readableUpTo(4);
    file.abandon();
    const chunks = growingFileChunks(path, file.shared);
    const first = chunks.next();
    assert.equal(first.done, false);
    assert.equal(String(first.value), 'part');
    assert.throws(() => chunks.next(), /abandoned before it was complete/);
  });
});
