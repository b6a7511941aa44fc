/**
 * Follower databases bench (the follower issue's performance acceptance):
 *
 *   1. bootstrap: a leader database of 100,000 docs (~1 KB) on node L; a
 *      follower started on node F (`_start`); the time until `_status` is
 *      SYNCING with the follower at the leader's seq: >= 40,000 docs/s;
 *   2. latency: 1,000 writes/s to a followed leader database, 3 s of warm-up
 *      then N seconds measured;
 *      the time from each write's acknowledgement by L to its row in the
 *      follower's continuous `_changes` on F: p50 <= 10 ms, p99 <= 50 ms;
 *   3. many followers: 200 followers on a fresh node G of 200 small leader
 *      databases, all SYNCING, with writes spread over them; G's RSS stays
 *      < 512 MiB.
 *
 * Usage: npx tsx bench/followers.ts [--docs 100000] [--doc-bytes 1024]
 *          [--bootstrap-rounds 1] [--latency-seconds 10] [--rate 1000]
 *          [--followers 200] [--only bootstrap|latency|many] [--cpu-prof DIR]
 *
 * Each bootstrap round runs on a fresh pair of nodes; with several rounds the
 * reported figure is their median (a shared machine drifts between runs), and
 * every round's figure is in the JSON.
 *
 * Needs `npm run build` (the nodes run dist/). Progress goes to stderr; the
 * last line on stdout is one JSON object.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { installCleanupHooks, say, startDoppel, type RunningServer } from './lib/servers.js';
import {
  pacedWriteLatency,
  percentile,
  perSecond,
  positiveInt,
  watchChangeIds,
  type LatencyFigures,
} from './lib/measure.js';

const TARGETS = { docs_per_s: 40_000, latency_p50_ms: 10, latency_p99_ms: 50, rss_mib: 512 } as const;
const R = '/_plugins/_replication';

interface Options {
  readonly docs: number;
  readonly docBytes: number;
  readonly bootstrapRounds: number;
  readonly latencySeconds: number;
  readonly rate: number;
  readonly followers: number;
  readonly only: 'bootstrap' | 'latency' | 'many' | undefined;
  readonly cpuProf: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      docs: { type: 'string' },
      'doc-bytes': { type: 'string' },
      'bootstrap-rounds': { type: 'string' },
      'latency-seconds': { type: 'string' },
      rate: { type: 'string' },
      followers: { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const only = values.only;
  if (only !== undefined && only !== 'bootstrap' && only !== 'latency' && only !== 'many')
    throw new Error('--only is bootstrap, latency or many');
  return {
    docs: positiveInt(values.docs, 'docs', 100_000),
    docBytes: positiveInt(values['doc-bytes'], 'doc-bytes', 1024),
    bootstrapRounds: positiveInt(values['bootstrap-rounds'], 'bootstrap-rounds', 1),
    latencySeconds: positiveInt(values['latency-seconds'], 'latency-seconds', 10),
    rate: positiveInt(values.rate, 'rate', 1000),
    followers: positiveInt(values.followers, 'followers', 200),
    only,
    cpuProf: values['cpu-prof'],
  };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

async function call(node: RunningServer, method: string, path: string, body?: unknown): Promise<unknown> {
  return node.client.json(method, path, [200, 201, 202], body === undefined ? undefined : json(body));
}

async function registerLeader(follower: RunningServer, leader: RunningServer): Promise<void> {
  const url = new URL(leader.authUrl);
  await call(follower, 'PUT', '/_doppel/remotes/leader', {
    url: `${url.protocol}//${url.host}`,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  });
}

async function fill(
  node: RunningServer,
  db: string,
  count: number,
  docBytes: number,
  prefix = 'd',
): Promise<void> {
  const filler = 'x'.repeat(Math.max(0, docBytes - 80));
  const batch = 2000;
  for (let start = 0; start < count; start += batch) {
    const docs = Array.from({ length: Math.min(batch, count - start) }, (_, i) => ({
      _id: `${prefix}${String(start + i).padStart(7, '0')}`,
      n: start + i,
      text: filler,
    }));
    await call(node, 'POST', `/${db}/_bulk_docs`, { docs });
  }
}

interface SyncState {
  readonly status: string;
  readonly leader: number;
  readonly follower: number;
}

async function syncState(node: RunningServer, name: string): Promise<SyncState> {
  const s = (await call(node, 'GET', `${R}/${name}/_status`)) as {
    status: string;
    syncing_details?: { leader_checkpoint: number; follower_checkpoint: number };
  };
  return {
    status: s.status,
    leader: s.syncing_details?.leader_checkpoint ?? -1,
    follower: s.syncing_details?.follower_checkpoint ?? -1,
  };
}

async function waitInSync(
  leader: RunningServer,
  db: string,
  follower: RunningServer,
  name: string,
  timeoutMs: number,
  pollMs = 10,
): Promise<void> {
  const { update_seq: seq } = (await call(leader, 'GET', `/${db}`)) as { update_seq: number };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await syncState(follower, name);
    if (s.status === 'SYNCING' && s.follower >= seq) return;
    if (s.status === 'FAILED' || s.status === 'PAUSED') throw new Error(`${name} is ${s.status}`);
    if (Date.now() > deadline)
      throw new Error(`${name} not in sync after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
  return Math.round((kb / 1024) * 10) / 10;
}

// ---- 1. bootstrap ----------------------------------------------------------------

async function bootstrap(
  leader: RunningServer,
  follower: RunningServer,
  options: Options,
): Promise<Record<string, number>> {
  await call(leader, 'PUT', '/big');
  const t0 = performance.now();
  await fill(leader, 'big', options.docs, options.docBytes);
  say(`bootstrap: loaded ${options.docs} docs into the leader in ${Math.round(performance.now() - t0)} ms`);
  // A leader's data is at rest when a follower starts: the load's writeback first, or its disk
  // syncs would stall the copy's commits and this would measure the load.
  await call(leader, 'POST', '/big/_ensure_full_commit');
  const start = performance.now();
  await call(follower, 'PUT', `${R}/big-f/_start`, { leader_alias: 'leader', leader_index: 'big' });
  await waitInSync(leader, 'big', follower, 'big-f', 600_000);
  const ms = performance.now() - start;
  const info = (await call(follower, 'GET', '/big-f')) as { doc_count: number };
  if (info.doc_count !== options.docs) throw new Error(`the follower has ${info.doc_count} docs`);
  const figures = { docs: options.docs, ms: Math.round(ms), docs_per_s: perSecond(options.docs, ms) };
  say(`bootstrap: ${figures.docs} docs in ${figures.ms} ms = ${figures.docs_per_s} docs/s`);
  return figures;
}

/** Bootstrap rounds, each on a fresh pair of nodes; the median round's figure. */
async function bootstrapRounds(
  options: Options,
  nodeArgs: readonly string[],
): Promise<{ docs: number; docs_per_s: number; rounds: number[] }> {
  const rounds: number[] = [];
  for (let round = 1; round <= options.bootstrapRounds; round++) {
    const [leader, follower] = await Promise.all([startDoppel({ nodeArgs }), startDoppel({ nodeArgs })]);
    try {
      await registerLeader(follower, leader);
      rounds.push((await bootstrap(leader, follower, options))['docs_per_s'] ?? 0);
    } finally {
      await Promise.all([leader.stop(), follower.stop()]);
    }
  }
  const sorted = [...rounds].sort((a, b) => a - b);
  return { docs: options.docs, docs_per_s: percentile(sorted, 50), rounds };
}

// ---- 2. latency ------------------------------------------------------------------

/** Follows the node's continuous `_changes` of `db`, calling `onRow(id)` at each row's arrival. */
async function watchFeed(
  node: RunningServer,
  db: string,
  signal: AbortSignal,
  onRow: (id: string) => void,
): Promise<void> {
  const info = (await call(node, 'GET', `/${db}`)) as { update_seq: number };
  const url = new URL(node.authUrl);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  await watchChangeIds(`${url.protocol}//${url.host}/${db}`, info.update_seq, auth, signal, onRow);
}

async function latency(
  leader: RunningServer,
  follower: RunningServer,
  options: Options,
): Promise<LatencyFigures> {
  await call(leader, 'PUT', '/lat');
  await call(follower, 'PUT', `${R}/lat-f/_start`, { leader_alias: 'leader', leader_index: 'lat' });
  await waitInSync(leader, 'lat', follower, 'lat-f', 30_000);
  // The bootstrap's hundreds of MB on disk first: the kernel writing them back would stall
  // this phase's commits, measuring the previous phase rather than this one.
  await call(leader, 'POST', '/lat/_ensure_full_commit');
  await call(follower, 'POST', '/lat-f/_ensure_full_commit');
  const seenAt = new Map<string, number>();
  const watching = new AbortController();
  const watched = watchFeed(follower, 'lat-f', watching.signal, (id) => {
    if (!seenAt.has(id)) seenAt.set(id, performance.now());
  });
  watched.catch(() => undefined);
  await call(leader, 'PUT', '/lat/warm-up', { warm: true });
  for (const deadline = Date.now() + 30_000; !seenAt.has('warm-up');) {
    if (Date.now() > deadline) throw new Error('the warm-up doc never reached the follower');
    await new Promise((r) => setTimeout(r, 5));
  }
  say(
    `latency: writing ${options.rate} docs/s to the leader for 3 s of warm-up, then ${options.latencySeconds} s measured`,
  );
  const figures = await pacedWriteLatency(
    leader.client,
    '/lat',
    options.rate,
    options.latencySeconds,
    seenAt,
  );
  watching.abort();
  await watched.catch(() => undefined);
  if (figures.seen < figures.writes)
    throw new Error(`only ${figures.seen} of ${figures.writes} writes reached the follower`);
  say(
    `latency: leader ack → follower feed p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, max ${figures.max_ms} ms ` +
      `(from send p50 ${figures.from_send_p50_ms}, p99 ${figures.from_send_p99_ms}); ${figures.achieved_writes_per_s} writes/s`,
  );
  return figures;
}

// ---- 3. many followers -------------------------------------------------------------

async function manyFollowers(leader: RunningServer, options: Options): Promise<Record<string, number>> {
  const node = await startDoppel();
  try {
    await registerLeader(node, leader);
    const n = options.followers;
    const rssBefore = rssMiB(node.pid);
    for (let i = 0; i < n; i++) {
      const db = `many-${String(i).padStart(4, '0')}`;
      await call(leader, 'PUT', `/${db}`);
      await fill(leader, db, 20, 256);
    }
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const db = `many-${String(i).padStart(4, '0')}`;
      await call(node, 'PUT', `${R}/${db}-f/_start`, { leader_alias: 'leader', leader_index: db });
    }
    for (const deadline = Date.now() + 120_000; ;) {
      const stats = (await call(node, 'GET', `${R}/follower_stats`)) as {
        num_syncing_indices: number;
        follower_checkpoint: number;
        leader_checkpoint: number;
      };
      if (stats.num_syncing_indices === n && stats.follower_checkpoint === stats.leader_checkpoint) break;
      if (Date.now() > deadline) throw new Error(`not all followers in sync: ${JSON.stringify(stats)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const startMs = Math.round(performance.now() - t0);
    say(`many: ${n} followers in sync after ${startMs} ms; RSS ${rssMiB(node.pid)} MiB`);
    // Steady state: writes spread over every leader for a while, RSS sampled throughout.
    let peak = 0;
    const until = Date.now() + 10_000;
    let k = 0;
    while (Date.now() < until) {
      const writes: Promise<unknown>[] = [];
      for (let j = 0; j < 20; j++, k++) {
        const db = `many-${String(k % n).padStart(4, '0')}`;
        writes.push(call(leader, 'PUT', `/${db}/w${k}`, { k }));
      }
      await Promise.all(writes);
      peak = Math.max(peak, rssMiB(node.pid));
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const deadline = Date.now() + 60_000; ;) {
      const stats = (await call(node, 'GET', `${R}/follower_stats`)) as {
        follower_checkpoint: number;
        leader_checkpoint: number;
      };
      if (stats.follower_checkpoint === stats.leader_checkpoint) break;
      if (Date.now() > deadline) throw new Error('followers did not catch up');
      await new Promise((r) => setTimeout(r, 200));
    }
    peak = Math.max(peak, rssMiB(node.pid));
    const figures = {
      followers: n,
      rss_idle_node_mib: rssBefore,
      rss_peak_mib: peak,
      all_in_sync_ms: startMs,
      writes: k,
    };
    say(
      `many: ${n} followers, peak RSS ${peak} MiB (empty node ${rssBefore} MiB), ${k} writes spread over them`,
    );
    return figures;
  } finally {
    await node.stop();
  }
}

// ---- main --------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installCleanupHooks();
  say(`node ${process.version}, ${cpus().length} CPUs; docs=${options.docs} doc-bytes=${options.docBytes}`);
  const nodeArgs = options.cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`];
  const boot =
    options.only === undefined || options.only === 'bootstrap'
      ? await bootstrapRounds(options, nodeArgs)
      : null;
  if (boot !== null && options.bootstrapRounds > 1)
    say(`bootstrap: median of ${options.bootstrapRounds} rounds ${boot.docs_per_s} docs/s`);
  const [leader, follower] = await Promise.all([startDoppel({ nodeArgs }), startDoppel({ nodeArgs })]);
  try {
    await registerLeader(follower, leader);
    const lat =
      options.only === undefined || options.only === 'latency'
        ? await latency(leader, follower, options)
        : null;
    const many =
      options.only === undefined || options.only === 'many' ? await manyFollowers(leader, options) : null;
    const met = {
      docs_per_s: boot === null ? null : boot.docs_per_s >= TARGETS.docs_per_s,
      latency_p50: lat === null ? null : (lat['p50_ms'] ?? Infinity) <= TARGETS.latency_p50_ms,
      latency_p99: lat === null ? null : (lat['p99_ms'] ?? Infinity) <= TARGETS.latency_p99_ms,
      rss: many === null ? null : (many['rss_peak_mib'] ?? Infinity) < TARGETS.rss_mib,
    };
    process.stdout.write(
      `${JSON.stringify({ bench: 'followers', node: process.version, cpus: cpus().length, targets: TARGETS, bootstrap: boot, latency: lat, many, met })}\n`,
    );
  } finally {
    await Promise.all([leader.stop(), follower.stop()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
