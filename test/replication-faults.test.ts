/**
 * A continuous replication job (in this process, HTTP endpoints) from Doppel
 * A through the TCP fault proxy to Doppel B, while a writer keeps creating,
 * updating and deleting documents on A. The proxy resets every connection,
 * then blackholes them (the continuous feed goes silent: only its stall
 * detector can notice), then adds latency. After each fault the job must
 * catch up by itself, without ever returning; at the end B holds exactly A's
 * documents (same leaves, same winners, same counts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicationJob, type ReplicationResult } from '../src/engines/replication/replication-job.js';
import { HttpEndpoint } from '../src/services/replicator/http-endpoint.js';
import { DoppelProcess } from './support/doppel-process.js';
import { FaultProxy } from './support/fault-proxy.js';

/** Heartbeat of the continuous feed: a stall is declared after three (1.5 s) of silence. */
const HEARTBEAT_MS = 500;
/** Per-request timeout: blackholed requests fail after this and are retried. */
const CONNECTION_TIMEOUT_MS = 2000;
const RECOVERY_DEADLINE_MS = 15_000;

async function ok<T>(node: DoppelProcess, path: string, method = 'GET', body?: unknown): Promise<T> {
  const res = await node.request<T>(path, { method, ...(body === undefined ? {} : { body }) });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return res.json;
}

/** Keeps writing batches to A: new docs, updates of earlier ones, some deletes. */
class Writer {
  readonly #revs = new Map<string, string>();
  #next = 0;
  #running = true;
  #done: Promise<void> | undefined;
  writes = 0;

  constructor(
    readonly node: DoppelProcess,
    readonly db: string,
  ) {}

  start(): void {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const docs: Record<string, unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        const id = `doc-${String(this.#next++).padStart(5, '0')}`;
        docs.push({ _id: id, n: this.#next, body: 'x'.repeat(200) });
      }
      // Update two known docs and delete one, now and then.
      const known = [...this.#revs.keys()];
      if (known.length > 10) {
        for (const id of [known[this.#next % known.length], known[(this.#next * 7) % known.length]]) {
          if (id === undefined || docs.some((d) => d['_id'] === id)) continue;
          docs.push({ _id: id, _rev: this.#revs.get(id), n: this.#next, updated: true });
        }
        if (this.#next % 20 === 0) {
          const id = known[(this.#next * 13) % known.length];
          if (id !== undefined && !docs.some((d) => d['_id'] === id))
            docs.push({ _id: id, _rev: this.#revs.get(id), _deleted: true });
        }
      }
      const results = await ok<{ id: string; rev?: string; error?: string }[]>(
        this.node,
        `/${this.db}/_bulk_docs`,
        'POST',
        { docs },
      );
      for (const r of results) {
        if (r.rev === undefined) continue;
        const doc = docs.find((d) => d['_id'] === r.id);
        if (doc?.['_deleted'] === true) this.#revs.delete(r.id);
        else this.#revs.set(r.id, r.rev);
      }
      this.writes += results.length;
      await sleep(15);
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/** id → "sorted leaf revs [deleted]" from `_changes?style=all_docs`, and the ids seen more than once. */
async function leaves(
  node: DoppelProcess,
  db: string,
): Promise<{ map: Map<string, string>; dupes: string[] }> {
  const body = await ok<{ results: { id: string; changes: { rev: string }[]; deleted?: boolean }[] }>(
    node,
    `/${db}/_changes?style=all_docs`,
  );
  const map = new Map<string, string>();
  const dupes: string[] = [];
  for (const row of body.results) {
    if (map.has(row.id)) dupes.push(row.id);
    const revs = row.changes.map((c) => c.rev).sort();
    map.set(row.id, `${revs.join(',')}${row.deleted === true ? ' deleted' : ''}`);
  }
  return { map, dupes };
}

void describe('continuous replication through network faults', () => {
  let a: DoppelProcess;
  let b: DoppelProcess;
  let proxy: FaultProxy;

  before(async () => {
    [a, b] = await Promise.all([DoppelProcess.start(), DoppelProcess.start()]);
    proxy = await FaultProxy.start(a.port);
    await ok(a, '/src', 'PUT');
    await ok(b, '/dst', 'PUT');
  });

  after(async () => {
    await proxy.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  void it('recovers by itself from resets, a blackhole and latency; B ends equal to A', async (t) => {
    const endpointOptions = { connectionTimeout: CONNECTION_TIMEOUT_MS, retriesPerRequest: 5 };
    const source = new HttpEndpoint(
      { url: `${proxy.url}/src`, auth: { basic: { username: a.adminUser, password: a.adminPassword } } },
      endpointOptions,
    );
    const target = new HttpEndpoint(
      { url: `${b.url}/dst`, auth: { basic: { username: b.adminUser, password: b.adminPassword } } },
      endpointOptions,
    );
    const job = new ReplicationJob(source, target, {
      continuous: true,
      heartbeatMs: HEARTBEAT_MS,
      checkpointInterval: 1000,
      workerBatchSize: 100,
    });
    const stop = new AbortController();
    let result: ReplicationResult | undefined;
    const running = job.run(stop.signal).then((r) => {
      result = r;
      return r;
    });
    const writer = new Writer(a, 'src');
    writer.start();
    const log: Record<string, number> = {};

    /** Writes a marker on A and waits until B has it: the job got through, whatever state it was in. */
    const caughtUp = async (label: string): Promise<void> => {
      const t0 = Date.now();
      await ok(a, `/src/marker-${label}`, 'PUT', { label });
      for (;;) {
        assert.equal(result, undefined, `the job returned during "${label}": ${JSON.stringify(result)}`);
        const res = await b.request(`/dst/marker-${label}`);
        if (res.status === 200) break;
        assert.ok(Date.now() - t0 < RECOVERY_DEADLINE_MS, `B did not catch up after "${label}"`);
        await sleep(50);
      }
      log[label] = Date.now() - t0;
    };

    try {
      await sleep(1500);
      await caughtUp('warm-up');

      proxy.reset();
      await sleep(2000);
      proxy.pass();
      await caughtUp('reset');

      const acceptedBefore = proxy.accepted;
      proxy.blackhole();
      await sleep(3000);
      proxy.pass();
      await caughtUp('blackhole');
      assert.ok(proxy.accepted > acceptedBefore, 'the job opened new connections after the blackhole');

      proxy.latency(40);
      await sleep(2000);
      await caughtUp('latency');
      proxy.pass();

      await writer.stop();
      await caughtUp('final');
      // The last writes may still be in flight behind the marker's batch: wait for the counts to meet.
      const deadline = Date.now() + RECOVERY_DEADLINE_MS;
      for (;;) {
        const [ia, ib] = await Promise.all([
          ok<{ doc_count: number; doc_del_count: number }>(a, '/src'),
          ok<{ doc_count: number; doc_del_count: number }>(b, '/dst'),
        ]);
        if (ia.doc_count === ib.doc_count && ia.doc_del_count === ib.doc_del_count) break;
        assert.ok(Date.now() < deadline, `counts differ: A ${JSON.stringify(ia)} B ${JSON.stringify(ib)}`);
        await sleep(100);
      }
      const [la, lb] = await Promise.all([leaves(a, 'src'), leaves(b, 'dst')]);
      assert.deepEqual(lb.dupes, [], 'no document twice in B’s changes feed');
      assert.equal(lb.map.size, la.map.size, 'document counts (deleted ones included)');
      for (const [id, leafRevs] of la.map) assert.equal(lb.map.get(id), leafRevs, `leaves of ${id}`);
      const [wa, wb] = await Promise.all([
        ok<{ rows: { id: string; value: { rev: string } }[] }>(a, '/src/_all_docs'),
        ok<{ rows: { id: string; value: { rev: string } }[] }>(b, '/dst/_all_docs'),
      ]);
      assert.deepEqual(
        wb.rows.map((r) => [r.id, r.value.rev]),
        wa.rows.map((r) => [r.id, r.value.rev]),
        'winning revisions',
      );
      assert.ok(writer.writes > 500, `the writer kept writing (${writer.writes} writes)`);
      assert.equal(result, undefined, 'the continuous job never returned');
    } finally {
      await writer.stop();
      stop.abort();
      const final = await running;
      await Promise.all([source.close(), target.close()]);
      t.diagnostic(
        `catch-up ms ${JSON.stringify(log)}, writes ${writer.writes}, stats ${JSON.stringify(final.stats)}`,
      );
      assert.equal(final.status, 'stopped');
    }
  });
});
