/**
 * The replicator recovering by itself, seen from its control plane:
 *
 * - `kill -9` of the node in the middle of a one-shot `_replicator` job: after
 *   the restart the job resumes from its last checkpoint (it reads far fewer
 *   documents than the total) and completes with an exact copy; both for a job
 *   reading the changes feed and for one copying the source whole;
 * - a continuous job through a TCP fault proxy (reset, blackhole, latency):
 *   the job goes `crashing`, backs off, returns to `running`, and every
 *   document written meanwhile arrives exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DoppelProcess } from './support/doppel-process.js';
import { FaultProxy } from './support/fault-proxy.js';
import { eventually } from './support/eventually.js';

type Json = Record<string, unknown>;

const NODE_ARGS = ['--replicator-crash-backoff-ms', '200', '--replicator-interval-ms', '500'];
/** Documents of the databases killed in the middle of their replication. */
const TOTAL = 20_000;

/** id → winning rev of every live document. */
async function revMap(node: DoppelProcess, db: string): Promise<Map<string, string>> {
  const res = await node.request<{ rows: { id: string; value: { rev: string } }[] }>(`/${db}/_all_docs`);
  assert.equal(res.status, 200, res.text);
  return new Map(res.json.rows.map((r) => [r.id, r.value.rev]));
}

async function schedulerDoc(node: DoppelProcess, id: string): Promise<Json | undefined> {
  const res = await node.request<Json>(`/_scheduler/docs/_replicator/${id}`);
  return res.status === 200 ? res.json : undefined;
}

async function loadDocs(node: DoppelProcess, db: string, count: number, prefix: string): Promise<void> {
  const batch = 2000;
  for (let start = 0; start < count; start += batch) {
    const docs = Array.from({ length: Math.min(batch, count - start) }, (_, i) => ({
      _id: `${prefix}${String(start + i).padStart(6, '0')}`,
      n: start + i,
      body: 'x'.repeat(200),
    }));
    const res = await node.request(`/${db}/_bulk_docs`, { body: { docs } });
    assert.equal(res.status, 201, res.text);
  }
}

void describe('replicator recovery', () => {
  let source: DoppelProcess;
  let node: DoppelProcess;
  let proxy: FaultProxy;

  before(async () => {
    [source, node] = await Promise.all([DoppelProcess.start(), DoppelProcess.start({ args: NODE_ARGS })]);
    proxy = await FaultProxy.start(source.port);
  });

  after(async () => {
    await proxy?.close();
    await Promise.all([source?.stop(), node?.stop()]);
  });

  /** Starts the node again on its data dir, after a kill. */
  async function restartNode(): Promise<void> {
    node = await DoppelProcess.start({
      dataDir: node.dataDir,
      adminUser: node.adminUser,
      adminPassword: node.adminPassword,
      args: NODE_ARGS,
    });
  }

  /** Runs `_replicator/{docId}` from `db` (through the slowed proxy) until `killAt` says so, kills the node, restarts it; the job's info once completed. */
  async function killInTheMiddle(
    docId: string,
    db: string,
    extra: Json,
    bytesPerSecond: number,
    killAt: () => Promise<number | undefined>,
  ): Promise<{ before: number; info: Json }> {
    // Slowed so that the job takes several seconds, long enough to be killed in the middle.
    proxy.bandwidth(bytesPerSecond);
    const sourceUrl = `http://${source.adminUser}:${source.adminPassword}@127.0.0.1:${proxy.port}/${db}`;
    const put = await node.request(`/_replicator/${docId}`, {
      method: 'PUT',
      body: {
        source: sourceUrl,
        target: `${db}-copy`,
        create_target: true,
        checkpoint_interval: 200,
        ...extra,
      },
    });
    assert.equal(put.status, 201, put.text);
    const before = await eventually('a checkpoint far enough in', killAt);
    await node.kill('SIGKILL');
    proxy.bandwidth(null);
    await restartNode();
    const done = await eventually('completed after the restart', async () => {
      const row = await schedulerDoc(node, docId);
      return row?.['state'] === 'completed' ? row : undefined;
    });
    // The document's state is written after the scheduler's (as in CouchDB): it follows.
    await eventually('the document to say completed', async () => {
      const doc = await node.request<Json>(`/_replicator/${docId}`);
      return doc.json['_replication_state'] === 'completed' ? true : undefined;
    });
    const [want, got] = await Promise.all([revMap(source, db), revMap(node, `${db}-copy`)]);
    assert.equal(got.size, TOTAL);
    assert.deepEqual(got, want);
    return { before, info: done['info'] as Json };
  }

  void it('resumes a one-shot job by changes from its checkpoint after kill -9 and completes it exactly', async () => {
    assert.equal((await source.request('/big', { method: 'PUT' })).status, 201);
    await loadDocs(source, 'big', TOTAL, 'b');
    // A selector keeps the job on the changes feed (only unfiltered jobs copy).
    const { before, info } = await killInTheMiddle(
      'big',
      'big',
      { selector: { n: { $gte: 0 } }, worker_batch_size: 250 },
      1_500_000,
      async () => {
        const row = await schedulerDoc(node, 'big');
        const seq = Number((row?.['info'] as Json | null)?.['checkpointed_source_seq'] ?? 0);
        return seq >= 5000 ? seq : undefined;
      },
    );
    assert.ok(before < TOTAL, `the job finished before the kill (${before})`);
    const readAfterRestart = Number(info['docs_read']);
    assert.ok(
      readAfterRestart <= TOTAL - before,
      `read ${readAfterRestart} docs after the restart; the checkpoint was at ${before}`,
    );
  });

  void it('continues an interrupted copy after its checkpointed document after kill -9', async () => {
    assert.equal((await source.request('/whole', { method: 'PUT' })).status, 201);
    await loadDocs(source, 'whole', TOTAL, 'w');
    let baseId: string | undefined;
    // A copy's stream is a few times smaller than the changes path's requests: slower still.
    const { before, info } = await killInTheMiddle('whole', 'whole', {}, 400_000, async () => {
      const jobId = (await schedulerDoc(node, 'whole'))?.['id'];
      if (typeof jobId === 'string') baseId ??= jobId.split('+')[0];
      if (baseId === undefined) return undefined;
      const local = await node.request<Json>(`/whole-copy/_local/${baseId}`);
      const copy = local.status === 200 ? (local.json['doppel_copy'] as Json | undefined) : undefined;
      // Ids are w000000…: the number of documents the copy has written.
      const copied = typeof copy?.['after_id'] === 'string' ? Number(copy['after_id'].slice(1)) + 1 : 0;
      if (copied > 0) assert.equal(copy?.['copied'], copied, 'the checkpoint counts the documents copied');
      return copied >= 5000 ? copied : undefined;
    });
    assert.ok(before < TOTAL, `the copy finished before the kill (${before})`);
    const readAfterRestart = Number(info['docs_read']);
    assert.ok(
      readAfterRestart <= TOTAL - before,
      `read ${readAfterRestart} docs after the restart; the copy's checkpoint was after ${before}`,
    );
    assert.equal(Number(info['docs_written']), readAfterRestart);
    // A run by changes would check every revision again.
    assert.ok(Number(info['revisions_checked']) <= TOTAL - before, JSON.stringify(info));
    // The checkpoint of the finished job is an ordinary one, at the copy's seq or later.
    const local = await node.request<Json>(`/whole-copy/_local/${baseId ?? ''}`);
    assert.equal(local.json['doppel_copy'], undefined);
    assert.ok(Number(local.json['source_last_seq']) >= TOTAL);
  });

  void it('goes crashing through resets and blackholes, backs off, and catches up without loss', async () => {
    assert.equal((await source.request('/live', { method: 'PUT' })).status, 201);
    await loadDocs(source, 'live', 300, 'l');
    const sourceUrl = `http://${source.adminUser}:${source.adminPassword}@127.0.0.1:${proxy.port}/live`;
    const put = await node.request('/_replicator/live', {
      method: 'PUT',
      body: {
        source: sourceUrl,
        target: 'live-copy',
        create_target: true,
        continuous: true,
        retries_per_request: 1,
        connection_timeout: 1500,
        checkpoint_interval: 500,
      },
    });
    assert.equal(put.status, 201, put.text);
    const running = async (): Promise<Json | undefined> => {
      const row = await schedulerDoc(node, 'live');
      return row?.['state'] === 'running' ? row : undefined;
    };
    await eventually('running', running);
    await eventually('initial copy', async () =>
      (await revMap(node, 'live-copy')).size === 300 ? true : undefined,
    );

    let written = 300;
    const write = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const res = await source.request(`/live/w${String(written).padStart(6, '0')}`, {
          method: 'PUT',
          body: { n: written },
        });
        assert.equal(res.status, 201, res.text);
        written++;
      }
    };

    for (const fault of ['reset', 'blackhole'] as const) {
      if (fault === 'reset') proxy.reset();
      else proxy.blackhole();
      await write(50);
      const crashing = await eventually(`crashing after ${fault}`, async () => {
        const row = await schedulerDoc(node, 'live');
        return row?.['state'] === 'crashing' ? row : undefined;
      });
      assert.ok(String((crashing['info'] as Json)['error']).length > 0, 'the crash has a reason');
      await write(50);
      proxy.pass();
      await eventually(`running again after ${fault}`, running);
      await eventually(`caught up after ${fault}`, async () =>
        (await revMap(node, 'live-copy')).size === written ? true : undefined,
      );
    }

    // Latency slows the job down but does not crash it.
    proxy.latency(100);
    await write(30);
    await eventually('caught up under latency', async () =>
      (await revMap(node, 'live-copy')).size === written ? true : undefined,
    );
    proxy.pass();
    const [want, got] = await Promise.all([revMap(source, 'live'), revMap(node, 'live-copy')]);
    assert.deepEqual(got, want);
    // Exactly once: every document has one revision on the target, with no conflicts.
    const changes = await node.request<{ results: { changes: unknown[] }[] }>(
      '/live-copy/_changes?style=all_docs',
    );
    assert.ok(changes.json.results.every((r) => r.changes.length === 1));
    const job = await schedulerDoc(node, 'live');
    assert.ok(Number(job?.['error_count']) >= 0);
    const board = await node.request<{ replications: Json[] }>('/_doppel/replications');
    const entry = board.json.replications.find(
      (r) => (r['details'] as Json | undefined)?.['doc_id'] === 'live',
    );
    const history = (entry?.['details'] as Json)['history'] as Json[];
    assert.ok(
      history.some((h) => h['type'] === 'crashed'),
      'the history records the crashes',
    );
  });
});
