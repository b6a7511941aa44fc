import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replicationBaseId, replicationIds, type ReplicationIdInput } from './replication-id.js';
import { findStartSeq, type CheckpointDoc, type HistoryEntry } from './replication-job.js';

const base: ReplicationIdInput = {
  sourceIdentity: JSON.stringify(['http', 'bob', 'http:', 'a.example:5984', '/src', []]),
  targetIdentity: JSON.stringify(['local', 'tgt']),
  filter: { kind: 'none' },
  winningRevsOnly: false,
};

void describe('replication ids', () => {
  void it('is stable and hex md5', () => {
    const a = replicationBaseId(base);
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.equal(replicationBaseId({ ...base }), a);
  });

  void it('adds job suffixes only to the job id', () => {
    const ids = replicationIds(base, { continuous: true, createTarget: true });
    assert.equal(ids.jobId, `${ids.baseId}+continuous+create_target`);
    assert.equal(replicationIds(base, { continuous: false, createTarget: false }).jobId, ids.baseId);
  });

  void it('changes with the filter, winning_revs_only and since_seq', () => {
    const a = replicationBaseId(base);
    const ids = new Set([
      a,
      replicationBaseId({ ...base, filter: { kind: 'doc_ids', docIds: ['a'] } }),
      replicationBaseId({ ...base, filter: { kind: 'doc_ids', docIds: ['b'] } }),
      replicationBaseId({ ...base, filter: { kind: 'selector', selector: { x: 1 } } }),
      replicationBaseId({
        ...base,
        filter: { kind: 'js', name: 'd/f', code: 'function(){}', queryParams: {} },
      }),
      replicationBaseId({
        ...base,
        filter: { kind: 'js', name: 'd/f', code: 'function(d){}', queryParams: {} },
      }),
      replicationBaseId({
        ...base,
        filter: { kind: 'js', name: 'd/f', code: 'function(d){}', queryParams: { p: '1' } },
      }),
      replicationBaseId({ ...base, winningRevsOnly: true }),
      replicationBaseId({ ...base, sinceSeq: 5 }),
      replicationBaseId({ ...base, targetIdentity: JSON.stringify(['local', 'other']) }),
    ]);
    assert.equal(ids.size, 10);
  });

  void it('does not depend on how an equivalent selector is written', () => {
    const s1 = replicationBaseId({
      ...base,
      filter: { kind: 'selector', selector: { a: 1, b: { $gt: 2 } } },
    });
    const s2 = replicationBaseId({
      ...base,
      filter: { kind: 'selector', selector: { $and: [{ b: { $gt: 2 } }, { a: { $eq: 1 } }] } },
    });
    assert.equal(s1, s2);
  });
});

function entry(session: string, seq: number): HistoryEntry {
  return {
    session_id: session,
    start_time: '',
    end_time: '',
    start_last_seq: 0,
    end_last_seq: seq,
    recorded_seq: seq,
    missing_checked: 0,
    missing_found: 0,
    docs_read: 0,
    docs_written: 0,
    doc_write_failures: 0,
  };
}

function log(session: string, seq: number, history: HistoryEntry[]): CheckpointDoc {
  return { session_id: session, source_last_seq: seq, replication_id_version: 4, history };
}

void describe('start seq from checkpoints', () => {
  void it('uses source_last_seq when sessions match, a common history entry otherwise', () => {
    assert.equal(findStartSeq(log('s', 7, []), log('s', 7, [])), 7);
    assert.equal(findStartSeq(null, log('s', 7, [])), null);
    const common = entry('c', 3);
    const found = findStartSeq(log('x', 9, [entry('x', 9), common]), log('y', 5, [entry('y', 5), common]));
    assert.deepEqual(found, common);
    assert.equal(findStartSeq(log('x', 9, [entry('x', 9)]), log('y', 5, [entry('y', 5)])), null);
  });
});
