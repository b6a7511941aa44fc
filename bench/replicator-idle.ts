/**
 * 1,000 idle continuous replication jobs on one node: each pulls a database of
 * a second Doppel node over HTTP (a registered remote) into a local database,
 * holding its continuous `_changes` feed open. Once every job runs, is caught
 * up and has checkpointed that position (the first checkpoint comes one
 * `replicator_checkpoint_interval_ms` after a job starts), the node's RSS and
 * CPU are measured over an idle window.
 * Targets: < 1 GiB RSS, < 5% CPU.
 *
 *   npx tsx bench/replicator-idle.ts [--jobs 1000] [--idle-s 30] [--profile]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jsonOf } from './lib/http-client.js';
import { installCleanupHooks, say, startDoppel, type RunningServer } from './lib/servers.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    'idle-s': { type: 'string', default: '30' },
    /** Writes a CPU profile of the node (ramp and idle window) to .bench/profiles/. */
    profile: { type: 'boolean', default: false },
  },
});
const JOBS = Number(values.jobs);
const IDLE_S = Number(values['idle-s']);
const CLOCK_TICKS = 100;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function json(server: RunningServer, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await server.client.request(
    method,
    path,
    body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
  );
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(jsonOf(res))}`);
  return jsonOf(res);
}

async function main(): Promise<void> {
  installCleanupHooks();
  const [node, peer] = await Promise.all([
    startDoppel({
      serveArgs: ['--replicator-max-jobs', String(JOBS)],
      ...(values.profile ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir=.bench/profiles'] } : {}),
    }),
    startDoppel(),
  ]);
  try {
    await json(peer, 'PUT', '/src');
    await json(peer, 'POST', '/src/_bulk_docs', {
      docs: Array.from({ length: 10 }, (_, i) => ({ _id: `d${i}`, n: i })),
    });
    const peerUrl = new URL(peer.authUrl);
    await json(node, 'PUT', '/_doppel/remotes/peer', {
      url: `${peerUrl.protocol}//${peerUrl.host}`,
      username: decodeURIComponent(peerUrl.username),
      password: decodeURIComponent(peerUrl.password),
    });
    const rssBefore = rssBytes(node.pid);
    const started = Date.now();
    for (let i = 0; i < JOBS; i += 250) {
      const docs = Array.from({ length: Math.min(250, JOBS - i) }, (_, k) => ({
        _id: `job${i + k}`,
        source: 'peer/src',
        target: `t${i + k}`,
        create_target: true,
        continuous: true,
      }));
      await json(node, 'POST', '/_replicator/_bulk_docs', { docs });
    }
    say(`${JOBS} _replicator documents written; waiting for every job to run, catch up and checkpoint`);
    for (;;) {
      const page = (await json(node, 'GET', `/_scheduler/jobs?limit=${JOBS}`)) as {
        jobs: {
          info: {
            changes_pending: number | null;
            docs_written: number;
            checkpointed_source_seq: unknown;
            through_seq: unknown;
          } | null;
          pid: string | null;
        }[];
      };
      // Caught up and checkpointed there: a job's first checkpoint comes one checkpoint
      // interval after its start, which is the ramp's work, not idling.
      const caughtUp = page.jobs.filter(
        (j) =>
          j.pid !== null &&
          j.info?.changes_pending === 0 &&
          j.info.docs_written === 10 &&
          j.info.checkpointed_source_seq === j.info.through_seq,
      ).length;
      if (caughtUp === JOBS) break;
      if (Date.now() - started > 300_000) throw new Error(`only ${caughtUp} of ${JOBS} jobs caught up`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const rampS = (Date.now() - started) / 1000;
    say(
      `all ${JOBS} jobs running, caught up and checkpointed after ${rampS.toFixed(1)} s; idling ${IDLE_S} s`,
    );
    // Let the ramp's garbage go before measuring the steady state.
    await new Promise((r) => setTimeout(r, 5000));
    const cpu0 = cpuSeconds(node.pid);
    const t0 = Date.now();
    let peakRss = 0;
    while (Date.now() - t0 < IDLE_S * 1000) {
      peakRss = Math.max(peakRss, rssBytes(node.pid));
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpuPercent = ((cpuSeconds(node.pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
    const result = {
      bench: 'replicator-idle',
      jobs: JOBS,
      ramp_s: Number(rampS.toFixed(1)),
      rss_before_mib: Math.round(rssBefore / 1048576),
      rss_idle_peak_mib: Math.round(peakRss / 1048576),
      cpu_idle_percent: Number(cpuPercent.toFixed(2)),
      targets: { rss_mib_below: 1024, cpu_percent_below: 5 },
      pass: peakRss < 1024 * 1048576 && cpuPercent < 5,
    };
    console.log(JSON.stringify(result));
  } finally {
    await Promise.all([node.stop(), peer.stop()]);
  }
}

await main();
