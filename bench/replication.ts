/**
 * Replication bench (the replicator issue's performance acceptance):
 *
 *   1. one-shot: 100,000 docs of ~1 KB loaded into Doppel A, replicated
 *      A → B over HTTP: >= 40,000 docs/s;
 *   2. the same docs between two pouchdb-server processes with PouchDB's
 *      replicator (http adapter, in this process): Doppel >= 10x PouchDB;
 *   3. continuous: a continuous job A → B while 1 doc/ms is written to A for
 *      3 s of warm-up, then 20 s measured; the time until each of those docs
 *      shows in B's continuous `_changes`:
 *      p50 <= 10 ms, p99 <= 50 ms.
 *
 * The Doppel replication runs inside node B (`POST /_replicate`, target a
 * local database) when the node has it, else in this process
 * (`ReplicationJob` with two `HttpEndpoint`s); `--replicator` forces one.
 *
 * Usage: npx tsx bench/replication.ts [--docs 100000] [--doc-bytes 1024]
 *          [--replicator auto|node|node-push|in-process] [--only doppel|pouchdb]
 *          [--latency-seconds 20] [--rate 1000] [--skip-latency]
 *          [--batch-size 500] [--workers 4] [--cpu-prof DIR] [--rounds 1]
 *
 * Progress goes to stderr; the last line on stdout is one JSON object.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ReplicationJob } from '../src/engines/replication/replication-job.js';
import { HttpEndpoint } from '../src/services/replicator/http-endpoint.js';
import { PouchDB } from '../test/support/pouchdb.js';
import { bodyOf, type HttpClient } from './lib/http-client.js';
import {
  installCleanupHooks,
  say,
  startDoppel,
  startPouchdbServer,
  type RunningServer,
} from './lib/servers.js';
import {
  pacedWriteLatency,
  perSecond,
  positiveInt,
  watchChangeIds,
  type LatencyFigures,
} from './lib/measure.js';

const TARGETS = { docs_per_s: 40_000, ratio: 10, latency_p50_ms: 10, latency_p99_ms: 50 } as const;
const DB = 'bench';
const LATENCY_SRC = 'latency-src';
const LATENCY_DST = 'latency-dst';
/** A member of the bench databases on both nodes: the replicator's credentials. */
const REPL_USER = 'bench-replicator';
const REPL_PASSWORD = 'bench-replicator-password';

type ReplicatorMode = 'auto' | 'node' | 'node-push' | 'in-process';

interface Options {
  readonly docs: number;
  readonly docBytes: number;
  readonly replicator: ReplicatorMode;
  readonly only: 'doppel' | 'pouchdb' | undefined;
  readonly latencySeconds: number;
  readonly rate: number;
  readonly skipLatency: boolean;
  readonly batchSize: number;
  readonly workers: number;
  readonly cpuProf: string | undefined;
  readonly rounds: number;
}

const USAGE = `Usage: npx tsx bench/replication.ts [options]
  --docs N              documents replicated one-shot (default 100000)
  --doc-bytes N         approximate JSON size of one document (default 1024)
  --replicator MODE     auto (default: the node's POST /_replicate if it has one), node (B pulls),
                        node-push (A pushes), in-process
  --only NAME           "doppel" (no PouchDB run, ratio null) or "pouchdb"
  --latency-seconds N   length of the continuous-latency run (default 20)
  --rate N              writes per second during it (default 1000)
  --skip-latency        no continuous-latency run
  --batch-size N        worker_batch_size of the Doppel job (default 500)
  --workers N           worker_processes of the Doppel job (default 4)
  --cpu-prof DIR        profile both Doppel nodes (node --cpu-prof) and this process's replication
  --rounds N            Doppel one-shot runs, each on a fresh pair of nodes; the median is
                        reported, with every round's figure (default 1)
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      docs: { type: 'string' },
      'doc-bytes': { type: 'string' },
      replicator: { type: 'string' },
      only: { type: 'string' },
      'latency-seconds': { type: 'string' },
      rate: { type: 'string' },
      'skip-latency': { type: 'boolean' },
      'batch-size': { type: 'string' },
      workers: { type: 'string' },
      'cpu-prof': { type: 'string' },
      rounds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stderr.write(USAGE);
    process.exit(0);
  }
  const replicator = values.replicator ?? 'auto';
  if (
    replicator !== 'auto' &&
    replicator !== 'node' &&
    replicator !== 'node-push' &&
    replicator !== 'in-process'
  )
    throw new Error(`--replicator must be auto, node, node-push or in-process (got ${replicator})`);
  const only = values.only;
  if (only !== undefined && only !== 'doppel' && only !== 'pouchdb')
    throw new Error(`--only must be doppel or pouchdb (got ${only})`);
  return {
    docs: positiveInt(values.docs, 'docs', 100_000),
    docBytes: positiveInt(values['doc-bytes'], 'doc-bytes', 1024),
    replicator,
    only,
    latencySeconds: positiveInt(values['latency-seconds'], 'latency-seconds', 20),
    rate: positiveInt(values.rate, 'rate', 1000),
    skipLatency: values['skip-latency'] === true,
    rounds: positiveInt(values.rounds, 'rounds', 1),
    batchSize: positiveInt(values['batch-size'], 'batch-size', 500),
    workers: positiveInt(values.workers, 'workers', 4),
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
  };
}

// ---- documents ----------------------------------------------------------------

/** `_bulk_docs` bodies of `count` deterministic documents of about `docBytes` bytes, 1000 per body. */
function makeBodies(count: number, docBytes: number): { bodies: Buffer[]; avgBytes: number } {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ';
  let x = 0x5eed;
  const pool: string[] = [];
  for (let i = 0; i < 65_536 + docBytes; i++) {
    // xorshift32: printable, incompressible-looking padding
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    pool.push(alphabet[x % alphabet.length] ?? 'a');
  }
  const noise = pool.join('');
  const bodies: Buffer[] = [];
  let batch: string[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const doc = {
      _id: `doc-${String(i).padStart(9, '0')}`,
      type: 'bench',
      seq: i,
      name: `Document number ${i}`,
      group: `group-${i % 100}`,
      active: i % 2 === 0,
      tags: ['alpha', 'beta', 'gamma'].slice(0, 1 + (i % 3)),
      payload: '',
    };
    const padding = Math.max(0, docBytes - JSON.stringify(doc).length);
    const offset = (i * 7919) % (noise.length - padding);
    doc.payload = noise.slice(offset, offset + padding);
    const text = JSON.stringify(doc);
    total += text.length;
    batch.push(text);
    if (batch.length === 1000 || i === count - 1) {
      bodies.push(Buffer.from(`{"docs":[${batch.join(',')}]}`));
      batch = [];
    }
  }
  return { bodies, avgBytes: Math.round(total / count) };
}

async function load(client: HttpClient, db: string, bodies: readonly Buffer[]): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++];
      if (body === undefined) break;
      const res = await client.request('POST', `/${db}/_bulk_docs`, body);
      if (res.status !== 201 && res.status !== 200) throw new Error(`load into ${db}: HTTP ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return performance.now() - t0;
}

async function docCount(client: HttpClient, db: string): Promise<number> {
  const info = (await client.json('GET', `/${db}`, [200])) as { doc_count?: unknown };
  return typeof info.doc_count === 'number' ? info.doc_count : -1;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** A `_users` member of `dbs` on `server`: credentials the replicator can be given. */
async function addReplicatorUser(server: RunningServer, dbs: readonly string[]): Promise<void> {
  await server.client.json(
    'PUT',
    `/_users/org.couchdb.user:${REPL_USER}`,
    [201, 202, 409],
    json({ name: REPL_USER, password: REPL_PASSWORD, roles: [], type: 'user' }),
  );
  for (const db of dbs) {
    await server.client.json(
      'PUT',
      `/${db}/_security`,
      [200],
      json({ admins: { names: [], roles: [] }, members: { names: [REPL_USER], roles: [] } }),
    );
  }
}

function dbUrl(server: RunningServer, db: string, withCredentials: boolean): string {
  const url = new URL(`${server.client.baseUrl.replace(/\/+$/, '')}/${db}`);
  if (withCredentials) {
    url.username = REPL_USER;
    url.password = REPL_PASSWORD;
  }
  return url.toString();
}

function endpoint(server: RunningServer, db: string, options: Options): HttpEndpoint {
  return new HttpEndpoint(
    { url: dbUrl(server, db, false), auth: { basic: { username: REPL_USER, password: REPL_PASSWORD } } },
    { httpConnections: 20 + options.workers },
  );
}

// ---- the Doppel replicator: in the target node, or in this process -----------

interface Replicator {
  readonly mode: 'node' | 'node-push' | 'in-process';
  /** One-shot; resolves with the docs written. */
  oneShot(source: string, target: string): Promise<number>;
  /** Starts a continuous job; resolves its stop function. */
  continuous(source: string, target: string): Promise<() => Promise<void>>;
}

function inProcessReplicator(a: RunningServer, b: RunningServer, options: Options): Replicator {
  const tuning = { workerBatchSize: options.batchSize, workerProcesses: options.workers };
  return {
    mode: 'in-process',
    async oneShot(source, target) {
      const [src, tgt] = [endpoint(a, source, options), endpoint(b, target, options)];
      try {
        const result = await new ReplicationJob(src, tgt, tuning).run(new AbortController().signal);
        if (result.status !== 'completed')
          throw new Error(
            `replication ${result.status}: ${result.status === 'failed' ? result.error.message : ''}`,
          );
        return result.stats.docs_written;
      } finally {
        await Promise.all([src.close(), tgt.close()]);
      }
    },
    async continuous(source, target) {
      const [src, tgt] = [endpoint(a, source, options), endpoint(b, target, options)];
      const stop = new AbortController();
      const job = new ReplicationJob(src, tgt, { ...tuning, continuous: true });
      const running = job.run(stop.signal);
      return async () => {
        stop.abort();
        const result = await running;
        await Promise.all([src.close(), tgt.close()]);
        if (result.status === 'failed') throw new Error(`continuous job failed: ${result.error.message}`);
      };
    },
  };
}

/**
 * `POST /_replicate` on B, with A's database as a URL and B's as a local name
 * (a pull); with `push`, on A, with A's database local and B's as a URL.
 */
function nodeReplicator(a: RunningServer, b: RunningServer, options: Options, push: boolean): Replicator {
  const runner = push ? a : b;
  const body = (source: string, target: string, extra: Record<string, unknown>): Buffer =>
    json({
      source: push ? source : dbUrl(a, source, true),
      target: push ? dbUrl(b, target, true) : target,
      worker_batch_size: options.batchSize,
      worker_processes: options.workers,
      ...extra,
    });
  return {
    mode: push ? 'node-push' : 'node',
    async oneShot(source, target) {
      const reply = (await runner.client.json('POST', '/_replicate', [200], body(source, target, {}))) as {
        ok?: unknown;
        history?: { docs_written?: number }[];
      };
      if (reply.ok !== true) throw new Error(`_replicate: ${JSON.stringify(reply).slice(0, 300)}`);
      return reply.history?.[0]?.docs_written ?? -1;
    },
    async continuous(source, target) {
      await runner.client.json('POST', '/_replicate', [200, 202], body(source, target, { continuous: true }));
      return async () => {
        await runner.client.json(
          'POST',
          '/_replicate',
          [200, 404],
          body(source, target, { continuous: true, cancel: true }),
        );
      };
    },
  };
}

/** Whether B answers `POST /_replicate` (a one-shot of an empty database). */
async function nodeHasReplicate(a: RunningServer, b: RunningServer): Promise<boolean> {
  await a.client.json('PUT', '/probe', [201, 202, 412]);
  await b.client.json('PUT', '/probe', [201, 202, 412]);
  await addReplicatorUser(a, ['probe']);
  const res = await b.client.request(
    'POST',
    '/_replicate',
    json({ source: dbUrl(a, 'probe', true), target: 'probe' }),
  );
  if (res.status !== 200)
    say(`node-side /_replicate not available (HTTP ${res.status}): replicating in-process`);
  return res.status === 200;
}

// ---- profiling ------------------------------------------------------------------

/** Monotonic microseconds: the clock V8 stamps .cpuprofile samples with. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** The bench's timed intervals, for `profile-summary.ts --phases` over the nodes' profiles. */
const phases: { name: string; startUs: number; endUs: number }[] = [];

async function phase<T>(name: string, run: () => Promise<T>): Promise<T> {
  const startUs = monotonicUs();
  try {
    return await run();
  } finally {
    phases.push({ name, startUs, endUs: monotonicUs() });
  }
}

async function profiled<T>(dir: string | undefined, name: string, run: () => Promise<T>): Promise<T> {
  if (dir === undefined) return run();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await run();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    const file = join(dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    say(`profile of this process: ${file} (npx tsx bench/profile-summary.ts ${file})`);
    session.disconnect();
  }
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc (Linux);
 * null elsewhere. Less sensitive than wall time to other load on the machine.
 */
function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null;
  }
}

/** CPU ms used by each of `pids` (and this process) while `run` ran. */
async function cpuDuring<T>(
  pids: readonly number[],
  run: () => Promise<T>,
): Promise<{ result: T; cpu: (number | null)[]; benchCpuMs: number }> {
  const before = pids.map(cpuMs);
  const self = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(self);
  const cpu = pids.map((pid, i) => {
    const start = before[i];
    const end = cpuMs(pid);
    return start === null || start === undefined || end === null ? null : end - start;
  });
  return { result, cpu, benchCpuMs: Math.round((used.user + used.system) / 1000) };
}

// ---- part 1: one-shot ---------------------------------------------------------

interface OneShotFigures {
  readonly replicator: 'node' | 'node-push' | 'in-process';
  readonly ms: number;
  /** CPU time used during the replication by the source and target servers and by this process. */
  readonly cpu_ms: { readonly source: number | null; readonly target: number | null; readonly bench: number };
  readonly docs_per_s: number;
  readonly docs_written: number;
  readonly load_ms: number;
}

async function doppelOneShot(
  a: RunningServer,
  b: RunningServer,
  replicator: Replicator,
  bodies: readonly Buffer[],
  options: Options,
): Promise<OneShotFigures> {
  await a.client.json('PUT', `/${DB}`, [201, 202]);
  await b.client.json('PUT', `/${DB}`, [201, 202]);
  await addReplicatorUser(a, [DB]);
  await addReplicatorUser(b, [DB]);
  say(`doppel A: loading ${options.docs} docs`);
  const loadMs = await phase('load', () => load(a.client, DB, bodies));
  // The source's data is at rest when a replication starts: the load's writeback first, or its
  // disk syncs would stall the replication's commits and this would measure the load.
  await a.client.json('POST', `/${DB}/_ensure_full_commit`, [201]);
  say(`doppel A: loaded in ${loadMs.toFixed(0)} ms; replicating A → B (${replicator.mode})`);
  const t0 = performance.now();
  const {
    result: written,
    cpu,
    benchCpuMs,
  } = await cpuDuring([a.pid, b.pid], () =>
    phase('one-shot', () => profiled(options.cpuProf, 'bench-one-shot', () => replicator.oneShot(DB, DB))),
  );
  const ms = performance.now() - t0;
  const count = await docCount(b.client, DB);
  if (count !== options.docs)
    throw new Error(`doppel B has ${count} docs after replication, not ${options.docs}`);
  say(
    `doppel: ${ms.toFixed(0)} ms = ${perSecond(options.docs, ms)} docs/s (docs_written ${written}, B doc_count ${count}); CPU ms: A ${cpu[0]}, B ${cpu[1]}, bench ${benchCpuMs}`,
  );
  return {
    replicator: replicator.mode,
    ms: Math.round(ms),
    cpu_ms: { source: cpu[0] ?? null, target: cpu[1] ?? null, bench: benchCpuMs },
    docs_per_s: perSecond(options.docs, ms),
    docs_written: written,
    load_ms: Math.round(loadMs),
  };
}

// ---- part 2: PouchDB ----------------------------------------------------------

interface PouchReplicate {
  replicate(source: string, target: string): PromiseLike<{ docs_written: number; ok: boolean }>;
}

async function pouchOneShot(bodies: readonly Buffer[], options: Options): Promise<OneShotFigures> {
  const [pa, pb] = await Promise.all([startPouchdbServer(), startPouchdbServer()]);
  try {
    await pa.client.json('PUT', `/${DB}`, [201, 202]);
    await pb.client.json('PUT', `/${DB}`, [201, 202]);
    say(`pouchdb-server A: loading ${options.docs} docs`);
    const loadMs = await load(pa.client, DB, bodies);
    say(`pouchdb-server A: loaded in ${loadMs.toFixed(0)} ms; PouchDB.replicate(A, B)`);
    const t0 = performance.now();
    const { result, cpu, benchCpuMs } = await cpuDuring([pa.pid, pb.pid], async () =>
      (PouchDB as unknown as PouchReplicate).replicate(dbUrl(pa, DB, false), dbUrl(pb, DB, false)),
    );
    const ms = performance.now() - t0;
    const count = await docCount(pb.client, DB);
    if (count !== options.docs) throw new Error(`pouchdb-server B has ${count} docs, not ${options.docs}`);
    say(
      `pouchdb: ${ms.toFixed(0)} ms = ${perSecond(options.docs, ms)} docs/s (docs_written ${result.docs_written})`,
    );
    return {
      replicator: 'in-process',
      ms: Math.round(ms),
      cpu_ms: { source: cpu[0] ?? null, target: cpu[1] ?? null, bench: benchCpuMs },
      docs_per_s: perSecond(options.docs, ms),
      docs_written: result.docs_written,
      load_ms: Math.round(loadMs),
    };
  } finally {
    await Promise.all([pa.stop(), pb.stop()]);
  }
}

// ---- part 3: continuous latency -----------------------------------------------

/** Follows B's continuous `_changes`, calling `onRow(id)` at each row's arrival. */
async function watchFeed(
  b: RunningServer,
  db: string,
  signal: AbortSignal,
  onRow: (id: string) => void,
): Promise<void> {
  const info = (await b.client.json('GET', `/${db}`, [200])) as { update_seq?: unknown };
  const since = typeof info.update_seq === 'number' ? info.update_seq : 0;
  const auth = `Basic ${Buffer.from(`${REPL_USER}:${REPL_PASSWORD}`).toString('base64')}`;
  await watchChangeIds(`${b.client.baseUrl.replace(/\/+$/, '')}/${db}`, since, auth, signal, onRow);
}

async function continuousLatency(
  a: RunningServer,
  b: RunningServer,
  replicator: Replicator,
  options: Options,
): Promise<LatencyFigures> {
  await a.client.json('PUT', `/${LATENCY_SRC}`, [201, 202]);
  await b.client.json('PUT', `/${LATENCY_DST}`, [201, 202]);
  // The one-shot's hundreds of MB on disk first: the kernel writing them back would
  // stall this phase's commits, measuring the previous phase rather than this one.
  await a.client.json('POST', `/${LATENCY_SRC}/_ensure_full_commit`, [201]);
  await b.client.json('POST', `/${LATENCY_DST}/_ensure_full_commit`, [201]);
  await addReplicatorUser(a, [LATENCY_SRC]);
  await addReplicatorUser(b, [LATENCY_DST]);
  const seenAt = new Map<string, number>();
  const watching = new AbortController();
  let watchReady = false;
  const watched = watchFeed(b, LATENCY_DST, watching.signal, (id) => {
    if (!seenAt.has(id)) seenAt.set(id, performance.now());
  });
  watched.catch(() => undefined);
  const stopJob = await replicator.continuous(LATENCY_SRC, LATENCY_DST);
  // Warm up: one doc through the whole path before the clock starts.
  await a.client.json('PUT', `/${LATENCY_SRC}/warm-up`, [201, 202], json({ warm: true }));
  for (const deadline = Date.now() + 30_000; !seenAt.has('warm-up');) {
    if (Date.now() > deadline) {
      const jobs = await b.client.request('GET', '/_scheduler/jobs');
      throw new Error(
        `the continuous job did not replicate the warm-up doc in 30 s; B's /_scheduler/jobs: HTTP ${jobs.status} ${bodyOf(jobs).toString('utf8').slice(0, 2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  watchReady = true;
  const total = options.latencySeconds * options.rate;
  say(
    `continuous: writing ${options.rate} docs/s to A for 3 s of warm-up, then ${options.latencySeconds} s measured (${total} docs)`,
  );
  const figures = await pacedWriteLatency(
    a.client,
    `/${LATENCY_SRC}`,
    options.rate,
    options.latencySeconds,
    seenAt,
  );
  watching.abort();
  await watched.catch(() => undefined);
  await stopJob();
  if (!watchReady) throw new Error('the watcher never started');
  say(
    `continuous: ${figures.seen}/${total} seen on B; write→B p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, max ${figures.max_ms} ms (from send: p50 ${figures.from_send_p50_ms}, p99 ${figures.from_send_p99_ms}); ${figures.achieved_writes_per_s} writes/s`,
  );
  if (figures.seen < total) throw new Error(`only ${figures.seen} of ${total} docs reached B`);
  return figures;
}

// ---- main -----------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installCleanupHooks();
  // Other work on the machine skews every figure: the 1-minute load average is reported with them.
  const loadBefore = loadavg()[0] ?? 0;
  say(`node ${process.version}, ${cpus().length} CPUs; docs=${options.docs} doc-bytes=${options.docBytes}`);
  const { bodies, avgBytes } = makeBodies(options.docs, options.docBytes);
  say(`generated ${options.docs} docs, ~${avgBytes} bytes each`);
  if (options.cpuProf !== undefined) mkdirSync(options.cpuProf, { recursive: true });

  let doppel: (OneShotFigures & { readonly rounds: readonly number[] }) | null = null;
  let latency: LatencyFigures | null = null;
  if (options.only !== 'pouchdb') {
    const nodeArgs = options.cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`];
    const rounds: OneShotFigures[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const [a, b] = await Promise.all([startDoppel({ nodeArgs }), startDoppel({ nodeArgs })]);
      try {
        say(`round ${round}/${options.rounds}: doppel A ${a.client.baseUrl}, doppel B ${b.client.baseUrl}`);
        const push = options.replicator === 'node-push';
        const useNode =
          push ||
          options.replicator === 'node' ||
          (options.replicator === 'auto' && (await nodeHasReplicate(a, b)));
        const replicator = useNode ? nodeReplicator(a, b, options, push) : inProcessReplicator(a, b, options);
        rounds.push(await doppelOneShot(a, b, replicator, bodies, options));
        if (round === options.rounds && !options.skipLatency)
          latency = await phase('continuous', () => continuousLatency(a, b, replicator, options));
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    }
    // The median round (the lower middle one for an even count), with every round's figure.
    const sorted = [...rounds].sort((x, y) => x.docs_per_s - y.docs_per_s);
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    if (median !== undefined) doppel = { ...median, rounds: rounds.map((r) => r.docs_per_s) };
  }
  if (options.cpuProf !== undefined) {
    const file = join(options.cpuProf, 'phases.json');
    writeFileSync(file, `${JSON.stringify({ clock: 'monotonic-us', phases }, null, 2)}\n`);
    say(
      `node profiles in ${options.cpuProf}; per phase: npx tsx bench/profile-summary.ts FILE --phases ${file}`,
    );
  }
  let pouch: OneShotFigures | null = null;
  if (options.only !== 'doppel') pouch = await pouchOneShot(bodies, options);

  const ratio =
    doppel === null || pouch === null ? null : Math.round((doppel.docs_per_s / pouch.docs_per_s) * 10) / 10;
  const met = {
    docs_per_s: doppel !== null && doppel.docs_per_s >= TARGETS.docs_per_s,
    ratio: ratio !== null && ratio >= TARGETS.ratio,
    latency_p50: latency !== null && latency.p50_ms <= TARGETS.latency_p50_ms,
    latency_p99: latency !== null && latency.p99_ms <= TARGETS.latency_p99_ms,
    all: false,
  };
  met.all = met.docs_per_s && met.ratio && met.latency_p50 && met.latency_p99;
  say(
    `results: doppel ${doppel?.docs_per_s ?? '-'} docs/s (${doppel?.replicator ?? '-'}), pouchdb ${pouch?.docs_per_s ?? '-'} docs/s, ratio ${ratio ?? '-'}x, latency p50 ${latency?.p50_ms ?? '-'} ms p99 ${latency?.p99_ms ?? '-'} ms`,
  );
  process.stdout.write(
    `${JSON.stringify({
      bench: 'replication',
      docs: options.docs,
      doc_bytes: avgBytes,
      worker_batch_size: options.batchSize,
      worker_processes: options.workers,
      env: {
        node: process.version,
        cpus: cpus().length,
        load_1m: {
          start: Math.round(loadBefore * 100) / 100,
          end: Math.round((loadavg()[0] ?? 0) * 100) / 100,
        },
      },
      doppel,
      pouchdb: pouch,
      ratio,
      latency,
      targets: TARGETS,
      met,
    })}\n`,
  );
}

main().catch((err: unknown) => {
  say(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
