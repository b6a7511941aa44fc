/**
 * `redis-benchmark` (the real one, from redis-tools) against Doppel's RESP
 * door and against a real redis-server, in the same run:
 *
 *   redis-benchmark -q -c 50 -n 200000 -t set,get --csv        (no pipelining)
 *   redis-benchmark -q -c 50 -n 200000 -t set,get --csv -P 16  (16 commands in flight per client)
 *
 * The Redis issue's targets: Doppel ≥ 0.7× redis-server without pipelining
 * and ≥ 0.3× with `-P 16`, per test (SET and GET).
 *
 * Durability is comparable: Doppel runs with its defaults (`durability=flush`:
 * a write is acknowledged once in the node's write-ahead log, which survives
 * a crash of the process; the log and LMDB sync to disk in the background).
 * redis-server runs with `appendonly yes` and `appendfsync everysec`, Redis'
 * recommended durable setting (a write is acknowledged once in the AOF's OS
 * buffer, fsynced every second); everything else is Redis' default. Both
 * require a password, so redis-benchmark AUTHs on every connection of both.
 *
 *   npx tsx bench/redis-benchmark.ts [--requests 200000] [--clients 50] [--pipeline 16]
 *                                    [--rounds 1] [--only doppel|redis] [--random-keys N]
 *                                    [--cpu-prof DIR] [--node-arg FLAG]
 *
 * Each round runs both modes against both servers, alternating servers so
 * that drift of a shared machine hits both; the figures reported are the
 * median per test over the rounds (every round is in the JSON too). Progress
 * goes to stderr; the last stdout line is one JSON object
 * `{"bench":"redis-benchmark",...}`. Exit status 0 when the measurement
 * completed (targets met or not), 1 on an error.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort, installCleanupHooks, say, startDoppel, type RunningServer } from './lib/servers.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200000' },
    clients: { type: 'string', default: '50' },
    pipeline: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string' },
    /** redis-benchmark `-r N`: spread the keys over N random names (default: one key, as plain redis-benchmark). */
    'random-keys': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});

const REQUESTS = positiveInt('requests');
const CLIENTS = positiveInt('clients');
const PIPELINE = positiveInt('pipeline');
const ROUNDS = positiveInt('rounds');
const RANDOM_KEYS = values['random-keys'] === undefined ? undefined : positiveInt('random-keys');
const ONLY = values.only;
if (ONLY !== undefined && ONLY !== 'doppel' && ONLY !== 'redis') {
  throw new Error(`--only must be doppel or redis, not ${ONLY}`);
}
const TESTS = ['SET', 'GET'] as const;
type TestName = (typeof TESTS)[number];
const TARGETS = { no_pipeline: 0.7, pipeline: 0.3 } as const;
type Mode = keyof typeof TARGETS;
const REDIS_SETTINGS = ['--appendonly', 'yes', '--appendfsync', 'everysec'] as const;

function positiveInt(name: 'requests' | 'clients' | 'pipeline' | 'rounds' | 'random-keys'): number {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** A peer binary from Debian's packages, or an error that says how to get it. */
function requireBinary(name: string, debianPackage: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') {
    throw new Error(`${name} is not installed: apt-get install ${debianPackage} (test/run.sh installs it)`);
  }
  return path;
}

interface Target {
  readonly name: 'doppel' | 'redis';
  readonly port: number;
  readonly password: string;
}

interface RedisServer extends Target {
  readonly version: string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port (or throws after `ms`). */
async function waitForPort(port: number, ms: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error('the server exited while starting');
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${ms} ms`);
    await sleep(50);
  }
}

async function startRedisServer(binary: string): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-bench-'));
  const port = await freePort();
  const password = randomBytes(16).toString('hex');
  const version = /v=(\S+)/.exec(spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--requirepass',
    password,
    ...REDIS_SETTINGS,
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', kill);
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[redis-server] ${chunk.toString()}`));
  try {
    await waitForPort(port, 30_000, child);
  } catch (err) {
    kill();
    throw err;
  }
  return {
    name: 'redis',
    port,
    password,
    version,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      process.removeListener('exit', kill);
    },
  };
}

type Rates = Record<TestName, number>;

/** One `redis-benchmark` run: requests per second per test, from its CSV output. */
async function runBenchmark(binary: string, target: Target, pipeline: number): Promise<Rates> {
  const args = ['-h', '127.0.0.1', '-p', String(target.port), '-a', target.password];
  args.push('-q', '-c', String(CLIENTS), '-n', String(REQUESTS), '-t', 'set,get', '--csv');
  if (pipeline > 1) args.push('-P', String(pipeline));
  if (RANDOM_KEYS !== undefined) args.push('-r', String(RANDOM_KEYS));
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  // redis-benchmark never gives up on a server that stops answering: bound the run.
  const limitMs = 30_000 + REQUESTS * 2;
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  const rates: Partial<Rates> = {};
  for (const line of out.split('\n')) {
    const match = /^"(SET|GET)","([0-9.]+)"/.exec(line);
    if (match !== null) rates[match[1] as TestName] = Number(match[2]);
  }
  if (code !== 0 || rates.SET === undefined || rates.GET === undefined) {
    throw new Error(
      `redis-benchmark against ${target.name} failed (exit ${code}, signal ${signal}):\n${out}${err}`,
    );
  }
  return rates as Rates;
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round2 = (n: number): number => Math.round(n * 100) / 100;
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

async function main(): Promise<void> {
  installCleanupHooks();
  const benchmarkBinary = requireBinary('redis-benchmark', 'redis-tools');
  const redisBinary = ONLY === 'doppel' ? undefined : requireBinary('redis-server', 'redis-server');

  const targets: Target[] = [];
  let doppel: RunningServer | undefined;
  let redis: RedisServer | undefined;
  try {
    if (ONLY !== 'redis') {
      const port = await freePort();
      const nodeArgs = [...(values['node-arg'] ?? [])];
      const profileDir = values['cpu-prof'];
      if (profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
      doppel = await startDoppel({
        nodeArgs,
        serveArgs: ['--resp-port', String(port), '--cluster-port', '0'],
      });
      const password = new URL(doppel.authUrl).password;
      targets.push({ name: 'doppel', port, password: decodeURIComponent(password) });
      say(`doppel: resp port ${port} (durability flush, the default)`);
    }
    if (redisBinary !== undefined) {
      redis = await startRedisServer(redisBinary);
      targets.push(redis);
      say(`redis-server ${redis.version}: port ${redis.port} (${REDIS_SETTINGS.join(' ')})`);
    }

    const modes: [Mode, number][] = [
      ['no_pipeline', 1],
      ['pipeline', PIPELINE],
    ];
    const runs: Record<Mode, Record<string, Rates[]>> = { no_pipeline: {}, pipeline: {} };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, pipeline] of modes) {
        // Alternate who goes first, so a slow stretch of a shared machine hits both.
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) {
          say(`round ${round + 1}/${ROUNDS}: ${target.name}, -P ${pipeline}`);
          const rates = await runBenchmark(benchmarkBinary, target, pipeline);
          say(`  SET ${rates.SET} rps, GET ${rates.GET} rps`);
          (runs[mode][target.name] ??= []).push(rates);
        }
      }
    }

    const results: Record<string, unknown> = {};
    const met: Record<string, boolean | null> = {};
    for (const [mode] of modes) {
      const perServer: Record<string, Rates> = {};
      for (const [name, list] of Object.entries(runs[mode])) {
        perServer[name] = {
          SET: round2(median(list.map((r) => r.SET))),
          GET: round2(median(list.map((r) => r.GET))),
        };
      }
      const ratio: Record<TestName, number | null> = { SET: null, GET: null };
      for (const test of TESTS) {
        const d = perServer['doppel']?.[test];
        const r = perServer['redis']?.[test];
        ratio[test] = d === undefined || r === undefined ? null : round3(d / r);
        const value = ratio[test];
        met[`${mode}_${test.toLowerCase()}`] = value === null ? null : value >= TARGETS[mode];
      }
      results[mode] = {
        pipeline: mode === 'pipeline' ? PIPELINE : 1,
        ...perServer,
        ratio,
        rounds: runs[mode],
      };
    }
    const verdicts = Object.values(met);
    const summary = {
      bench: 'redis-benchmark',
      command: `redis-benchmark -q -c ${CLIENTS} -n ${REQUESTS} -t set,get --csv [-P ${PIPELINE}]`,
      clients: CLIENTS,
      requests: REQUESTS,
      rounds: ROUNDS,
      random_keys: RANDOM_KEYS ?? null,
      durability: {
        doppel:
          'durability=flush (default): acknowledged once in the write-ahead log, disk syncs in the background',
        redis: `${REDIS_SETTINGS.join(' ')}, other settings default`,
      },
      redis_version: redis?.version ?? null,
      ...results,
      targets: { no_pipeline_ratio: TARGETS.no_pipeline, pipeline_ratio: TARGETS.pipeline },
      met: { ...met, all: verdicts.includes(null) ? null : verdicts.every((v) => v === true) },
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await doppel?.stop();
    await redis?.stop();
  }
}

main().catch((err: unknown) => {
  say(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
