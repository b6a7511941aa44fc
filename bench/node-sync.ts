/**
 * Doppel → Doppel whole-node replication, measured from outside over RESP:
 *
 *   1. full sync: a Doppel primary holds N keys of every type (strings,
 *      lists, hashes, sorted sets; a third with TTLs); a fresh Doppel node is
 *      told `REPLICAOF 127.0.0.1 <primary port>` and the clock runs until it
 *      reports `master_link_status:up` with `DBSIZE` = N. Target ≥ 200,000
 *      keys/s; a redis-server replica of a redis-server primary holding the
 *      same keys does the same in the same run, for the ratio;
 *   2. steady lag: with the replica online, `--rate` SETs per second are
 *      written to the primary for `--warmup` + `--seconds` (pipelined batches
 *      every millisecond, one connection) while a probe, every 5 ms, SETs a
 *      key on the primary and, from the moment that SET is acknowledged,
 *      reads the key on the replica in a tight loop until it shows the new
 *      value. The p99 target (≤ 5 ms, at a write rate within 5% of `--rate`)
 *      is on the probes after the warm-up; those of the warm-up are reported
 *      apart (a replica's first writes after a full sync are slow: lags of
 *      10-20 ms for about 250 ms). The same for the redis-server pair.
 *
 * Doppel is measured first (primary and replica), stopped, then redis-server,
 * so the two never compete for the CPUs.
 *
 *     npm run build && npx tsx bench/node-sync.ts [--keys 200000] [--rate 20000] [--seconds 10] [--warmup 1]
 *                                                  [--cpu-prof DIR]
 *
 * Progress goes to stderr; the last stdout line is one JSON object
 * `{"bench":"node-sync",…}`.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RedisPeer } from '../test/support/redis-peer.js';
import { RespClient, RespError, type Arg, type Reply } from '../test/support/resp-client.js';
import { nonNegativeInt, percentile, perSecond, positiveInt } from './lib/measure.js';
import { freePort, installCleanupHooks, say, startDoppel } from './lib/servers.js';

const TARGET_KEYS_PER_S = 200_000;
const TARGET_LAG_P99_MS = 5;
/** The achieved write rate may fall this far short of `--rate`. */
const RATE_TOLERANCE = 0.05;
const PROBE_EVERY_MS = 5;
const PROBE_KEY = 'lag:probe';
/** A write, a probe or the sync that takes longer than this is an error, not a figure. */
const GIVE_UP_MS = 120_000;

const { values } = parseArgs({
  options: {
    keys: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const KEYS = positiveInt(values.keys, 'keys', 200_000);
const RATE = positiveInt(values.rate, 'rate', 20_000);
const SECONDS = positiveInt(values.seconds, 'seconds', 10);
const WARMUP_S = nonNegativeInt(values.warmup, 'warmup', 1);
const PROF_DIR = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);

/** The commands creating key `i`: mostly small values, a few big ones that leave the compact encodings. */
function keyCommands(i: number): Arg[][] {
  const key = `key:${i}`;
  const withTtl = i % 3 === 0;
  const big = i % 1000 === 1;
  let create: Arg[];
  switch (i % 5) {
    case 0:
    case 1:
      return [['SET', key, big ? 'x'.repeat(4000) : `value-${i}`, ...(withTtl ? ['EX', 3600] : [])]];
    case 2:
      create = ['RPUSH', key, ...Array.from({ length: big ? 200 : 4 }, (_, j) => `item-${j}`)];
      break;
    case 3:
      create = ['HSET', key, ...Array.from({ length: big ? 400 : 6 }, (_, j) => `f${j >> 1}-${j & 1}`)];
      break;
    default:
      create = ['ZADD', key, ...Array.from({ length: big ? 200 : 3 }, (_, j) => [j * 1.5, `m${j}`]).flat()];
  }
  return withTtl ? [create, ['EXPIRE', key, 3600]] : [create];
}

function check(reply: Reply, what: string): Reply {
  if (reply instanceof RespError) throw new Error(`${what}: ${reply.message}`);
  return reply;
}

async function fill(client: RespClient): Promise<void> {
  let batch: Arg[][] = [];
  for (let i = 0; i < KEYS; i++) {
    batch.push(...keyCommands(i));
    if (batch.length >= 5000 || i === KEYS - 1) {
      for (const reply of await client.pipeline(batch)) check(reply, 'fill');
      batch = [];
    }
  }
  const size = Number(check(await client.call('DBSIZE'), 'DBSIZE'));
  if (size !== KEYS) throw new Error(`the primary has ${size} keys after the fill, expected ${KEYS}`);
}

const field = (info: Reply, name: string): string =>
  new RegExp(`^${name}:(.*)$`, 'm').exec(typeof info === 'string' ? info : '')?.[1]?.trim() ?? '';

/**
 * A connection to a replica that survives the full sync: a Doppel replica
 * takes its primary's users with the keyspace, so when the link closes or
 * refuses, it is reopened with each known password in turn.
 */
class ReplicaConnection {
  #client: RespClient;
  readonly #open: (() => Promise<RespClient>)[];

  private constructor(client: RespClient, open: (() => Promise<RespClient>)[]) {
    this.#client = client;
    this.#open = open;
  }

  static async open(open: (() => Promise<RespClient>)[]): Promise<ReplicaConnection> {
    return new ReplicaConnection(await ReplicaConnection.#first(open), open);
  }

  static async #first(open: (() => Promise<RespClient>)[]): Promise<RespClient> {
    let last: unknown;
    for (const attempt of open) {
      try {
        return await attempt();
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error('cannot connect to the replica');
  }

  /** One command; on a closed connection or an auth refusal, reconnects once and retries. */
  async call(...args: Arg[]): Promise<Reply> {
    try {
      const reply = this.#client.ended ? undefined : await this.#client.call(...args);
      if (
        reply !== undefined &&
        !(reply instanceof RespError && /NOAUTH|NOPERM|WRONGPASS/.test(reply.message))
      )
        return reply;
    } catch {
      // closed under us: reconnect below
    }
    this.#client.close();
    this.#client = await ReplicaConnection.#first(this.#open);
    return this.#client.call(...args);
  }

  close(): void {
    this.#client.close();
  }
}

/** REPLICAOF on the replica, then the seconds until its link is up with all N keys. */
async function timeSync(replica: ReplicaConnection, primaryPort: number): Promise<number> {
  const started = performance.now();
  const reply = await replica.call('REPLICAOF', '127.0.0.1', primaryPort);
  if (reply !== 'OK') throw new Error(`REPLICAOF answered ${JSON.stringify(reply)}`);
  let lastReport = started;
  for (;;) {
    const info = check(await replica.call('INFO', 'replication'), 'INFO replication');
    if (field(info, 'master_link_status') === 'up') {
      const size = Number(check(await replica.call('DBSIZE'), 'DBSIZE'));
      if (size === KEYS) break;
    }
    const now = performance.now();
    if (now - started > GIVE_UP_MS) {
      throw new Error(`the replica is not in sync after ${GIVE_UP_MS} ms:\n${JSON.stringify(info)}`);
    }
    if (now - lastReport > 5000) {
      lastReport = now;
      say(`  still syncing after ${((now - started) / 1000).toFixed(1)} s`);
    }
    await sleep(2);
  }
  return (performance.now() - started) / 1000;
}

/**
 * Writes `RATE` SETs per second for `WARMUP_S` + `SECONDS` on `client`: every millisecond
 * (or as soon after as the timer fires) the SETs due by then go out in one
 * write; the replies are counted as they come. Returns the writes and the
 * time from the first send to the last reply.
 */
async function pacedWrites(client: RespClient): Promise<{ writes: number; ms: number }> {
  const total = RATE * (WARMUP_S + SECONDS);
  const value = 'v'.repeat(32);
  let sent = 0;
  const replies = (async (): Promise<void> => {
    for (let i = 0; i < total; i++) check(await client.next(), 'paced SET');
  })();
  const t0 = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000) + 1);
    if (due > sent) {
      const parts: string[] = [];
      for (; sent < due; sent++) {
        const key = `load:${sent % 100_000}`;
        parts.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
      }
      client.writeRaw(parts.join(''));
    }
    await sleep(1);
  }
  await replies;
  return { writes: total, ms: performance.now() - t0 };
}

/** Reads `key` on the replica without pausing until it holds `value`; the ms that took. */
async function waitVisible(replica: ReplicaConnection, key: string, value: string): Promise<number> {
  const from = performance.now();
  while ((await replica.call('GET', key)) !== value) {
    if (performance.now() - from > GIVE_UP_MS) {
      throw new Error(`${key}=${value} not visible on the replica after ${GIVE_UP_MS} ms`);
    }
  }
  return performance.now() - from;
}

/**
 * Every `PROBE_EVERY_MS`: SET the probe key on the primary to a new value,
 * then, from the moment that SET is acknowledged, GET it on the replica
 * without pausing until the new value shows. Runs until `done()`. Also
 * returns the probe SETs' round trips (a slow primary shows there, not in
 * the lag).
 */
async function probeLag(
  primary: RespClient,
  replica: ReplicaConnection,
  done: () => boolean,
): Promise<{ lags: number[]; setMs: number[]; warmupLags: number[] }> {
  const lags: number[] = [];
  const setMs: number[] = [];
  const warmupLags: number[] = [];
  const warmupEnds = performance.now() + WARMUP_S * 1000;
  for (let i = 0; !done(); i++) {
    const sent = performance.now();
    const value = `probe-${i}`;
    const reply = await primary.call('SET', PROBE_KEY, value);
    if (reply !== 'OK') throw new Error(`probe SET answered ${JSON.stringify(reply)}`);
    const setDone = performance.now() - sent;
    const lag = await waitVisible(replica, PROBE_KEY, value);
    if (sent < warmupEnds) warmupLags.push(lag);
    else {
      setMs.push(setDone);
      lags.push(lag);
    }
    const wait = sent + PROBE_EVERY_MS - performance.now();
    if (wait > 0) await sleep(wait);
  }
  return { lags, setMs, warmupLags };
}

interface Spread {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function spread(values: number[]): Spread {
  const sorted = values.sort((x, y) => x - y);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: percentile(sorted, 100) };
}

interface LagFigures {
  readonly lag_ms: Spread & { readonly samples: number };
  /** The probes of the warm-up (not in the target). */
  readonly lag_warmup_ms: Spread | null;
  readonly writes_per_s: number;
  readonly rate_met: boolean;
  /** The probe SETs' round trips to the primary after the warm-up. */
  readonly probe_set_ms: Spread;
  /** After the last paced write's reply: until a SET sent behind it was visible on the replica. */
  readonly drain_ms: number;
}

/** The paced writes and the probe together, then the time until the replica has caught up. */
async function measureLag(
  writer: RespClient,
  prober: RespClient,
  replica: ReplicaConnection,
): Promise<LagFigures> {
  let writing = true;
  const probing = probeLag(prober, replica, () => !writing);
  let written: Awaited<ReturnType<typeof pacedWrites>>;
  try {
    written = await pacedWrites(writer);
  } finally {
    writing = false;
  }
  const ended = performance.now();
  const probes = await probing;
  // A marker behind every paced write on the same connection: once the replica shows it, it has
  // applied them all (the probe alone could pass a stream that stalled on the paced writes).
  const marker = `end-${Date.now()}`;
  check(await writer.call('SET', 'lag:end', marker), 'SET lag:end');
  await waitVisible(replica, 'lag:end', marker);
  const rate = perSecond(written.writes, written.ms);
  return {
    lag_ms: { ...spread(probes.lags), samples: probes.lags.length },
    lag_warmup_ms: probes.warmupLags.length === 0 ? null : spread(probes.warmupLags),
    writes_per_s: rate,
    rate_met: rate >= RATE * (1 - RATE_TOLERANCE),
    probe_set_ms: spread(probes.setMs),
    drain_ms: Math.round((performance.now() - ended) * 10) / 10,
  };
}

interface PairFigures extends LagFigures {
  readonly sync_s: number;
  readonly keys_per_s: number;
}

function profArgs(name: string): string[] {
  if (PROF_DIR === undefined) return [];
  return ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`, `--cpu-prof-name=node-sync-${name}.cpuprofile`];
}

function describe(name: string, f: PairFigures): void {
  say(
    `${name}: sync ${f.sync_s.toFixed(2)} s (${f.keys_per_s} keys/s); lag p50 ${f.lag_ms.p50} ms, ` +
      `p99 ${f.lag_ms.p99} ms, max ${f.lag_ms.max} ms (${f.lag_ms.samples} probes) at ${f.writes_per_s} writes/s; ` +
      `probe SET p99 ${f.probe_set_ms.p99} ms; drained ${f.drain_ms} ms after the last write`,
  );
}

async function measureDoppel(): Promise<PairFigures> {
  if (PROF_DIR !== undefined) mkdirSync(PROF_DIR, { recursive: true });
  const primaryPort = await freePort();
  const primary = await startDoppel({
    nodeArgs: profArgs('primary'),
    serveArgs: ['--resp-port', String(primaryPort)],
  });
  try {
    const primaryPassword = decodeURIComponent(new URL(primary.authUrl).password);
    const openPrimary = (): Promise<RespClient> => RespClient.open(primaryPort, 'admin', primaryPassword);
    const filler = await openPrimary();
    say(`doppel: filling the primary with ${KEYS} keys`);
    await fill(filler);
    filler.close();

    const replicaPort = await freePort();
    const replicaNode = await startDoppel({
      nodeArgs: profArgs('replica'),
      serveArgs: [
        '--resp-port',
        String(replicaPort),
        '--masteruser',
        'admin',
        '--masterauth',
        primaryPassword,
      ],
    });
    try {
      const replicaPassword = decodeURIComponent(new URL(replicaNode.authUrl).password);
      // Before the sync the replica knows its own admin; after it, the primary's.
      const replica = await ReplicaConnection.open([
        () => RespClient.open(replicaPort, 'admin', replicaPassword),
        () => RespClient.open(replicaPort, 'admin', primaryPassword),
      ]);
      return await syncThenLag('doppel', replica, primaryPort, openPrimary);
    } finally {
      await replicaNode.stop();
    }
  } finally {
    await primary.stop();
  }
}

/** REPLICAOF, timed until in sync; then the paced writes and the lag probe. */
async function syncThenLag(
  name: string,
  replica: ReplicaConnection,
  primaryPort: number,
  openPrimary: () => Promise<RespClient>,
): Promise<PairFigures> {
  say(`${name}: REPLICAOF`);
  const syncS = await timeSync(replica, primaryPort);
  say(`${name}: in sync after ${syncS.toFixed(2)} s; ${RATE} writes/s for ${WARMUP_S} + ${SECONDS} s`);
  const writer = await openPrimary();
  const prober = await openPrimary();
  const lag = await measureLag(writer, prober, replica);
  writer.close();
  prober.close();
  replica.close();
  return { sync_s: Number(syncS.toFixed(3)), keys_per_s: Math.round(KEYS / syncS), ...lag };
}

async function measureRedis(): Promise<PairFigures> {
  const primary = await RedisPeer.start(['--repl-diskless-sync', 'no', '--repl-diskless-sync-delay', '0']);
  try {
    const filler = await primary.client();
    say(`redis-server: filling the primary with ${KEYS} keys`);
    await fill(filler);
    filler.close();
    const peer = await RedisPeer.start();
    try {
      const replica = await ReplicaConnection.open([() => peer.client()]);
      return await syncThenLag('redis-server', replica, primary.port, () => primary.client());
    } finally {
      await peer.stop();
    }
  } finally {
    await primary.stop();
  }
}

async function main(): Promise<void> {
  installCleanupHooks();
  const doppel = await measureDoppel();
  describe('doppel', doppel);
  const redis = await measureRedis();
  describe('redis-server', redis);
  process.stdout.write(
    JSON.stringify({
      bench: 'node-sync',
      keys: KEYS,
      rate: RATE,
      seconds: SECONDS,
      warmup_s: WARMUP_S,
      doppel,
      redis_server: redis,
      ratio: Number((doppel.keys_per_s / redis.keys_per_s).toFixed(3)),
      targets: { sync_keys_per_s: TARGET_KEYS_PER_S, lag_p99_ms: TARGET_LAG_P99_MS, writes_per_s: RATE },
      met: {
        sync: doppel.keys_per_s >= TARGET_KEYS_PER_S,
        lag: doppel.lag_ms.p99 <= TARGET_LAG_P99_MS && doppel.rate_met,
      },
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
