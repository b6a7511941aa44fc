/**
 * Outbound stream throughput (issue 5): Telegraf-like `cpu` points written to a Doppel
 * bucket with one active stream into a real InfluxDB 1.x, end to end (until the stream's
 * queue is drained and InfluxDB holds every point), against InfluxDB's own direct ingest
 * of the same requests, measured in the same run. Target: ≥ 100,000 points/s end to end.
 *
 *   npm run build && npx tsx bench/streams.ts [--points 1000000] [--batch 5000] [--concurrency 4]
 *
 * Prints one JSON line: {"bench":"streams", …, "ratio": e2e / direct}.
 */
import { parseArgs } from 'node:util';
import { DoppelProcess } from '../test/support/doppel-process.js';
import { InfluxProcess } from '../test/support/influxdb.js';

const { values } = parseArgs({
  options: {
    points: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '4' },
  },
});
const POINTS = Number(values.points);
const BATCH = Number(values.batch);
const CONCURRENCY = Number(values.concurrency);
const HOSTS = 100;

/** A Telegraf `inputs.cpu` line: 10 float fields, tags cpu and host (~230 bytes). */
function cpuBatch(index: number): string {
  let out = '';
  const base = 1_700_000_000_000_000_000n + BigInt(index * BATCH) * 1_000_000n;
  for (let i = 0; i < BATCH; i++) {
    const n = index * BATCH + i;
    const ts = base + BigInt(i) * 1_000_000n;
    out +=
      `cpu,cpu=cpu${n % 4},host=edge-${n % HOSTS} usage_guest=0,usage_guest_nice=0,` +
      `usage_idle=${(90 + (n % 97) / 10).toFixed(2)},usage_iowait=${((n % 7) / 10).toFixed(2)},usage_irq=0,` +
      `usage_nice=0,usage_softirq=0.05,usage_steal=0,usage_system=${((n % 13) / 10).toFixed(2)},` +
      `usage_user=${((n % 31) / 10).toFixed(2)} ${ts}\n`;
  }
  return out;
}

/** Posts every batch with `CONCURRENCY` clients; resolves with the elapsed ms. */
async function pump(
  batches: readonly string[],
  url: string,
  headers: Record<string, string>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const client = async (): Promise<void> => {
    while (next < batches.length) {
      const body = batches[next++];
      const res = await fetch(url, { method: 'POST', body, headers });
      const text = await res.text();
      if (res.status !== 204) throw new Error(`${url}: ${res.status} ${text}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  return performance.now() - started;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
  const batches = Array.from({ length: Math.ceil(POINTS / BATCH) }, (_, i) => cpuBatch(i));
  const total = batches.length * BATCH;
  const bytes = batches.reduce((sum, b) => sum + Buffer.byteLength(b), 0);
  const influx = await InfluxProcess.start();
  const node = await DoppelProcess.start();
  try {
    // InfluxDB alone: the same requests straight to its /write.
    await influx.createDatabase('direct');
    const directMs = await pump(batches, `${influx.url}/write?db=direct&precision=n`, {
      'content-type': 'text/plain',
    });
    const directCount = await influx.count('direct', 'cpu', 'usage_user');
    if (directCount !== total) throw new Error(`InfluxDB holds ${directCount} of ${total} direct points`);

    // Doppel with one stream into InfluxDB.
    await influx.createDatabase('streamed');
    const bucket = await node.request<{ id: string }>('/api/v2/buckets', {
      method: 'POST',
      body: { name: 'telegraf' },
    });
    const remote = await node.request<{ id: string }>('/api/v2/remotes', {
      method: 'POST',
      body: { name: 'influx', orgID: 'doppel', remoteURL: influx.url, remoteAPIToken: 'bench:bench' },
    });
    const created = await node.request<{ id: string }>('/api/v2/replications', {
      method: 'POST',
      body: {
        name: 'bench',
        orgID: 'doppel',
        remoteID: remote.json.id,
        localBucketID: bucket.json.id,
        remoteBucketName: 'streamed',
        maxQueueSizeBytes: 4 * bytes,
      },
    });
    if (created.status !== 201) throw new Error(`replication: ${created.status} ${created.text}`);
    const started = performance.now();
    const ingestMs = await pump(batches, `${node.url}/api/v2/write?bucket=telegraf&precision=ns`, {
      'content-type': 'text/plain',
      authorization: node.adminAuthHeader,
    });
    await until('the drained queue', async () => {
      const res = await node.request<{ currentQueueSizeBytes: number }>(
        `/api/v2/replications/${created.json.id}`,
      );
      return res.json.currentQueueSizeBytes === 0;
    });
    const endToEndMs = performance.now() - started;
    const streamedCount = await influx.count('streamed', 'cpu', 'usage_user');
    if (streamedCount !== total)
      throw new Error(`InfluxDB holds ${streamedCount} of ${total} streamed points`);

    const rate = (ms: number): number => Math.round(total / (ms / 1000));
    const result = {
      bench: 'streams',
      points: total,
      batch: BATCH,
      concurrency: CONCURRENCY,
      bytes,
      influx_direct_points_per_s: rate(directMs),
      doppel_ingest_points_per_s: rate(ingestMs),
      end_to_end_points_per_s: rate(endToEndMs),
      ratio: Number((rate(endToEndMs) / rate(directMs)).toFixed(3)),
      target_points_per_s: 100_000,
      met: rate(endToEndMs) >= 100_000,
    };
    console.log(JSON.stringify(result));
  } finally {
    await node.stop();
    await influx.stop();
  }
}

await main();
