import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { Storage } from '../../storage/environment.js';
import type { JournalEntry } from './journal-entry.js';
import { decodeFrame, Journal } from './journal.js';

const LIMITS = { maxBytes: 1e9, maxAgeMs: 1e9, backlogBytes: 1e9 };
const HEADER_BYTES = 12;
/** The generic encoder the journal falls back to: hand-framed entries must match its bytes. */
const generic = new Packr({ useRecords: false });

let dir: string;
let storage: Storage;
let journal: Journal;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'doppel-journal-test-'));
  storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  journal = new Journal(storage, LIMITS);
});
after(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

async function roundTrip(entry: JournalEntry): Promise<Buffer> {
  const lsn = await storage.write(() => journal.append(entry, 1_700_000_000_123));
  const [stored] = journal.readFrames(lsn - 1, 1);
  assert.ok(stored !== undefined);
  const frame = Buffer.from(stored.frame);
  assert.equal(frame.readUInt32LE(8), frame.length, 'the header holds the frame size');
  const decoded = decodeFrame(frame);
  assert.equal(decoded.ts, 1_700_000_000_123);
  assert.deepEqual(decoded.entry, entry);
  return frame.subarray(HEADER_BYTES);
}

void describe('journal frames', () => {
  void it('frames a keyspace SET by hand with exactly the bytes msgpackr writes', async () => {
    const sizes = [0, 1, 31, 255, 256, 65_535, 65_536 - 100];
    for (const size of sizes) {
      const value = Buffer.alloc(size, 7);
      const cases: JournalEntry[] = [
        { k: 'kv', db: 0, op: 'set', key: Buffer.from('k'), value },
        { k: 'kv', db: 15, op: 'set', key: Buffer.alloc(300, 1), value, pxat: 1_800_000_000_000 },
        { k: 'kv', db: 3, op: 'set', key: Buffer.from('ttl'), value, pxat: 5 },
        { k: 'kv', db: 3, op: 'set', key: Buffer.from('keep'), value, keepttl: true },
      ];
      for (const entry of cases) {
        const body = await roundTrip(entry);
        // Integers beyond 32 bits may be written as float64 or uint64: both decode the same.
        if (entry.k === 'kv' && entry.op === 'set' && (entry.pxat ?? 0) > 0xffffffff) continue;
        assert.deepEqual(body, generic.pack(entry), `SET of ${size} bytes`);
      }
    }
  });

  void it('falls back to msgpackr for a SET value too large for the scratch buffer', async () => {
    const entry: JournalEntry = {
      k: 'kv',
      db: 1,
      op: 'set',
      key: Buffer.from('big'),
      value: Buffer.alloc(70_000, 2),
    };
    assert.deepEqual(await roundTrip(entry), generic.pack(entry));
  });

  void it('frames document entries by hand as the array msgpackr writes', async () => {
    const entry: JournalEntry = {
      k: 'doc',
      db: 'd',
      id: 'caf\u00e9',
      seq: 70_000,
      path: Array.from({ length: 20 }, (_, i) => `${20 - i}-abc`),
      deleted: false,
      body: '{"x":"\u{1F600}"}',
    };
    const { db, id, seq, path, deleted, body } = entry;
    assert.deepEqual(await roundTrip(entry), generic.pack([0, db, id, seq, path, deleted, body]));
  });
});

void describe('journal head', () => {
  void it('wakes readers only for entries they can read, while later writes overlap', async () => {
    // A later write's action can run before an earlier write's commit resolves; the
    // head published for the earlier one must not include what the later one appended.
    const entry: JournalEntry = { k: 'kv', db: 0, op: 'set', key: Buffer.from('k'), value: Buffer.from('v') };
    let seen = journal.head;
    let wakes = 0;
    let unreadable = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        await journal.waitFor(seen);
        wakes++;
        // Read in the task that woke us: what the head promises must already be there.
        const records = journal.read(seen, 1_000_000);
        const last = records.at(-1)?.lsn ?? seen;
        if (last < journal.head) unreadable++;
        seen = last;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const inFlight = new Set<Promise<number>>();
    for (let written = 0; written < 300_000;) {
      // A few writes per event-loop turn: each turn's writes join the next transaction.
      for (let i = 0; i < 5 && inFlight.size < 200; i++) {
        const write = storage.write(() => journal.append(entry, Date.now()));
        inFlight.add(write);
        void write.then(() => inFlight.delete(write));
        written++;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(inFlight);
    writing = false;
    await storage.write(() => journal.append(entry, Date.now()));
    await reader;
    assert.ok(wakes > 100, `the reader woke ${wakes} times`);
    assert.equal(unreadable, 0, `${unreadable} of ${wakes} wakes found the head's entries unreadable`);
  });
});

void describe('durable head', () => {
  void it('serves entries from the write-ahead log before they commit, always contiguous', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'doppel-journal-logged-'));
    const logged = new Storage({ path: logDir, durability: 'flush', maxUnsyncedMs: 1000 });
    const j = new Journal(logged, LIMITS);
    logged.startLogging(() => j.head);
    const entry = (n: number): JournalEntry => ({
      k: 'kv',
      db: 0,
      op: 'set',
      key: Buffer.from(`k${n}`),
      value: Buffer.from(String(n)),
    });
    try {
      // Read as a replica's feed does: frames past what was read, whenever the durable head moves.
      const done = new AbortController();
      let seen = 0;
      let aheadOfCommit = 0;
      const problems: string[] = [];
      const reader = (async (): Promise<void> => {
        while (!done.signal.aborted || seen < j.lastAppended) {
          if (j.durableHead <= seen && !done.signal.aborted) {
            await new Promise<void>((resolve) => {
              const stop = j.whenDurable(seen, resolve);
              done.signal.addEventListener(
                'abort',
                () => {
                  stop();
                  resolve();
                },
                { once: true },
              );
            });
          }
          for (const { lsn, frame } of j.readFrames(seen, 1_000_000)) {
            if (lsn !== seen + 1) problems.push(`entry ${lsn} after ${seen}`);
            if (lsn > j.durableHead) problems.push(`entry ${lsn} beyond the durable head ${j.durableHead}`);
            const { entry: read } = decodeFrame(frame);
            if (read.k !== 'kv' || read.op !== 'set' || read.value.toString() !== String(lsn)) {
              problems.push(`entry ${lsn} holds ${JSON.stringify(read)}`);
            }
            if (lsn > j.head) aheadOfCommit++;
            seen = lsn;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      // Queued writes (logged ahead) and transactions, interleaved as RESP and document writes are.
      const acks: Promise<unknown>[] = [];
      for (let n = 1; n <= 3000; n++) {
        if (n % 100 === 0 || !logged.canWriteNow) {
          acks.push(logged.write(() => j.append(entry(n), Date.now())));
        } else {
          acks.push(
            new Promise<void>((resolve, reject) =>
              logged.writeNow(
                () => j.append(entry(n), Date.now()),
                (failed) => (failed === undefined ? resolve() : reject(asError(failed))),
              ),
            ),
          );
        }
        if (n % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(acks);
      done.abort();
      await reader;
      assert.deepEqual(problems, []);
      assert.equal(seen, 3000);
      assert.ok(aheadOfCommit > 0, 'some entries were read before LMDB committed them');
    } finally {
      await logged.close();
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
