/**
 * Bulk load and read-back bench (the foundation issue's performance acceptance):
 *
 *   100,000 docs of ~1 KB: bulk load through `_bulk_docs` >= 30,000 docs/s and
 *   read back through `_changes?include_docs=true` >= 60,000 docs/s on a 2-core
 *   machine, each >= 5x the pouchdb-server figure (in-memory, same run).
 *
 * Usage: npx tsx bench/bulk-load.ts [--docs 100000] [--batch 1000] [--concurrency 4]
 *          [--page-size 10000] [--reads 3] [--doc-bytes 1024] [--only doppel|pouchdb]
 *          [--calibrate] [--cpu-prof DIR] [--node-arg FLAG]
 *
 * Progress goes to stderr; the last line on stdout is one JSON object with the figures.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bodyOf, jsonOf, type HttpClient, type RawResponse } from './lib/http-client.js';
import {
  installCleanupHooks,
  say,
  startDoppel,
  startNullServer,
  startPouchdbServer,
  type RunningServer,
} from './lib/servers.js';

const TARGETS = { load_docs_per_s: 30_000, changes_docs_per_s: 60_000, ratio: 5 } as const;
const DB = 'bench';

interface Options {
  readonly docs: number;
  readonly batch: number;
  readonly concurrency: number;
  readonly pageSize: number;
  readonly reads: number;
  readonly docBytes: number;
  readonly only: 'doppel' | 'pouchdb' | undefined;
  readonly cpuProf: string | undefined;
  readonly calibrate: boolean;
  /** Extra `node` flags for the Doppel process (e.g. `--max-semi-space-size=64`). */
  readonly nodeArgs: readonly string[];
}

const USAGE = `Usage: npx tsx bench/bulk-load.ts [options]
  --docs N          documents to load (default 100000)
  --batch N         documents per _bulk_docs request (default 1000)
  --concurrency N   concurrent requests while loading (default 4)
  --page-size N     limit= of the paged _changes read (default 10000)
  --reads N         read-back repetitions per mode; the median is reported (default 3)
  --doc-bytes N     approximate JSON size of one document (default 1024)
  --only NAME       measure only "doppel" or "pouchdb"
  --cpu-prof DIR    run Doppel under node --cpu-prof, writing the profile and phases.json to DIR
  --calibrate       first run the same client against bench/lib/null-server.ts (canned answers):
                    the client's own ceiling, reported as "client_ceiling"
  --node-arg FLAG   an extra node flag for the Doppel process (repeatable), e.g.
                    --node-arg=--max-semi-space-size=64
`;

function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${raw})`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      docs: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      'page-size': { type: 'string' },
      reads: { type: 'string' },
      'doc-bytes': { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'string' },
      calibrate: { type: 'boolean' },
      'node-arg': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stderr.write(USAGE);
    process.exit(0);
  }
  const only = values.only;
  if (only !== undefined && only !== 'doppel' && only !== 'pouchdb') {
    throw new Error(`--only must be doppel or pouchdb (got ${only})`);
  }
  return {
    docs: positiveInt(values.docs, 'docs', 100_000),
    batch: positiveInt(values.batch, 'batch', 1000),
    concurrency: positiveInt(values.concurrency, 'concurrency', 4),
    pageSize: positiveInt(values['page-size'], 'page-size', 10_000),
    reads: positiveInt(values.reads, 'reads', 3),
    docBytes: positiveInt(values['doc-bytes'], 'doc-bytes', 1024),
    only,
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    calibrate: values.calibrate === true,
    nodeArgs: values['node-arg'] ?? [],
  };
}

// ---- documents ----------------------------------------------------------------

interface Workload {
  readonly ids: string[];
  /** One pre-serialized `{"docs":[...]}` body per batch. */
  readonly bodies: Buffer[];
  /** The ids of each batch, in order (to check the `_bulk_docs` results). */
  readonly batchIds: string[][];
  readonly avgDocBytes: number;
  readonly totalBytes: number;
}

/** Deterministic printable noise (xorshift32), sliced into the documents' padding. */
function noise(length: number, seed: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ';
  let x = seed >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(alphabet[x % alphabet.length]);
  }
  return out.join('');
}

const docId = (i: number): string => `doc-${String(i).padStart(9, '0')}`;

/** Documents of about `docBytes` bytes of JSON: a few typed fields and a padding string. */
function makeWorkload(count: number, batch: number, docBytes: number): Workload {
  const pool = noise(65_536 + docBytes, 0x5eed);
  const tags = ['alpha', 'beta', 'gamma', 'delta'];
  const epoch = Date.UTC(2024, 0, 1);
  const ids: string[] = [];
  const json: string[] = [];
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const id = docId(i);
    const doc = {
      _id: id,
      type: 'bench',
      seq: i,
      name: `Document number ${i}`,
      group: `group-${i % 100}`,
      active: i % 2 === 0,
      score: ((i * 7919) % 10_007) / 100,
      tags: tags.slice(0, 1 + (i % tags.length)),
      created: new Date(epoch + i * 1000).toISOString(),
      payload: '',
    };
    const padding = Math.max(0, docBytes - JSON.stringify(doc).length);
    const offset = (i * 7919) % (pool.length - padding);
    doc.payload = pool.slice(offset, offset + padding);
    const text = JSON.stringify(doc);
    ids.push(id);
    json.push(text);
    totalBytes += Buffer.byteLength(text);
  }
  const bodies: Buffer[] = [];
  const batchIds: string[][] = [];
  for (let start = 0; start < count; start += batch) {
    bodies.push(Buffer.from(`{"docs":[${json.slice(start, start + batch).join(',')}]}`));
    batchIds.push(ids.slice(start, start + batch));
  }
  return { ids, bodies, batchIds, avgDocBytes: Math.round(totalBytes / count), totalBytes };
}

// ---- clocks and phase marks (for profiles) ----------------------------------------

/** Monotonic microseconds: the clock V8 stamps .cpuprofile samples with (CLOCK_MONOTONIC on Linux). */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** One timed interval: its length, and where it lies on the monotonic clock. */
interface Interval {
  readonly ms: number;
  readonly startUs: number;
  readonly endUs: number;
}

function startClock(): () => Interval {
  const t0 = performance.now();
  const startUs = monotonicUs();
  return () => ({ ms: performance.now() - t0, startUs, endUs: monotonicUs() });
}

interface Phase {
  readonly name: string;
  readonly startUs: number;
  readonly endUs: number;
}

/** The timed intervals of one server's run (verification excluded), for `profile-summary.ts --phases`. */
class PhaseLog {
  readonly phases: Phase[] = [];

  add(name: string, interval: Interval): void {
    this.phases.push({ name, startUs: interval.startUs, endUs: interval.endUs });
  }
}

// ---- measurements ------------------------------------------------------------------

interface Timed extends Interval {
  readonly bytes: number;
}

const rate = (docs: number, ms: number): number => Math.round((docs / ms) * 1000);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Posts every batch, `concurrency` requests in flight; times first request to last response. */
async function bulkLoad(client: HttpClient, work: Workload, concurrency: number): Promise<Timed> {
  const responses: RawResponse[] = new Array<RawResponse>(work.bodies.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < work.bodies.length) {
      const i = next++;
      responses[i] = await client.request('POST', `/${DB}/_bulk_docs`, work.bodies[i]);
    }
  };
  const stop = startClock();
  await Promise.all(Array.from({ length: Math.min(concurrency, work.bodies.length) }, worker));
  const interval = stop();

  // Verification, after the clock stopped.
  let bytes = 0;
  responses.forEach((res, i) => {
    bytes += res.bytes;
    if (res.status !== 201 && res.status !== 200) {
      throw new Error(
        `_bulk_docs batch ${i}: HTTP ${res.status}: ${bodyOf(res).toString('utf8').slice(0, 300)}`,
      );
    }
    const results = jsonOf(res) as { ok?: unknown; id?: unknown; rev?: unknown; error?: unknown }[];
    const expected = work.batchIds[i];
    if (!Array.isArray(results) || results.length !== expected.length) {
      throw new Error(`_bulk_docs batch ${i}: expected ${expected.length} results`);
    }
    results.forEach((r, j) => {
      if (r.ok !== true || r.id !== expected[j] || typeof r.rev !== 'string') {
        throw new Error(`_bulk_docs batch ${i} doc ${j}: not ok: ${JSON.stringify(r)}`);
      }
    });
  });
  const info = (await client.json('GET', `/${DB}`, [200])) as { doc_count?: unknown };
  if (info.doc_count !== work.ids.length) {
    throw new Error(`doc_count is ${String(info.doc_count)} after loading ${work.ids.length} documents`);
  }
  return { ...interval, bytes };
}

interface ChangeRowShape {
  id?: unknown;
  doc?: { _id?: unknown; payload?: unknown };
}

/** Checks that the rows are every loaded document exactly once, each with its body. */
function verifyRows(rows: readonly ChangeRowShape[], expected: number, what: string): void {
  if (rows.length !== expected) throw new Error(`${what}: ${rows.length} rows, expected ${expected}`);
  const seen = new Set<string>();
  for (const row of rows) {
    if (typeof row.id !== 'string' || row.doc?._id !== row.id || typeof row.doc.payload !== 'string') {
      throw new Error(`${what}: malformed row ${JSON.stringify(row).slice(0, 200)}`);
    }
    seen.add(row.id);
  }
  if (seen.size !== expected) throw new Error(`${what}: ${seen.size} distinct ids, expected ${expected}`);
}

/** `GET /db/_changes?include_docs=true` in one request; timed until the body is fully received. */
async function changesSingle(client: HttpClient, docs: number): Promise<Timed> {
  const stop = startClock();
  const res = await client.request('GET', `/${DB}/_changes?include_docs=true`);
  const interval = stop();
  if (res.status !== 200)
    throw new Error(`_changes: HTTP ${res.status}: ${bodyOf(res).toString('utf8').slice(0, 300)}`);
  const body = jsonOf(res) as { results?: ChangeRowShape[] };
  verifyRows(body.results ?? [], docs, '_changes (one request)');
  return { ...interval, bytes: res.bytes };
}

/** The text of the last `max` bytes of a response (where `last_seq` and `pending` are). */
function tail(res: RawResponse, max: number): string {
  const parts: Buffer[] = [];
  let have = 0;
  for (let i = res.chunks.length - 1; i >= 0 && have < max; i--) {
    parts.unshift(res.chunks[i]);
    have += res.chunks[i].length;
  }
  const buf = Buffer.concat(parts);
  return buf.subarray(Math.max(0, buf.length - max)).toString('utf8');
}

/**
 * `_changes?include_docs=true&limit=P&since=S`, page after page, as a
 * replicator reads. Only the tail of each page is looked at while timing (for
 * `last_seq` and `pending`); the pages are parsed and checked afterwards.
 */
async function changesPaged(
  client: HttpClient,
  docs: number,
  pageSize: number,
): Promise<Timed & { pages: number }> {
  const pages: RawResponse[] = [];
  let since: unknown = 0;
  const maxPages = Math.ceil(docs / pageSize) + 5;
  const stop = startClock();
  for (;;) {
    const path = `/${DB}/_changes?include_docs=true&limit=${pageSize}&since=${encodeURIComponent(typeof since === 'string' ? since : JSON.stringify(since))}`;
    const res = await client.request('GET', path);
    if (res.status !== 200)
      throw new Error(`${path}: HTTP ${res.status}: ${bodyOf(res).toString('utf8').slice(0, 300)}`);
    pages.push(res);
    const end = tail(res, 512);
    const lastSeqMatch = /"last_seq"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)/.exec(end);
    if (lastSeqMatch === null) throw new Error(`${path}: no last_seq at the end of the response`);
    const lastSeq = JSON.parse(lastSeqMatch[1]) as unknown;
    const pending = /"pending"\s*:\s*(\d+)/.exec(end);
    if (pending !== null && Number(pending[1]) === 0) break;
    if (lastSeq === since) break;
    if (pages.length > maxPages) throw new Error(`_changes paging did not end after ${pages.length} pages`);
    since = lastSeq;
  }
  const interval = stop();
  const rows: ChangeRowShape[] = [];
  let bytes = 0;
  for (const page of pages) {
    bytes += page.bytes;
    const body = jsonOf(page) as { results?: ChangeRowShape[] };
    for (const row of body.results ?? []) rows.push(row);
  }
  verifyRows(rows, docs, `_changes (paged, limit=${pageSize})`);
  return { ...interval, bytes, pages: pages.length };
}

interface ServerFigures {
  load_docs_per_s: number;
  /** The headline read-back figure: one `_changes?include_docs=true` request (median of the reads). */
  changes_docs_per_s: number;
  changes_paged_docs_per_s: number;
  load_ms: number;
  changes_ms: number;
  changes_paged_ms: number;
  changes_mb_per_s: number;
  changes_response_bytes: number;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

async function measure(
  server: RunningServer,
  work: Workload,
  options: Options,
  phases: PhaseLog,
): Promise<ServerFigures> {
  const { client } = server;
  const n = work.ids.length;
  await client.json('PUT', `/${DB}`, [201, 202]);
  say(
    `${server.name}: loading ${n} docs (${work.bodies.length} x _bulk_docs of ${options.batch}, ${options.concurrency} in flight, ${mb(work.totalBytes)})`,
  );
  const load = await bulkLoad(client, work, options.concurrency);
  phases.add('load', load);
  say(`${server.name}: load ${load.ms.toFixed(0)} ms = ${rate(n, load.ms)} docs/s (all ok, doc_count ${n})`);

  const single: Timed[] = [];
  const paged: Timed[] = [];
  for (let r = 1; r <= options.reads; r++) {
    const one = await changesSingle(client, n);
    phases.add(`changes-${r}`, one);
    single.push(one);
    say(
      `${server.name}: _changes?include_docs=true, one request, read ${r}: ${one.ms.toFixed(0)} ms = ${rate(n, one.ms)} docs/s (${mb(one.bytes)})`,
    );
    const pg = await changesPaged(client, n, options.pageSize);
    phases.add(`changes-paged-${r}`, pg);
    paged.push(pg);
    say(
      `${server.name}: _changes paged (limit=${options.pageSize}, ${pg.pages} requests), read ${r}: ${pg.ms.toFixed(0)} ms = ${rate(n, pg.ms)} docs/s`,
    );
  }
  const singleMs = median(single.map((t) => t.ms));
  const pagedMs = median(paged.map((t) => t.ms));
  const responseBytes = single[0].bytes;
  return {
    load_docs_per_s: rate(n, load.ms),
    changes_docs_per_s: rate(n, singleMs),
    changes_paged_docs_per_s: rate(n, pagedMs),
    load_ms: Math.round(load.ms),
    changes_ms: Math.round(singleMs),
    changes_paged_ms: Math.round(pagedMs),
    changes_mb_per_s: Math.round((responseBytes / 1e6 / singleMs) * 1000 * 10) / 10,
    changes_response_bytes: responseBytes,
  };
}

async function withServer<T>(
  start: () => Promise<RunningServer>,
  use: (server: RunningServer) => Promise<T>,
): Promise<T> {
  const server = await start();
  say(`${server.name} is up (pid ${server.pid}, ${server.client.baseUrl})`);
  try {
    return await use(server);
  } finally {
    await server.stop();
    say(`${server.name} stopped`);
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installCleanupHooks();
  say(
    `node ${process.version}, ${cpus().length} CPUs; docs=${options.docs} batch=${options.batch} concurrency=${options.concurrency} page-size=${options.pageSize} reads=${options.reads}`,
  );
  const work = makeWorkload(options.docs, options.batch, options.docBytes);
  say(`generated ${options.docs} docs, ~${work.avgDocBytes} bytes each`);

  let ceiling: ServerFigures | null = null;
  if (options.calibrate) {
    ceiling = await withServer(startNullServer, (server) => measure(server, work, options, new PhaseLog()));
  }
  let doppel: ServerFigures | null = null;
  let pouch: ServerFigures | null = null;
  if (options.only !== 'pouchdb') {
    const phases = new PhaseLog();
    const nodeArgs = [
      ...options.nodeArgs,
      ...(options.cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`]),
    ];
    if (options.cpuProf !== undefined) mkdirSync(options.cpuProf, { recursive: true });
    const before = options.cpuProf === undefined ? [] : readdirSync(options.cpuProf);
    doppel = await withServer(
      () => startDoppel({ nodeArgs }),
      (server) => measure(server, work, options, phases),
    );
    if (options.cpuProf !== undefined) {
      const written = readdirSync(options.cpuProf).filter(
        (f) => f.endsWith('.cpuprofile') && !before.includes(f),
      );
      const phasesFile = join(options.cpuProf, 'phases.json');
      writeFileSync(
        phasesFile,
        `${JSON.stringify({ clock: 'monotonic-us', phases: phases.phases }, null, 2)}\n`,
      );
      for (const f of written) {
        say(`profile: ${join(options.cpuProf, f)}`);
        say(
          `  summarize: npx tsx bench/profile-summary.ts ${join(options.cpuProf, f)} --phases ${phasesFile}`,
        );
      }
    }
  }
  if (options.only !== 'doppel') {
    pouch = await withServer(startPouchdbServer, (server) => measure(server, work, options, new PhaseLog()));
  }

  const ratio = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined || b === 0 ? null : Math.round((a / b) * 100) / 100;
  const loadRatio = ratio(doppel?.load_docs_per_s, pouch?.load_docs_per_s);
  const changesRatio = ratio(doppel?.changes_docs_per_s, pouch?.changes_docs_per_s);
  const met = {
    load: doppel !== null && doppel.load_docs_per_s >= TARGETS.load_docs_per_s,
    changes: doppel !== null && doppel.changes_docs_per_s >= TARGETS.changes_docs_per_s,
    load_ratio: loadRatio !== null && loadRatio >= TARGETS.ratio,
    changes_ratio: changesRatio !== null && changesRatio >= TARGETS.ratio,
    all: false,
  };
  met.all = met.load && met.changes && met.load_ratio && met.changes_ratio;

  const row = (name: string, f: ServerFigures | null): string =>
    f === null
      ? `  ${name.padEnd(15)} (not measured)`
      : `  ${name.padEnd(15)} load ${String(f.load_docs_per_s).padStart(7)} docs/s   changes ${String(f.changes_docs_per_s).padStart(7)} docs/s (one request)   ${String(f.changes_paged_docs_per_s).padStart(7)} docs/s (paged)`;
  say('results:');
  if (ceiling !== null) process.stderr.write(`${row('client ceiling', ceiling)}\n`);
  process.stderr.write(`${row('doppel', doppel)}\n${row('pouchdb-server', pouch)}\n`);
  process.stderr.write(
    `  ratio           load ${loadRatio ?? '-'}x   changes ${changesRatio ?? '-'}x\n` +
      `  targets         load >= ${TARGETS.load_docs_per_s} (${met.load ? 'met' : 'NOT met'}), changes >= ${TARGETS.changes_docs_per_s} (${met.changes ? 'met' : 'NOT met'}), ratios >= ${TARGETS.ratio}x (load ${met.load_ratio ? 'met' : 'NOT met'}, changes ${met.changes_ratio ? 'met' : 'NOT met'})\n`,
  );

  const result = {
    bench: 'bulk-load',
    docs: options.docs,
    doc_bytes: work.avgDocBytes,
    batch: options.batch,
    concurrency: options.concurrency,
    page_size: options.pageSize,
    reads: options.reads,
    changes_headline: 'one request: GET /db/_changes?include_docs=true (median of reads)',
    env: { node: process.version, cpus: cpus().length },
    doppel,
    pouchdb_server: pouch,
    ...(ceiling === null ? {} : { client_ceiling: ceiling }),
    ratio: { load: loadRatio, changes: changesRatio },
    targets: TARGETS,
    met,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  say(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
