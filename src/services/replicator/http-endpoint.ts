/**
 * A `ReplicationEndpoint` over HTTP(S) to any CouchDB-compatible server,
 * through `HttpTransport` (an undici pool per endpoint: `http_connections`,
 * `connection_timeout`, `retries_per_request`, 429 throttling, proxies).
 *
 * Credentials come from `auth.basic`, then `auth.bearer`, then the URL's
 * userinfo, then an `Authorization` header; they never appear in
 * `displayName`/`identity`.
 *
 * `_changes`: everything up to now comes from one normal feed, read as it
 * streams in (no `limit` paging: a page costs the peer a `pending` count of
 * everything after it) and handed over in batches of `batchSize` with
 * backpressure; a cut resumes from the last batch handed over. A continuous
 * job then streams `feed=continuous` with heartbeats; a connection silent for
 * three heartbeats is dropped and reopened from the last seq handed over;
 * `retries_per_request` failed reconnections in a row fail the job (the
 * scheduler then restarts it with backoff), as CouchDB's changes reader does.
 *
 * `_bulk_docs` answered 413 is split in halves down to single documents; a
 * document still too large is one write failure (`too_large`).
 */
import { badRequest, DoppelError, ErrorKind } from '../../errors.js';
import type {
  BulkGetRequest,
  BulkGetResult,
  ChangeEntry,
  ChangesOptions,
  ChangesResult,
  CopyBatchWriter,
  EndpointInfo,
  FetchedDoc,
  ReplicationEndpoint,
  RevsDiffEntry,
  Seq,
  WriteFailure,
} from '../../engines/replication/endpoint.js';
import { pushDocFrames, type CopiedDoc, type CopyFrame } from '../../engines/docs/database-copy.js';
import { copyFrames, CopyWriter, DATABASE_COPY_CONTENT_TYPE } from '../docs/database-copy-wire.js';
import { NormalFeedScanner } from './http-changes-scanner.js';
import { httpError, HttpTransport, sleep, type HttpTransportOptions } from './http-transport.js';

export { httpError } from './http-transport.js';

export interface HttpEndpointSpec {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly auth?: {
    readonly basic?: { readonly username: string; readonly password: string };
    /** A token sent as `Authorization: Bearer <token>`. */
    readonly bearer?: string;
  };
}

/** `httpConnections`, `connectionTimeout`, `retriesPerRequest`, `proxy`, `signal` (see HttpTransportOptions). */
export type HttpEndpointOptions = HttpTransportOptions;

/** Reconnect delays of a continuous feed: first try, and the cap of the doubling. */
const FEED_RETRY_FIRST_MS = 250;
const FEED_RETRY_MAX_MS = 30_000;
/** The shortest heartbeat asked of a continuous feed (a stall is three of them). */
const MIN_HEARTBEAT_MS = 100;
/**
 * Revisions per `_bulk_get` request; a worker's batch goes out as several
 * such requests at once. Replies stay small (about 100 KB for 1 KB docs):
 * V8 allocates strings above ~64 KB in large-object space, which costs far
 * more per byte, on both ends, than many small replies do.
 */
const BULK_GET_CHUNK = 100;
/** `open_revs` GETs in flight at once when the peer has no `_bulk_get`. */
const OPEN_REVS_CONCURRENCY = 8;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A document id as a path: `_design/x` and `_local/x` keep their slash. */
export function docPath(id: string): string {
  for (const prefix of ['_design/', '_local/']) {
    if (id.startsWith(prefix)) return prefix + encodeURIComponent(id.slice(prefix.length));
  }
  return encodeURIComponent(id);
}

function toChange(row: unknown): ChangeEntry | null {
  if (!isObject(row) || typeof row['id'] !== 'string') return null;
  const seq = row['seq'];
  if (typeof seq !== 'number' && typeof seq !== 'string') return null;
  const changes: { rev: string }[] = [];
  if (Array.isArray(row['changes'])) {
    for (const c of row['changes'] as unknown[]) {
      if (isObject(c) && typeof c['rev'] === 'string') changes.push({ rev: c['rev'] });
    }
  }
  return row['deleted'] === true
    ? { seq, id: row['id'], changes, deleted: true }
    : { seq, id: row['id'], changes };
}

function isFetchedDoc(v: unknown): v is FetchedDoc {
  return isObject(v) && typeof v['_id'] === 'string' && typeof v['_rev'] === 'string';
}

function query(params: Readonly<Record<string, string>>): string {
  const qs = new URLSearchParams(params).toString();
  return qs === '' ? '' : `?${qs}`;
}

/** Marks an error thrown by the job's `onBatch`: it ends the feed instead of causing a reconnect. */
class ConsumerError extends Error {
  constructor(readonly original: unknown) {
    super('changes consumer failed');
  }
}

export class HttpEndpoint implements ReplicationEndpoint {
  readonly displayName: string;
  readonly identity: string;
  readonly #http: HttpTransport;
  #bulkGetSupported = true;
  /** The database's info says it is on a Doppel node (which can copy and take copies). */
  #doppel = false;

  constructor(spec: HttpEndpointSpec | string, options: HttpEndpointOptions = {}) {
    const s: HttpEndpointSpec = typeof spec === 'string' ? { url: spec } : spec;
    let url: URL;
    try {
      url = new URL(s.url);
    } catch {
      throw badRequest(`invalid replication endpoint url`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badRequest('endpoint must be http(s)');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.headers ?? {})) headers[k.toLowerCase()] = v;
    let user: string | undefined;
    if (s.auth?.basic !== undefined) {
      user = s.auth.basic.username;
      headers['authorization'] =
        `Basic ${Buffer.from(`${user}:${s.auth.basic.password}`).toString('base64')}`;
    } else if (s.auth?.bearer !== undefined) {
      headers['authorization'] = `Bearer ${s.auth.bearer}`;
    } else if (url.username !== '') {
      user = decodeURIComponent(url.username);
      const pw = decodeURIComponent(url.password);
      headers['authorization'] = `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
    }
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    const path = url.pathname.replace(/\/+$/, '');
    this.displayName = `${url.origin}${path}/`;
    const identityHeaders = Object.keys(headers)
      .filter((k) => k !== 'authorization' && k !== 'cookie')
      .sort()
      .map((k) => `${k}=${headers[k] ?? ''}`);
    this.identity = JSON.stringify(['http', user ?? null, url.protocol, url.host, path, identityHeaders]);
    this.#http = new HttpTransport(url, headers, options);
  }

  async exists(): Promise<boolean> {
    const reply = await this.#http.request({ method: 'HEAD', path: '', accept: [404] });
    return reply.status !== 404;
  }

  async create(): Promise<void> {
    await this.#http.request({ method: 'PUT', path: '', accept: [412] });
  }

  async info(): Promise<EndpointInfo> {
    const { body } = await this.#http.request({ method: 'GET', path: '' });
    if (!isObject(body)) throw new DoppelError(ErrorKind.Unavailable, 'bad database info');
    this.#doppel = isObject(body['doppel']);
    const seq = body['update_seq'];
    return {
      db_name: typeof body['db_name'] === 'string' ? body['db_name'] : '',
      update_seq: typeof seq === 'number' || typeof seq === 'string' ? seq : 0,
      instance_start_time:
        typeof body['instance_start_time'] === 'string' ? body['instance_start_time'] : '0',
    };
  }

  /** Query parameters and POST body (doc_ids, selector) of a `_changes` request. */
  #changesRequest(options: ChangesOptions, since: Seq): { query: Record<string, string>; body?: string } {
    const params: Record<string, string> = {
      style: options.winningRevsOnly ? 'main_only' : 'all_docs',
      since: String(since),
    };
    const f = options.filter;
    switch (f.kind) {
      case 'none':
        return { query: params };
      case 'doc_ids':
        return { query: { ...params, filter: '_doc_ids' }, body: JSON.stringify({ doc_ids: f.docIds }) };
      case 'selector':
        return { query: { ...params, filter: '_selector' }, body: JSON.stringify({ selector: f.selector }) };
      case 'js':
        return { query: { ...f.queryParams, ...params, filter: f.name } };
    }
  }

  async changes(
    options: ChangesOptions,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    let since = options.since;
    const handOver = async (rows: readonly ChangeEntry[], lastSeq: Seq): Promise<void> => {
      try {
        await onBatch(rows, lastSeq);
      } catch (err) {
        throw new ConsumerError(err);
      }
      since = lastSeq;
    };
    try {
      // Everything up to now in one streamed normal feed; then, when continuous, stream what follows.
      since = await this.#normalFeed(options, since, handOver);
      if (!options.continuous || options.signal.aborted) return { lastSeq: since };
      return await this.#continuous(options, since, handOver);
    } catch (err) {
      throw err instanceof ConsumerError ? err.original : err;
    }
  }

  /**
   * The normal feed from `start` to the current end, in one request read as it
   * arrives (batches of `batchSize` as soon as they are complete). A failure
   * part-way resumes from the last batch handed over, with the request
   * retry budget (renewed by progress).
   */
  async #normalFeed(
    options: ChangesOptions,
    start: Seq,
    handOver: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<Seq> {
    let since = start;
    const give = async (rows: readonly ChangeEntry[], lastSeq: Seq): Promise<void> => {
      await handOver(rows, lastSeq);
      since = lastSeq;
    };
    let delay = FEED_RETRY_FIRST_MS;
    for (let attempt = 0; ; attempt++) {
      if (options.signal.aborted) return since;
      let rows: ChangeEntry[] = [];
      try {
        const req = this.#changesRequest(options, since);
        const reply = await this.#http.stream({
          method: req.body === undefined ? 'GET' : 'POST',
          path: `/_changes${query({ ...req.query, feed: 'normal' })}`,
          ...(req.body === undefined ? {} : { body: req.body }),
          signal: options.signal,
          bodyTimeout: this.#http.connectionTimeout,
        });
        if (!reply.ok) throw httpError(reply.status, reply.errorBody, 'GET _changes');
        const scanner = new NormalFeedScanner();
        const decoder = new TextDecoder();
        const take = async (texts: readonly string[]): Promise<void> => {
          for (const text of texts) {
            const row = toChange(JSON.parse(text) as unknown);
            if (row === null) continue;
            rows.push(row);
            if (rows.length >= options.batchSize) {
              const batch = rows;
              rows = [];
              await give(batch, row.seq);
              attempt = 0;
              delay = FEED_RETRY_FIRST_MS;
            }
          }
        };
        for await (const chunk of reply.body)
          await take(scanner.push(decoder.decode(chunk, { stream: true })));
        await take(scanner.push(decoder.decode()));
        const rest = scanner.end();
        if (rest === null) throw new DoppelError(ErrorKind.Unavailable, 'bad _changes reply');
        const last = rest['last_seq'];
        const lastSeq: Seq =
          typeof last === 'number' || typeof last === 'string' ? last : (rows[rows.length - 1]?.seq ?? since);
        if (rows.length > 0 || lastSeq !== since) await give(rows, lastSeq);
        return since;
      } catch (err) {
        if (err instanceof ConsumerError) throw err;
        if (options.signal.aborted || this.#http.signal.aborted) return since;
        if (
          err instanceof DoppelError &&
          err.kind !== ErrorKind.Unavailable &&
          err.kind !== ErrorKind.Internal
        )
          throw err;
        if (attempt >= this.#http.retriesPerRequest)
          throw err instanceof DoppelError
            ? err
            : new DoppelError(ErrorKind.Unavailable, `GET _changes failed: ${String(err)}`, { cause: err });
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, FEED_RETRY_MAX_MS);
      }
    }
  }

  /** The streamed continuous feed, reconnected from the last seq handed over after any transient failure. */
  async #continuous(
    options: ChangesOptions,
    start: Seq,
    handOver: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    let since = start;
    const give = async (rows: readonly ChangeEntry[], lastSeq: Seq): Promise<void> => {
      await handOver(rows, lastSeq);
      since = lastSeq;
    };
    let delay = FEED_RETRY_FIRST_MS;
    // Heartbeats at least three times per connection_timeout (CouchDB asks for timeout=connection_timeout/3),
    // so that a silence of three heartbeats is a stall and never an idle feed.
    const heartbeatMs = Math.max(
      MIN_HEARTBEAT_MS,
      Math.min(options.heartbeatMs, Math.floor(this.#http.connectionTimeout / 3)),
    );
    const stallMs = 3 * heartbeatMs;
    /** Connections in a row that failed before any byte came; past retries_per_request the job crashes. */
    let failures = 0;
    while (!options.signal.aborted && !this.#http.signal.aborted) {
      const connection = new AbortController();
      const stop = (): void => connection.abort();
      options.signal.addEventListener('abort', stop, { once: true });
      let watchdog: NodeJS.Timeout | undefined;
      let stalled = false;
      // Armed while we wait for the peer (connect, headers, bytes); not while onBatch holds the feed back.
      const arm = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          stalled = true;
          connection.abort();
        }, stallMs);
      };
      const disarm = (): void => clearTimeout(watchdog);
      let gotBytes = false;
      try {
        const req = this.#changesRequest(options, since);
        const params = { ...req.query, feed: 'continuous', heartbeat: String(heartbeatMs) };
        arm();
        const reply = await this.#http.stream({
          method: req.body === undefined ? 'GET' : 'POST',
          path: `/_changes${query(params)}`,
          ...(req.body === undefined ? {} : { body: req.body }),
          signal: connection.signal,
          bodyTimeout: 0,
        });
        if (!reply.ok) throw httpError(reply.status, reply.errorBody, 'continuous _changes');
        const decoder = new TextDecoder();
        let buffered = '';
        let rows: ChangeEntry[] = [];
        for await (const chunk of reply.body) {
          disarm();
          gotBytes = true;
          failures = 0;
          delay = FEED_RETRY_FIRST_MS;
          buffered += decoder.decode(chunk, { stream: true });
          let start = 0;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n', start)) {
            const line = buffered.slice(start, nl);
            start = nl + 1;
            if (line.trim() === '') continue; // a heartbeat
            let parsed: unknown;
            try {
              parsed = JSON.parse(line) as unknown;
            } catch {
              continue;
            }
            const row = toChange(parsed);
            if (row !== null) {
              rows.push(row);
              if (rows.length >= options.batchSize) {
                const batch = rows;
                rows = [];
                await give(batch, row.seq);
              }
            } else if (isObject(parsed) && 'last_seq' in parsed) {
              // The feed's closing line: rows before it first, then reopen from its seq.
              if (rows.length > 0) {
                const batch = rows;
                rows = [];
                await give(batch, batch[batch.length - 1]?.seq ?? since);
              }
              const last = parsed['last_seq'];
              if (typeof last === 'number' || typeof last === 'string') since = last;
            }
          }
          buffered = buffered.slice(start);
          // The peer has nothing more for now: hand over what arrived.
          if (rows.length > 0) {
            const batch = rows;
            rows = [];
            await give(batch, batch[batch.length - 1]?.seq ?? since);
          }
          arm();
        }
        // The peer ended the feed (its timeout, a restart): reopen it, at once if it was useful.
        if (!gotBytes) {
          failures++;
          if (failures > this.#http.retriesPerRequest)
            throw new DoppelError(
              ErrorKind.Unavailable,
              `continuous _changes: the peer keeps closing the feed`,
            );
          await sleep(delay, options.signal);
          delay = Math.min(delay * 2, FEED_RETRY_MAX_MS);
        }
      } catch (err) {
        if (err instanceof ConsumerError) throw err;
        if (options.signal.aborted || this.#http.signal.aborted) break;
        if (
          err instanceof DoppelError &&
          err.kind !== ErrorKind.Unavailable &&
          err.kind !== ErrorKind.Internal
        )
          throw err;
        // As CouchDB's changes reader: retries_per_request reconnections in a row, then the job crashes
        // (and its scheduler restarts it with backoff).
        failures++;
        if (failures > this.#http.retriesPerRequest) {
          const why = stalled
            ? `no data (not even a heartbeat) for ${stallMs} ms`
            : err instanceof Error
              ? err.message
              : String(err);
          throw new DoppelError(
            ErrorKind.Unavailable,
            `continuous _changes from ${this.displayName} failed ${failures} times: ${why}`,
            { cause: err },
          );
        }
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, FEED_RETRY_MAX_MS);
      } finally {
        disarm();
        options.signal.removeEventListener('abort', stop);
        // Closes the socket of a feed we leave (stall, error, stop).
        connection.abort();
      }
    }
    return { lastSeq: since };
  }

  async pending(since: Seq): Promise<number | null> {
    const { body } = await this.#http.request({
      method: 'GET',
      path: `/_changes${query({ since: String(since), limit: '0' })}`,
    });
    return isObject(body) && typeof body['pending'] === 'number' ? body['pending'] : null;
  }

  async revsDiff(
    revs: Readonly<Record<string, readonly string[]>>,
  ): Promise<Readonly<Record<string, RevsDiffEntry>>> {
    if (Object.keys(revs).length === 0) return {};
    const { body } = await this.#http.request({
      method: 'POST',
      path: '/_revs_diff',
      body: JSON.stringify(revs),
    });
    if (!isObject(body)) throw new DoppelError(ErrorKind.Unavailable, 'bad _revs_diff reply');
    const out: Record<string, RevsDiffEntry> = {};
    for (const [id, entry] of Object.entries(body)) {
      if (!isObject(entry) || !Array.isArray(entry['missing'])) continue;
      const missing = (entry['missing'] as unknown[]).filter((r): r is string => typeof r === 'string');
      const anc = Array.isArray(entry['possible_ancestors'])
        ? (entry['possible_ancestors'] as unknown[]).filter((r): r is string => typeof r === 'string')
        : undefined;
      out[id] = anc === undefined ? { missing } : { missing, possible_ancestors: anc };
    }
    return out;
  }

  async bulkGet(requests: readonly BulkGetRequest[]): Promise<BulkGetResult> {
    if (requests.length === 0) return { docs: [], missing: [] };
    if (this.#bulkGetSupported) {
      // Several smaller requests at once rather than one big one: see BULK_GET_CHUNK.
      const parts: Promise<BulkGetResult | null>[] = [];
      for (let i = 0; i < requests.length; i += BULK_GET_CHUNK)
        parts.push(this.#bulkGetPart(requests.slice(i, i + BULK_GET_CHUNK)));
      const results = await Promise.all(parts);
      if (results.every((r): r is BulkGetResult => r !== null)) {
        if (results.length === 1 && results[0] !== undefined) return results[0];
        return { docs: results.flatMap((r) => r.docs), missing: results.flatMap((r) => r.missing) };
      }
      this.#bulkGetSupported = false;
    }
    return this.#openRevs(requests);
  }

  /** One `_bulk_get`; null when the peer has none. */
  async #bulkGetPart(requests: readonly BulkGetRequest[]): Promise<BulkGetResult | null> {
    const reply = await this.#http.request({
      method: 'POST',
      path: `/_bulk_get${query({ revs: 'true', latest: 'true', attachments: 'true' })}`,
      body: JSON.stringify({
        docs: requests.map((r) =>
          r.attsSince === undefined
            ? { id: r.id, rev: r.rev }
            : { id: r.id, rev: r.rev, atts_since: r.attsSince },
        ),
      }),
      accept: [400, 404, 405, 501],
    });
    return reply.status < 300 ? this.#bulkGetReply(requests, reply.body) : null;
  }

  #bulkGetReply(requests: readonly BulkGetRequest[], body: unknown): BulkGetResult {
    if (!isObject(body) || !Array.isArray(body['results']))
      throw new DoppelError(ErrorKind.Unavailable, 'bad _bulk_get reply');
    const docs: FetchedDoc[] = [];
    const gotRevs = new Set<string>();
    // With latest=true a newer leaf may come back instead of the rev asked for: the id is then served.
    const gotIds = new Set<string>();
    for (const result of body['results'] as unknown[]) {
      if (!isObject(result) || !Array.isArray(result['docs'])) continue;
      for (const item of result['docs'] as unknown[]) {
        if (!isObject(item)) continue;
        const doc = item['ok'];
        if (isFetchedDoc(doc)) {
          docs.push(doc);
          gotRevs.add(`${doc._id}\u0000${doc._rev}`);
          gotIds.add(doc._id);
        }
      }
    }
    const missing = requests.filter((r) => !gotRevs.has(`${r.id}\u0000${r.rev}`) && !gotIds.has(r.id));
    return { docs, missing };
  }

  /** `GET /db/{id}?open_revs=[..]` per document, a few at a time (peers without `_bulk_get`). */
  async #openRevs(requests: readonly BulkGetRequest[]): Promise<BulkGetResult> {
    const byId = new Map<string, { revs: string[]; attsSince: Set<string> }>();
    for (const r of requests) {
      let e = byId.get(r.id);
      if (e === undefined) byId.set(r.id, (e = { revs: [], attsSince: new Set() }));
      e.revs.push(r.rev);
      for (const a of r.attsSince ?? []) e.attsSince.add(a);
    }
    const docs: FetchedDoc[] = [];
    const missing: BulkGetRequest[] = [];
    const entries = [...byId];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const entry = entries[next++];
        if (entry === undefined) break;
        const [id, e] = entry;
        const params: Record<string, string> = {
          open_revs: JSON.stringify(e.revs),
          revs: 'true',
          latest: 'true',
          attachments: 'true',
        };
        if (e.attsSince.size > 0) params['atts_since'] = JSON.stringify([...e.attsSince]);
        // Accept: application/json (the transport's default) keeps CouchDB from answering multipart/mixed.
        const reply = await this.#http.request(
          { method: 'GET', path: `/${docPath(id)}${query(params)}`, accept: [404] },
          'GET open_revs',
        );
        if (reply.status === 404 || !Array.isArray(reply.body)) {
          for (const rev of e.revs) missing.push({ id, rev });
          continue;
        }
        for (const item of reply.body as unknown[]) {
          if (isObject(item) && isFetchedDoc(item['ok'])) docs.push(item['ok']);
          else if (isObject(item) && typeof item['missing'] === 'string')
            missing.push({ id, rev: item['missing'] });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(OPEN_REVS_CONCURRENCY, entries.length) }, worker));
    return { docs, missing };
  }

  async bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]> {
    if (docs.length === 0) return [];
    return this.#writeDocs(docs);
  }

  /**
   * `_bulk_docs new_edits=false`. A 413 splits the batch in halves (down to
   * single docs); a single document still too large is one write failure.
   */
  async #writeDocs(docs: readonly FetchedDoc[]): Promise<WriteFailure[]> {
    const reply = await this.#http.request(
      { method: 'POST', path: '/_bulk_docs', body: bulkDocsBody(docs), accept: [413] },
      'POST _bulk_docs',
    );
    if (reply.status === 413) {
      const only = docs.length === 1 ? docs[0] : undefined;
      if (only !== undefined)
        return [
          {
            id: only._id,
            rev: only._rev,
            error: 'too_large',
            reason: 'the document is larger than the target accepts',
          },
        ];
      const half = Math.ceil(docs.length / 2);
      const first = await this.#writeDocs(docs.slice(0, half));
      const second = await this.#writeDocs(docs.slice(half));
      return first.concat(second);
    }
    return writeFailures(reply.body);
  }

  async getLocal(id: string): Promise<Record<string, unknown> | null> {
    const reply = await this.#http.request({
      method: 'GET',
      path: `/_local/${encodeURIComponent(id)}`,
      accept: [404],
    });
    if (reply.status === 404 || !isObject(reply.body)) return null;
    return reply.body;
  }

  async putLocal(id: string, body: Record<string, unknown>): Promise<string> {
    const reply = await this.#http.request({
      method: 'PUT',
      path: `/_local/${encodeURIComponent(id)}`,
      body: JSON.stringify(body),
    });
    const rev = isObject(reply.body) ? reply.body['rev'] : undefined;
    return typeof rev === 'string' ? rev : '0-1';
  }

  async ensureFullCommit(): Promise<void> {
    await this.#http.request({
      method: 'POST',
      path: '/_ensure_full_commit',
      body: '{}',
      accept: [400, 404, 405],
    });
  }

  async filterSource(ddocAndName: string): Promise<string> {
    const slash = ddocAndName.indexOf('/');
    if (slash <= 0) throw badRequest(`invalid filter name: ${ddocAndName}`);
    const ddoc = ddocAndName.slice(0, slash);
    const name = ddocAndName.slice(slash + 1);
    const { body } = await this.#http.request({
      method: 'GET',
      path: `/_design/${encodeURIComponent(ddoc)}`,
    });
    const filters = isObject(body) ? body['filters'] : undefined;
    const source = isObject(filters) ? filters[name] : undefined;
    if (typeof source !== 'string')
      throw new DoppelError(ErrorKind.NotFound, `missing filter ${name} in _design/${ddoc}`);
    return source;
  }

  /**
   * `GET /{db}/_doppel_copy`: null unless the peer is a Doppel node (see
   * `info`) answering with a copy (one refusing it: the job then replicates
   * by changes, which reports a refusal in its own words).
   */
  async copy(
    afterId: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<readonly CopyFrame[]> | null> {
    if (!this.#doppel) return null;
    const reply = await this.#http.stream({
      method: 'GET',
      path: `/_doppel_copy${afterId === undefined ? '' : query({ after: afterId })}`,
      signal,
      bodyTimeout: this.#http.connectionTimeout,
    });
    if (!reply.ok) return null;
    if (reply.contentType !== DATABASE_COPY_CONTENT_TYPE) {
      // Drained, so that the connection goes back to the pool.
      for await (const chunk of reply.body) void chunk;
      return null;
    }
    return copyFrames(reply.body);
  }

  /**
   * Batches of a copy as `POST /{db}/_doppel_restore`, when the peer is a
   * Doppel node (its database info says so, see `info`) that takes them: an
   * empty batch asks first. Anything but 201 to it (an older node, a database
   * taking writes one by one, a refusal) means the job writes by `_bulk_docs`
   * instead, which reports a refusal in its own words.
   */
  async copyWriter(): Promise<CopyBatchWriter | null> {
    if (!this.#doppel) return null;
    const probe = await this.#restore([], new Map(), [400, 401, 403, 404, 405, 415]);
    if (probe === null) return null;
    return async (docs, attachments) => {
      const failures = await this.#restore(docs, attachments, []);
      if (failures === null)
        throw new DoppelError(ErrorKind.Unavailable, 'POST _doppel_restore: the peer did not take the batch');
      return failures;
    };
  }

  /**
   * One restore request; null when the peer answers one of `refusals`. A 413
   * splits the batch in halves (down to single documents, then refused as
   * `_bulk_docs` refuses a document too large).
   */
  async #restore(
    docs: readonly CopiedDoc[],
    attachments: ReadonlyMap<string, Buffer>,
    refusals: readonly number[],
  ): Promise<WriteFailure[] | null> {
    const reply = await this.#http.request(
      {
        method: 'POST',
        path: '/_doppel_restore',
        body: copyBatchBody(docs, attachments),
        contentType: DATABASE_COPY_CONTENT_TYPE,
        accept: [413, ...refusals],
      },
      'POST _doppel_restore',
    );
    if (reply.status === 413) {
      if (docs.length <= 1)
        return docs.flatMap((doc) =>
          doc.leaves.map((leaf) => ({
            id: doc.id,
            rev: leaf.path[0] ?? '',
            error: 'too_large',
            reason: 'the document is larger than the target accepts',
          })),
        );
      const half = Math.ceil(docs.length / 2);
      const first = await this.#restore(docs.slice(0, half), attachments, refusals);
      const second = await this.#restore(docs.slice(half), attachments, refusals);
      return first === null || second === null ? null : first.concat(second);
    }
    if (reply.status !== 201) return null;
    return writeFailures(reply.body);
  }

  /** Fails open requests and destroys the connection pool. */
  close(): Promise<void> {
    return this.#http.close();
  }
}

/** The refused revisions of a `_bulk_docs`-shaped reply (items with an `error`). */
function writeFailures(body: unknown): WriteFailure[] {
  if (!Array.isArray(body)) return [];
  const failures: WriteFailure[] = [];
  for (const item of body as unknown[]) {
    if (!isObject(item) || typeof item['error'] !== 'string') continue;
    failures.push({
      id: typeof item['id'] === 'string' ? item['id'] : '',
      ...(typeof item['rev'] === 'string' ? { rev: item['rev'] } : {}),
      error: item['error'],
      reason: typeof item['reason'] === 'string' ? item['reason'] : '',
    });
  }
  return failures;
}

/** A `_doppel_restore` body: the attachment bodies `docs` name, the documents, then `end`. */
function copyBatchBody(docs: readonly CopiedDoc[], attachments: ReadonlyMap<string, Buffer>): Buffer {
  const frames: CopyFrame[] = [];
  const sent = new Set<string>();
  const bodyOf = (digest: string): Buffer | undefined => attachments.get(digest);
  for (const doc of docs) pushDocFrames(frames, doc, bodyOf, sent);
  frames.push({ kind: 'end', docs: docs.length, unreadable: 0 });
  // One buffer, taken once: the writer grows to hold the whole batch.
  const writer = new CopyWriter();
  for (const f of frames) writer.frame(f);
  return writer.take();
}

/** Documents per piece of a serialized `_bulk_docs` body (see bulkDocsBody). */
const DOCS_PER_PIECE = 32;

/**
 * `{"new_edits":false,"docs":[…]}` as bytes, serialized a few documents at a
 * time: encoding one batch-sized string costs several times more (V8 keeps
 * strings above ~64 KB in large-object space, and encoding them is slow).
 */
function bulkDocsBody(docs: readonly FetchedDoc[]): Buffer {
  const pieces: Buffer[] = [Buffer.from('{"new_edits":false,"docs":[')];
  for (let i = 0; i < docs.length; i += DOCS_PER_PIECE) {
    const json = JSON.stringify(docs.slice(i, i + DOCS_PER_PIECE));
    pieces.push(Buffer.from(i === 0 ? json.slice(1, -1) : `,${json.slice(1, -1)}`));
  }
  pieces.push(Buffer.from(']}'));
  return Buffer.concat(pieces);
}
