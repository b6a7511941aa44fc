/**
 * The replicator recovering by itself, seen from its control plane:
 *
 * - `kill -9` of the node in the middle of a one-shot `_replicator` job: after
 *   the restart the job resumes from its last checkpoint (it reads far fewer
 *   documents than the total) and completes with an exact copy;
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
    [source, node] = await Promise.all([
      DoppelProcess.start(),
      DoppelProcess.start({
        args: ['--replicator-crash-backoff-ms', '200', '--replicator-interval-ms', '500'],
      }),
    ]);
    proxy = await FaultProxy.start(source.port);
  });

  after(async () => {
    await proxy?.close();
    await Promise.all([source?.stop(), node?.stop()]);
  });

  void it('resumes a one-shot job from its checkpoint after kill -9 and completes it exactly', async () => {
    const total = 20_000;
    assert.equal((await source.request('/big', { method: 'PUT' })).status, 201);
    await loadDocs(source, 'big', total, 'b');
    // About 1.5 MB/s: the copy takes several seconds, long enough to be killed in the middle.
    proxy.bandwidth(1_500_000);
    const sourceUrl = `http://${source.adminUser}:${source.adminPassword}@127.0.0.1:${proxy.port}/big`;
    const put = await node.request('/_replicator/big', {
      method: 'PUT',
      body: {
        source: sourceUrl,
        target: 'big-copy',
        create_target: true,
        checkpoint_interval: 200,
        worker_batch_size: 250,
      },
    });
    assert.equal(put.status, 201, put.text);
    const checkpointed = await eventually('a checkpoint past 5000', async () => {
      const row = await schedulerDoc(node, 'big');
      const seq = Number((row?.['info'] as Json | null)?.['checkpointed_source_seq'] ?? 0);
      return seq >= 5000 ? seq : undefined;
    });
    await node.kill('SIGKILL');
    assert.ok(checkpointed < total, `the job finished before the kill (${checkpointed})`);
    proxy.bandwidth(null);
    node = await DoppelProcess.start({
      dataDir: node.dataDir,
      adminUser: node.adminUser,
      adminPassword: node.adminPassword,
      args: ['--replicator-crash-backoff-ms', '200', '--replicator-interval-ms', '500'],
    });
    const done = await eventually('completed after the restart', async () => {
      const row = await schedulerDoc(node, 'big');
      return row?.['state'] === 'completed' ? row : undefined;
    });
    const stats = done['info'] as Json;
    const readAfterRestart = Number(stats['docs_read']);
    assert.ok(
      readAfterRestart <= total - checkpointed,
      `read ${readAfterRestart} docs after the restart; the checkpoint was at ${checkpointed}`,
    );
    const [want, got] = await Promise.all([revMap(source, 'big'), revMap(node, 'big-copy')]);
    assert.equal(got.size, total);
    assert.deepEqual(got, want);
    // Both runs are in the checkpoint history, newest first.
    const doc = await node.request<Json>('/_replicator/big');
    assert.equal(doc.json['_replication_state'], 'completed');
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
