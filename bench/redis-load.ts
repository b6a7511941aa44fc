/**
 * How fast Doppel loads a real Redis full sync: a redis-server 7.0 holds
 * N keys of every type (strings, lists, sets, hashes, sorted sets; a third
 * with TTLs), Doppel is told `REPLICAOF`, and the clock runs until Doppel
 * reports `master_link_status:up` with all N keys. A second redis-server
 * replica does the same in the same run, for the ratio.
 *
 *     npm run build && npx tsx bench/redis-load.ts [--keys 200000] [--diskless] [--cpu-prof DIR]
 *
 * Progress goes to stderr; the last stdout line is one JSON object
 * `{"bench":"redis-load",…}`. Target: ≥ 200,000 keys/s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RedisPeer } from '../test/support/redis-peer.js';
import { RespClient, type Arg } from '../test/support/resp-client.js';
import { freePort, installCleanupHooks, say, startDoppel } from './lib/servers.js';

const TARGET_KEYS_PER_S = 200_000;

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '200000' },
    diskless: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const KEYS = Number(values.keys);

/** The commands creating key `i`: mostly small values, a few big ones that leave the compact encodings. */
function keyCommands(i: number): Arg[][] {
  const key = `key:${i}`;
  const ttl = i % 3 === 0 ? ['EX', 3600] : [];
  const big = i % 1000 === 1;
  const out: Arg[][] = [];
  switch (i % 5) {
    case 0:
    case 1:
      out.push(['SET', key, big ? 'x'.repeat(4000) : `value-${i}`, ...ttl]);
      return out;
    case 2:
      out.push(['RPUSH', key, ...Array.from({ length: big ? 200 : 4 }, (_, j) => `item-${j}`)]);
      break;
    case 3:
      out.push(['HSET', key, ...Array.from({ length: big ? 400 : 6 }, (_, j) => `f${j >> 1}-${j & 1}`)]);
      break;
    default:
      out.push(['ZADD', key, ...Array.from({ length: big ? 200 : 3 }, (_, j) => [j * 1.5, `m${j}`]).flat()]);
  }
  if (ttl.length > 0) out.push(['EXPIRE', key, 3600]);
  return out;
}

async function fill(redis: RedisPeer): Promise<void> {
  const client = await redis.client();
  let batch: Arg[][] = [];
  for (let i = 0; i < KEYS; i++) {
    batch.push(...keyCommands(i));
    if (batch.length >= 5000 || i === KEYS - 1) {
      await client.pipeline(batch);
      batch = [];
    }
  }
  client.close();
}

const field = (info: unknown, name: string): string =>
  new RegExp(`^${name}:(.*)$`, 'm').exec(typeof info === 'string' ? info : '')?.[1]?.trim() ?? '';

/** REPLICAOF on `replica`, then the seconds until its link is up with every key loaded. */
async function timeSync(replica: RespClient, primaryPort: number): Promise<number> {
  const started = performance.now();
  const reply = await replica.call('REPLICAOF', '127.0.0.1', primaryPort);
  if (reply !== 'OK') throw new Error(`REPLICAOF answered ${JSON.stringify(reply)}`);
  for (;;) {
    const info = await replica.call('INFO', 'replication');
    if (field(info, 'master_link_status') === 'up') break;
    await sleep(5);
  }
  const elapsed = (performance.now() - started) / 1000;
  const size = Number(await replica.call('DBSIZE'));
  if (size !== KEYS) throw new Error(`the replica has ${size} keys, expected ${KEYS}`);
  return elapsed;
}

/** The transfer and the load's part after it, as Doppel reports its last full sync. */
async function lastFullSync(authUrl: string): Promise<{ transfer_ms: number; load_ms: number }> {
  const url = new URL(`${authUrl}/_doppel/replications`);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  url.username = url.password = '';
  const body = (await (await fetch(url, { headers: { authorization } })).json()) as {
    replications: { details?: { last_full_sync?: { transfer_ms: number; load_ms: number } | null } }[];
  };
  const figures = body.replications.find((r) => r.details?.last_full_sync != null)?.details?.last_full_sync;
  if (figures == null) throw new Error('/_doppel/replications shows no last_full_sync');
  return { transfer_ms: figures.transfer_ms, load_ms: figures.load_ms };
}

async function main(): Promise<void> {
  installCleanupHooks();
  const primary = await RedisPeer.start([
    '--repl-diskless-sync',
    values.diskless ? 'yes' : 'no',
    '--repl-diskless-sync-delay',
    '0',
  ]);
  try {
    say(`filling redis-server with ${KEYS} keys`);
    await fill(primary);

    const port = await freePort();
    const doppel = await startDoppel({
      nodeArgs:
        values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`],
      serveArgs: ['--resp-port', String(port)],
    });
    const password = decodeURIComponent(new URL(doppel.authUrl).password);
    let doppelS: number;
    let phases: { transfer_ms: number; load_ms: number };
    try {
      const client = await RespClient.open(port, 'admin', password);
      say('doppel: REPLICAOF');
      doppelS = await timeSync(client, primary.port);
      client.close();
      phases = await lastFullSync(doppel.authUrl);
    } finally {
      await doppel.stop();
    }

    say('redis-server replica: REPLICAOF');
    const peer = await RedisPeer.start();
    let redisS: number;
    try {
      const client = await peer.client();
      redisS = await timeSync(client, primary.port);
      client.close();
    } finally {
      await peer.stop();
    }

    const doppelRate = Math.round(KEYS / doppelS);
    const redisRate = Math.round(KEYS / redisS);
    say(
      `doppel ${doppelS.toFixed(2)} s (${doppelRate} keys/s), redis-server ${redisS.toFixed(2)} s (${redisRate} keys/s)`,
    );
    process.stdout.write(
      JSON.stringify({
        bench: 'redis-load',
        keys: KEYS,
        diskless: values.diskless,
        doppel: { sync_s: Number(doppelS.toFixed(3)), keys_per_s: doppelRate, ...phases },
        redis_server: { sync_s: Number(redisS.toFixed(3)), keys_per_s: redisRate },
        ratio: Number((doppelRate / redisRate).toFixed(3)),
        target_keys_per_s: TARGET_KEYS_PER_S,
        met: doppelRate >= TARGET_KEYS_PER_S,
      }) + '\n',
    );
  } finally {
    await primary.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
