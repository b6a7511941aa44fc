/**
 * Outbound write streams (issue 5) against a real InfluxDB 1.x (`influxd`) and a second
 * Doppel node: the InfluxDB-compatible write path, buckets, tokens, remotes and
 * replications APIs; points arriving in InfluxDB (checked with its query API); a remote
 * outage; `kill -9` of Doppel during ingest; full queues in both modes; a rejected
 * credential; max-age purges; non-retryable drops; Doppel→Doppel streams of points and
 * of documents; `/metrics`.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess, makeTempDir, removeTempDir, type JsonResponse } from './support/doppel-process.js';
import { freePort } from './support/free-port.js';
import { InfluxProcess } from './support/influxdb.js';
import { eventually, ok } from './support/eventually.js';

type Json = Record<string, unknown>;

/** Fast retries, short purges and ages, so the failure paths run within seconds. */
const STREAM_ARGS = [
  '--stream-max-backoff-ms',
  '1000',
  '--stream-min-max-age-s',
  '1',
  '--stream-purge-interval-ms',
  '200',
];

/** `count` lines of measurement `m`, timestamps from `start` (ns), tagged with `tag`. */
function cpuLines(m: string, start: number, count: number, tag = 'x'): string {
  let out = '';
  for (let i = 0; i < count; i++)
    out += `${m},host=h${i % 7},tag=${tag} usage_user=${i % 100}.5,usage_system=${i % 13}i ${start + i}\n`;
  return out;
}

async function write(
  node: DoppelProcess,
  bucket: string,
  body: string | Buffer,
  extra: Json = {},
): Promise<JsonResponse<Json>> {
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  let auth: string | undefined;
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'authorization') auth = String(v);
    else headers[k] = String(v);
  }
  return node.request<Json>(`/api/v2/write?org=doppel&bucket=${bucket}&precision=ns`, {
    method: 'POST',
    body,
    headers,
    ...(auth === undefined ? {} : { auth }),
  });
}

async function createBucket(node: DoppelProcess, name: string): Promise<string> {
  return String(
    ok(await node.request<Json>('/api/v2/buckets', { method: 'POST', body: { name } }), `bucket ${name}`)[
      'id'
    ],
  );
}

async function replication(node: DoppelProcess, body: Json): Promise<Json> {
  return ok(await node.request<Json>('/api/v2/replications', { method: 'POST', body }), 'create replication');
}

async function getReplication(node: DoppelProcess, id: string): Promise<Json> {
  return ok(await node.request<Json>(`/api/v2/replications/${id}`), `replication ${id}`);
}

async function boardRow(node: DoppelProcess, id: string): Promise<Json | undefined> {
  const res = ok(await node.request<{ replications: Json[] }>('/_doppel/replications'), 'replications');
  return res.replications.find((r) => r['id'] === id);
}

/** Waits until the replication's queue is empty and InfluxDB holds `expected` points of `m`. */
async function arrives(
  influx: InfluxProcess,
  db: string,
  m: string,
  expected: number,
  timeoutMs = 60_000,
): Promise<void> {
  await eventually(
    `${expected} points of ${m} in InfluxDB`,
    async () => {
      const count = await influx.count(db, m, 'usage_user');
      assert.ok(
        count <= expected,
        `InfluxDB holds ${count} points of ${m}, more than the ${expected} written`,
      );
      return count === expected ? true : undefined;
    },
    timeoutMs,
  );
}

void describe('outbound write streams', () => {
  let influx: InfluxProcess;
  let node: DoppelProcess;
  let remoteId: string;

  before(async () => {
    [influx, node] = await Promise.all([InfluxProcess.start(), DoppelProcess.start({ args: STREAM_ARGS })]);
    await influx.createDatabase('edge');
    const remote = ok(
      await node.request<Json>('/api/v2/remotes', {
        method: 'POST',
        body: {
          name: 'influx one',
          orgID: 'doppel',
          remoteURL: influx.url,
          remoteAPIToken: 'anything:at-all',
        },
      }),
      'create remote',
    );
    remoteId = String(remote['id']);
  });

  after(async () => {
    await node?.stop();
    await influx?.stop();
  });

  void it('serves one organization, buckets, remotes (no secret) and tokens', async () => {
    const orgs = ok(await node.request<{ orgs: Json[] }>('/api/v2/orgs'), 'orgs').orgs;
    assert.equal(orgs.length, 1);
    assert.equal(orgs[0]['name'], 'doppel');
    const id = await createBucket(node, 'tel');
    assert.match(id, /^[0-9a-f]{16}$/);
    const again = await node.request<Json>('/api/v2/buckets', { method: 'POST', body: { name: 'tel' } });
    assert.equal(again.status, 422);
    assert.equal(again.json['code'], 'conflict');
    const list = ok(await node.request<{ buckets: Json[] }>('/api/v2/buckets?name=tel'), 'buckets').buckets;
    assert.deepEqual(
      list.map((b) => b['id']),
      [id],
    );
    const info = ok(await node.request<Json>('/tel'), 'bucket as a database');
    assert.deepEqual(info['doppel'], { kind: 'bucket' });

    const remote = ok(await node.request<Json>(`/api/v2/remotes/${remoteId}`), 'remote');
    assert.equal(remote['name'], 'influx one');
    assert.equal(remote['remoteURL'], influx.url);
    assert.equal(remote['remoteAPIToken'], undefined);
    assert.ok(!JSON.stringify(remote).includes('at-all'));
    const native = ok(await node.request<Json>(`/_doppel/remotes/${remoteId}`), 'native remote');
    assert.equal(native['auth'], 'token');
    assert.ok(!JSON.stringify(native).includes('at-all'));

    const created = await node.request<Json>('/_doppel/tokens', {
      method: 'POST',
      body: { description: 'telegraf' },
    });
    assert.equal(created.status, 201);
    const token = String(created.json['token']);
    const tokens = ok(await node.request<{ tokens: Json[] }>('/_doppel/tokens'), 'tokens').tokens;
    assert.equal(tokens.length, 1);
    assert.ok(!JSON.stringify(tokens).includes(token));
    const withToken = await write(node, 'tel', 'tok v=1 1\n', { authorization: `Token ${token}` });
    assert.equal(withToken.status, 204, withToken.text);
    const badToken = await write(node, 'tel', 'tok v=1 1\n', { authorization: `Token ${token}x` });
    assert.equal(badToken.status, 401);
    assert.equal(badToken.json['code'], 'unauthorized');
    ok(
      await node.request(`/_doppel/tokens/${String(created.json['id'])}`, { method: 'DELETE' }),
      'delete token',
    );
    assert.equal((await write(node, 'tel', 'tok v=1 1\n', { authorization: `Token ${token}` })).status, 401);
    const anonymous = await node.request<Json>('/api/v2/buckets', { auth: null });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json['code'], 'unauthorized');
  });

  void it("validates replications with InfluxDB's defaults and minima", async () => {
    const bucketId = await createBucket(node, 'checked');
    const base = {
      name: 'r',
      orgID: 'doppel',
      remoteID: remoteId,
      localBucketID: bucketId,
      remoteBucketName: 'edge',
    };
    const small = await node.request<Json>('/api/v2/replications', {
      method: 'POST',
      body: { ...base, maxQueueSizeBytes: 33554429 },
    });
    assert.equal(small.status, 400);
    assert.equal(small.json['code'], 'invalid');
    const dry = await node.request('/api/v2/replications?validate=true', { method: 'POST', body: base });
    assert.equal(dry.status, 204, dry.text);
    assert.equal(
      ok(await node.request<{ replications: Json[] }>('/api/v2/replications'), 'list').replications.length,
      0,
    );
    const created = await replication(node, base);
    assert.equal(created['maxQueueSizeBytes'], 67108860);
    assert.equal(created['maxAgeSeconds'], 604800);
    assert.equal(created['dropNonRetryableData'], false);
    assert.equal(created['RemoteBucketName'], 'edge');
    assert.equal(created['remoteBucketID'], null);
    assert.equal(created['currentQueueSizeBytes'], 0);
    assert.equal(created['remainingBytesToBeSynced'], 0);
    assert.equal(created['localBucketID'], bucketId);
    const id = String(created['id']);
    const validate = await node.request(`/api/v2/replications/${id}/validate`, { method: 'POST' });
    assert.equal(validate.status, 204, validate.text);
    const patched = ok(
      await node.request<Json>(`/api/v2/replications/${id}`, {
        method: 'PATCH',
        body: { maxAgeSeconds: 0, description: 'd' },
      }),
      'patch',
    );
    assert.equal(patched['maxAgeSeconds'], 604800);
    assert.equal(patched['description'], 'd');
    const unreachable = ok(
      await node.request<Json>('/api/v2/remotes', {
        method: 'POST',
        body: {
          name: 'nowhere',
          orgID: 'doppel',
          remoteURL: `http://127.0.0.1:${await freePort()}`,
          remoteAPIToken: 't',
        },
      }),
      'remote nowhere',
    );
    const failing = await node.request<Json>(`/api/v2/replications/${id}?validate=true`, {
      method: 'PATCH',
      body: { remoteID: unreachable['id'] },
    });
    assert.equal(failing.status, 400);
    assert.match(String(failing.json['message']), /validation failed/);
    // Deleting the bucket deletes its replications.
    assert.equal((await node.request(`/api/v2/buckets/${bucketId}`, { method: 'DELETE' })).status, 204);
    assert.equal((await node.request(`/api/v2/replications/${id}`)).status, 404);
  });

  void it('forwards points, gzipped requests and the valid lines of a bad request to InfluxDB 1.x', async () => {
    const bucketId = await createBucket(node, 'fwd');
    const created = await replication(node, {
      name: 'fwd',
      orgID: 'doppel',
      remoteID: remoteId,
      localBucketID: bucketId,
      remoteBucketName: 'edge/autogen',
    });
    const id = String(created['id']);
    assert.equal((await write(node, 'fwd', cpuLines('fwd', 1_000, 3_000))).status, 204);
    assert.equal(
      (await write(node, 'fwd', gzipSync(cpuLines('fwd', 10_000, 7_000)), { 'content-encoding': 'gzip' }))
        .status,
      204,
    );
    const partial = await write(
      node,
      'fwd',
      `${cpuLines('fwd', 50_000, 2)}fwd,host=bad usage_user=\n${cpuLines('fwd', 60_000, 2)}`,
    );
    assert.equal(partial.status, 400);
    assert.equal(partial.json['code'], 'invalid');
    assert.equal(partial.json['line'], 3);
    assert.match(String(partial.json['message']), /line 3: unable to parse/);
    await arrives(influx, 'edge', 'fwd', 10_004);
    const row = await eventually('an empty queue', async () => {
      const r = await getReplication(node, id);
      return r['currentQueueSizeBytes'] === 0 ? r : undefined;
    });
    assert.equal(row['latestResponseCode'], 204);
    assert.equal(row['remainingBytesToBeSynced'], 0);
    const stored = ok(await node.request<Json>('/fwd'), 'bucket info');
    assert.equal(stored['doc_count'], 10_004);
    // A point's document.
    const doc = ok(
      await node.request<Json>(`/fwd/${encodeURIComponent('fwd,host=h0,tag=x 1000')}`),
      'point doc',
    );
    assert.deepEqual(doc['fields'], { usage_user: 0.5, usage_system: 0 });
    assert.deepEqual(doc['types'], { usage_system: 'integer' });
    const board = await boardRow(node, id);
    assert.equal(board?.['kind'], 'stream');
    assert.equal(board?.['state'], 'running');
    assert.equal((board?.['counters'] as Json)['points_sent'], 10_004);
    const metrics = await node.request('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(
      metrics.text,
      new RegExp(`replications_queue_total_points_queued\\{replicationID="${id}"\\} 10004`),
    );
    assert.match(
      metrics.text,
      new RegExp(`replications_queue_current_bytes_queued\\{replicationID="${id}"\\} 0`),
    );
    assert.match(metrics.text, /doppel_points_written_total\{bucket="fwd"\} 10004/);
  });

  void it('keeps every point across a remote outage', async () => {
    const bucketId = await createBucket(node, 'outage');
    const id = String(
      (
        await replication(node, {
          name: 'o',
          orgID: 'doppel',
          remoteID: remoteId,
          localBucketID: bucketId,
          remoteBucketName: 'edge',
        })
      )['id'],
    );
    let written = 0;
    const batch = async (): Promise<void> => {
      assert.equal((await write(node, 'outage', cpuLines('outage', 1_000_000 + written, 500))).status, 204);
      written += 500;
    };
    await batch();
    await influx.halt();
    for (let i = 0; i < 10; i++) await batch();
    const down = await eventually('a failed attempt', async () => {
      const r = await getReplication(node, id);
      return r['latestResponseCode'] === 0 ? r : undefined;
    });
    assert.ok(Number(down['currentQueueSizeBytes']) > 0);
    assert.equal((await boardRow(node, id))?.['state'], 'crashing');
    await sleep(1_500);
    for (let i = 0; i < 4; i++) await batch();
    await influx.restart();
    await arrives(influx, 'edge', 'outage', written);
    await eventually('a drained queue', async () =>
      (await getReplication(node, id))['currentQueueSizeBytes'] === 0 ? true : undefined,
    );
  });

  void it('drops 400s only with dropNonRetryableData, counted', async () => {
    await influx.write('edge', 'typed usage_user=1 1\n');
    const bucketId = await createBucket(node, 'typed');
    const id = String(
      (
        await replication(node, {
          name: 't',
          orgID: 'doppel',
          remoteID: remoteId,
          localBucketID: bucketId,
          remoteBucketName: 'edge',
          dropNonRetryableData: true,
        })
      )['id'],
    );
    // A field type conflict: InfluxDB answers 400.
    assert.equal((await write(node, 'typed', 'typed usage_user="text" 2\n')).status, 204);
    assert.equal((await write(node, 'typed', 'typed usage_user=3 3\n')).status, 204);
    await arrives(influx, 'edge', 'typed', 2);
    await eventually('a drained queue', async () =>
      (await getReplication(node, id))['currentQueueSizeBytes'] === 0 ? true : undefined,
    );
    const row = await boardRow(node, id);
    assert.equal((row?.['counters'] as Json)['points_dropped'], 1);
    assert.equal((row?.['counters'] as Json)['points_sent'], 1);
  });

  void it('purges queued data older than maxAgeSeconds', async () => {
    const bucketId = await createBucket(node, 'aged');
    const nowhere = ok(
      await node.request<Json>('/api/v2/remotes', {
        method: 'POST',
        body: {
          name: 'down',
          orgID: 'doppel',
          remoteURL: `http://127.0.0.1:${await freePort()}`,
          remoteAPIToken: 't',
        },
      }),
      'remote down',
    );
    const id = String(
      (
        await replication(node, {
          name: 'aged',
          orgID: 'doppel',
          remoteID: nowhere['id'],
          localBucketID: bucketId,
          remoteBucketName: 'edge',
          maxAgeSeconds: 2,
        })
      )['id'],
    );
    assert.equal((await write(node, 'aged', cpuLines('aged', 1, 1_000))).status, 204);
    const queued = Number((await getReplication(node, id))['currentQueueSizeBytes']);
    assert.equal(queued, Buffer.byteLength(cpuLines('aged', 1, 1_000)));
    await eventually(
      'the purge',
      async () => ((await getReplication(node, id))['currentQueueSizeBytes'] === 0 ? true : undefined),
      15_000,
    );
    const row = await boardRow(node, id);
    assert.equal((row?.['counters'] as Json)['points_purged'], 1_000);
    assert.equal((row?.['counters'] as Json)['bytes_purged'], queued);
    assert.equal((row?.['counters'] as Json)['points_sent'], 0);
  });

  void it('when a queue is full: drops and counts by default, or refuses writes with 503', async () => {
    const fullBucket = await createBucket(node, 'full');
    const strictBucket = await createBucket(node, 'strict');
    const common = {
      orgID: 'doppel',
      remoteID: remoteId,
      remoteBucketName: 'edge',
      maxQueueSizeBytes: 33_554_430,
    };
    const dropId = String(
      (await replication(node, { ...common, name: 'full', localBucketID: fullBucket }))['id'],
    );
    const rejectId = String(
      (
        await replication(node, {
          ...common,
          name: 'strict',
          localBucketID: strictBucket,
          fullQueuePolicy: 'reject',
        })
      )['id'],
    );
    await influx.halt();
    // ~8 KiB points: a request of 1,000 is ~8 MB.
    const pad = 'p'.repeat(8_000);
    const bigLines = (m: string, start: number): string => {
      let out = '';
      for (let i = 0; i < 1_000; i++) out += `${m},host=h usage_user=1,pad="${pad}" ${start + i}\n`;
      return out;
    };
    // What an exact queue holds: whole requests while they fit.
    const fitting = (m: string): { fits: number; bytes: number } => {
      let fits = 0;
      let bytes = 0;
      for (let i = 0; i < 6; i++) {
        const size = Buffer.byteLength(bigLines(m, i * 1_000));
        if (bytes + size > 33_554_430) break;
        bytes += size;
        fits++;
      }
      return { fits, bytes };
    };
    const { fits, bytes: queuedBytes } = fitting('full');
    assert.equal(fitting('strict').fits, fits);
    let accepted = 0;
    for (let i = 0; i < 6; i++) {
      assert.equal(
        (await write(node, 'full', bigLines('full', i * 1_000))).status,
        204,
        'drop mode never refuses',
      );
      const statusCode = (await write(node, 'strict', bigLines('strict', i * 1_000))).status;
      if (statusCode === 204) accepted++;
      else {
        assert.equal(statusCode, 503);
      }
    }
    assert.equal(accepted, fits);
    const refused = await write(node, 'strict', bigLines('strict', 99_000));
    assert.equal(refused.status, 503);
    assert.equal(refused.json['code'], 'unavailable');
    assert.match(String(refused.json['message']), /queue .* is full/);
    const dropRow = await boardRow(node, dropId);
    assert.equal((dropRow?.['counters'] as Json)['points_failed_to_queue'], (6 - fits) * 1_000);
    assert.equal(Number((await getReplication(node, dropId))['currentQueueSizeBytes']), queuedBytes);
    await influx.restart();
    await arrives(influx, 'edge', 'full', fits * 1_000);
    await arrives(influx, 'edge', 'strict', fits * 1_000);
    for (const id of [dropId, rejectId])
      await eventually('a drained queue', async () =>
        (await getReplication(node, id))['currentQueueSizeBytes'] === 0 ? true : undefined,
      );
    assert.equal((await write(node, 'strict', bigLines('strict', 99_000))).status, 204);
    await arrives(influx, 'edge', 'strict', (fits + 1) * 1_000);
    const metrics = (await node.request('/metrics')).text;
    assert.match(
      metrics,
      new RegExp(
        `replications_queue_points_failed_to_queue\\{replicationID="${dropId}"\\} ${(6 - fits) * 1_000}`,
      ),
    );
  });

  void it('shows a credential the remote rejects (401), then recovers when it is fixed', async () => {
    const secured = await InfluxProcess.start({ admin: { user: 'root', password: 'secret' } });
    try {
      await secured.createDatabase('locked');
      const bucketId = await createBucket(node, 'locked');
      const remote = ok(
        await node.request<Json>('/api/v2/remotes', {
          method: 'POST',
          body: { name: 'secured', orgID: 'doppel', remoteURL: secured.url, remoteAPIToken: 'root:wrong' },
        }),
        'remote',
      );
      const id = String(
        (
          await replication(node, {
            name: 'l',
            orgID: 'doppel',
            remoteID: remote['id'],
            localBucketID: bucketId,
            remoteBucketName: 'locked',
          })
        )['id'],
      );
      assert.equal((await write(node, 'locked', cpuLines('locked', 1, 100))).status, 204);
      const row = await eventually('a 401', async () => {
        const r = await getReplication(node, id);
        return r['latestResponseCode'] === 401 ? r : undefined;
      });
      assert.match(String(row['latestErrorMessage']), /rejected the credential/);
      const board = await boardRow(node, id);
      assert.equal(board?.['state'], 'error');
      assert.match(String(board?.['last_error']), /rejected the credential \(HTTP 401\)/);
      assert.equal((board?.['details'] as Json)['credential_rejected'], true);
      ok(
        await node.request(`/api/v2/remotes/${String(remote['id'])}`, {
          method: 'PATCH',
          body: { remoteAPIToken: 'root:secret' },
        }),
        'fix the token',
      );
      await arrives(secured, 'locked', 'locked', 100);
      await eventually('running again', async () =>
        (await boardRow(node, id))?.['state'] === 'running' ? true : undefined,
      );
    } finally {
      await secured.stop();
    }
  });
});

void describe('streams across a kill -9 of Doppel', () => {
  let influx: InfluxProcess;
  let dataDir: string;
  let node: DoppelProcess | undefined;

  before(async () => {
    influx = await InfluxProcess.start();
    await influx.createDatabase('crash');
    dataDir = makeTempDir('doppel-stream-crash-');
  });

  after(async () => {
    await node?.stop();
    await influx?.stop();
    await removeTempDir(dataDir);
  });

  void it('delivers every acknowledged point after a SIGKILL during ingest', async () => {
    const password = 'crash-pw';
    node = await DoppelProcess.start({ dataDir, adminPassword: password, args: STREAM_ARGS });
    const bucketId = await createBucket(node, 'crash');
    const remote = ok(
      await node.request<Json>('/api/v2/remotes', {
        method: 'POST',
        body: { name: 'i', orgID: 'doppel', remoteURL: influx.url, remoteAPIToken: 'a:b' },
      }),
      'remote',
    );
    await replication(node, {
      name: 'c',
      orgID: 'doppel',
      remoteID: remote['id'],
      localBucketID: bucketId,
      remoteBucketName: 'crash',
    });
    const acked: number[] = [];
    let nextBatch = 0;
    let stop = false;
    const running = node;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const batch = nextBatch++;
        try {
          const res = await write(running, 'crash', cpuLines('crash', batch * 1_000, 1_000, `b${batch}`));
          if (res.status === 204) acked.push(batch);
        } catch {
          return; // the node is gone
        }
      }
    };
    const writers = [writer(), writer(), writer()];
    await eventually('some acknowledged writes', async () => (acked.length >= 20 ? true : undefined));
    await running.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    assert.equal(running.exitStatus?.signal, 'SIGKILL');
    node = await DoppelProcess.start({ dataDir, adminPassword: password, args: STREAM_ARGS });
    await eventually(
      'every acknowledged batch in InfluxDB',
      async () => {
        const result = await influx.query('SELECT count(usage_user) FROM crash GROUP BY "tag"', 'crash');
        const counts = new Map<string, number>();
        for (const series of result.results[0]?.series ?? []) {
          const tags = (series as unknown as { tags: Record<string, string> }).tags;
          counts.set(tags['tag'], Number(series.values[0][1]));
        }
        return acked.every((b) => counts.get(`b${b}`) === 1_000) ? true : undefined;
      },
      60_000,
    );
  });
});

void describe('Doppel to Doppel streams', () => {
  let source: DoppelProcess;
  let target: DoppelProcess;

  before(async () => {
    [source, target] = await Promise.all([DoppelProcess.start({ args: STREAM_ARGS }), DoppelProcess.start()]);
  });

  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  void it('streams bucket points over /api/v2/write and documents over _bulk_docs', async () => {
    await createBucket(target, 'sink');
    ok(await target.request('/docsink', { method: 'PUT' }), 'target database');
    const token = String(
      ok(await target.request<Json>('/_doppel/tokens', { method: 'POST', body: {} }), 'token')['token'],
    );
    ok(
      await source.request('/_doppel/remotes/peer', {
        method: 'PUT',
        body: { kind: 'doppel', url: target.url, token },
      }),
      'remote',
    );
    ok(
      await source.request('/_doppel/remotes/peer-docs', {
        method: 'PUT',
        body: { kind: 'doppel', url: target.url, username: target.adminUser, password: target.adminPassword },
      }),
      'docs remote',
    );
    await createBucket(source, 'edge');
    const points = ok(
      await source.request<Json>('/_doppel/streams', {
        method: 'POST',
        body: { name: 'p', source: 'edge', remote: 'peer', target: 'sink' },
      }),
      'point stream',
    );
    assert.equal(points['source_kind'], 'bucket');
    ok(await source.request('/docs', { method: 'PUT' }), 'source database');
    const docs = ok(
      await source.request<Json>('/_doppel/streams', {
        method: 'POST',
        body: { name: 'd', source: 'docs', remote: 'peer-docs', target: 'docsink' },
      }),
      'doc stream',
    );
    assert.equal(docs['source_kind'], 'database');
    assert.equal((await write(source, 'edge', cpuLines('cpu', 1, 2_000))).status, 204);
    const bulk = ok(
      await source.request<Json[]>('/docs/_bulk_docs', {
        method: 'POST',
        body: { docs: Array.from({ length: 50 }, (_, i) => ({ _id: `d${i}`, n: i })) },
      }),
      'bulk docs',
    );
    ok(
      await source.request(`/docs/d0?rev=${String(bulk[0]['rev'])}`, {
        method: 'PUT',
        body: { n: 'edited' },
      }),
      'edit',
    );
    await eventually('points at the target', async () => {
      const info = ok(await target.request<Json>('/sink'), 'sink info');
      return info['doc_count'] === 2_000 ? true : undefined;
    });
    const sourceDoc = ok(
      await source.request<Json>(`/edge/${encodeURIComponent('cpu,host=h3,tag=x 4')}`),
      'source point',
    );
    const targetDoc = ok(
      await target.request<Json>(`/sink/${encodeURIComponent('cpu,host=h3,tag=x 4')}`),
      'target point',
    );
    assert.deepEqual(targetDoc, sourceDoc);
    await eventually('documents at the target', async () => {
      const doc = await target.request<Json>('/docsink/d0');
      const info = ok(await target.request<Json>('/docsink'), 'docsink');
      return doc.status === 200 && doc.json['n'] === 'edited' && info['doc_count'] === 50 ? true : undefined;
    });
    const sourceD0 = ok(await source.request<Json>('/docs/d0'), 'source d0');
    const targetD0 = ok(await target.request<Json>('/docsink/d0'), 'target d0');
    assert.equal(targetD0['_rev'], sourceD0['_rev']);
    const rows = ok(
      await source.request<{ replications: Json[] }>('/_doppel/replications'),
      'replications',
    ).replications;
    assert.equal(rows.filter((r) => r['kind'] === 'stream').length, 2);
  });
});
