import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalRecord } from '../../engines/journal/journal-entry.js';
import { planBatch, type PlanOptions } from './batch-plan.js';

const lines = (from: number, count: number): string =>
  Array.from({ length: count }, (_, i) => `m v=${from + i} ${from + i}\n`).join('');

function points(lsn: number, from: number, count: number, ts = 1_000, db = 'b'): JournalRecord {
  return { lsn, ts, entry: { k: 'points', db, seq: lsn, lines: lines(from, count), count } };
}

const options = (extra: Partial<PlanOptions> = {}): PlanOptions => ({
  kind: 'points',
  source: 'b',
  sourceUid: 1,
  purgeBefore: 0,
  isSkipped: () => false,
  ...extra,
});

void describe('stream batch plans', () => {
  void it('take whole entries of the source and pass over other databases', () => {
    const plan = planBatch(
      [points(1, 0, 3), points(2, 100, 2, 1_000, 'other'), points(3, 3, 2)],
      { lsn: 0, skipPoints: 0 },
      options(),
    );
    assert.equal(plan.points, 5);
    assert.equal(plan.chunks.join(''), lines(0, 5));
    assert.equal(plan.bytes, Buffer.byteLength(lines(0, 5)));
    assert.deepEqual(plan.end, { lsn: 3, skipPoints: 0 });
  });

  void it('close at 5000 points inside an entry and resume there', () => {
    const records = [points(1, 0, 3000), points(2, 3000, 4000)];
    const first = planBatch(records, { lsn: 0, skipPoints: 0 }, options());
    assert.equal(first.points, 5000);
    assert.deepEqual(first.end, { lsn: 1, skipPoints: 2000 });
    const second = planBatch(records.slice(1), first.end, options());
    assert.equal(second.points, 2000);
    assert.equal(second.chunks.join(''), lines(5000, 2000));
    assert.deepEqual(second.end, { lsn: 2, skipPoints: 0 });
  });

  void it('close at the byte limit', () => {
    const plan = planBatch([points(1, 0, 100)], { lsn: 0, skipPoints: 0 }, options({ maxBytes: 100 }));
    assert.ok(plan.bytes <= 100 && plan.points > 0 && plan.points < 100);
    assert.deepEqual(plan.end, { lsn: 0, skipPoints: plan.points });
  });

  void it('purge expired entries at the head, skip dropped ones, and stop at a deleted source', () => {
    const records: JournalRecord[] = [
      points(1, 0, 2, 10),
      points(2, 2, 2, 5_000),
      points(3, 4, 1, 5_000),
      { lsn: 4, ts: 5_000, entry: { k: 'db.delete', db: 'b', uid: 1 } },
      points(5, 9, 1, 5_000),
    ];
    const plan = planBatch(
      records,
      { lsn: 0, skipPoints: 0 },
      options({ purgeBefore: 100, isSkipped: (lsn) => lsn === 3 }),
    );
    assert.equal(plan.purgedPoints, 2);
    assert.equal(plan.points, 2);
    assert.equal(plan.sourceDeleted, true);
    assert.deepEqual(plan.end, { lsn: 4, skipPoints: 0 });
  });

  void it('send a document larger than a batch alone, and close the batch before one', () => {
    const doc = (lsn: number, bytes: number): JournalRecord => ({
      lsn,
      ts: 1_000,
      entry: {
        k: 'doc',
        db: 'd',
        id: `doc${lsn}`,
        seq: lsn,
        path: ['1-a'],
        deleted: false,
        body: `{"pad":"${'x'.repeat(bytes)}"}`,
      },
    });
    const docs = options({ kind: 'docs', source: 'd', maxBytes: 1_000 });
    const alone = planBatch([doc(1, 5_000), doc(2, 10)], { lsn: 0, skipPoints: 0 }, docs);
    assert.equal(alone.points, 1);
    assert.ok(alone.bytes > 5_000);
    assert.deepEqual(alone.end, { lsn: 1, skipPoints: 0 });
    const before = planBatch([doc(1, 10), doc(2, 5_000)], { lsn: 0, skipPoints: 0 }, docs);
    assert.equal(before.points, 1);
    assert.deepEqual(before.end, { lsn: 1, skipPoints: 0 });
  });
});
