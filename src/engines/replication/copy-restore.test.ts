import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CopiedDoc, CopyFrame } from '../docs/database-copy.js';
import { restoreCopy, type CopySink } from './copy-restore.js';

/** A copy of `count` documents as one chunk of frames: 1,500 make two batches. */
async function* copyOf(count: number): AsyncGenerator<readonly CopyFrame[]> {
  const frames: CopyFrame[] = [{ kind: 'header', header: { seq: 7, doc_count: count, doc_del_count: 0 } }];
  for (let i = 0; i < count; i++) {
    const doc: CopiedDoc = {
      id: `d${String(i).padStart(5, '0')}`,
      leaves: [{ path: ['1-a'], deleted: false, stored: Buffer.from([0]) }],
    };
    frames.push({ kind: 'doc', doc });
  }
  frames.push({ kind: 'end', docs: count, unreadable: 0 });
  yield frames;
}

/** A sink whose first batch finishes last (as separate requests to a remote target may). */
function slowFirstSink(failFirst: boolean): CopySink & { committedIds: string[] } {
  let batches = 0;
  const committedIds: string[] = [];
  return {
    committedIds,
    header: async () => undefined,
    write: async (docs) => {
      const first = batches++ === 0;
      if (first) await sleep(50);
      if (first && failFirst) throw new Error('the first batch failed');
      return { written: docs.length, failed: 0 };
    },
    committed: (lastId) => {
      committedIds.push(lastId);
    },
  };
}

void describe('restoreCopy', () => {
  void it('reports batches committed in order, whatever order their writes finish in', async () => {
    const sink = slowFirstSink(false);
    const outcome = await restoreCopy(copyOf(1500), sink, 'copying a test copy');
    assert.deepEqual(outcome, { docs: 1500, unreadable: 0 });
    assert.deepEqual(sink.committedIds, ['d00999', 'd01499']);
  });

  void it('reports no batch after a failed one', async () => {
    const sink = slowFirstSink(true);
    await assert.rejects(restoreCopy(copyOf(1500), sink, 'copying a test copy'), /the first batch failed/);
    assert.deepEqual(sink.committedIds, []);
  });

  void it('refuses a copy that is cut off', async () => {
    async function* cut(): AsyncGenerator<readonly CopyFrame[]> {
      for await (const frames of copyOf(3)) yield frames.slice(0, -1);
    }
    await assert.rejects(restoreCopy(cut(), slowFirstSink(false), 'copying a test copy'), /cut off/);
  });
});
