/**
 * A `ReplicationEndpoint` over HTTP(S) to any CouchDB-compatible server, with
 * Node's global `fetch` (behind the endpoint interface, so the client can be
 * swapped). Credentials come from `auth.basic`, then the URL's userinfo, then
 * an `Authorization` header; they never appear in `displayName`/`identity`.
 */
import { badRequest, DoppelError, ErrorKind } from '../../errors.js';
import type {
  BulkGetRequest,
  BulkGetResult,
  ChangeEntry,
  ChangesOptions,
  ChangesResult,
  EndpointInfo,
  FetchedDoc,
  ReplicationEndpoint,
  RevsDiffEntry,
  Seq,
  WriteFailure,
} from '../../engines/replication/endpoint.js';

export interface HttpEndpointSpec {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly auth?: { readonly basic?: { readonly username: string; readonly password: string } };
}

export interface HttpEndpointOptions {
  /** Per request (ms); continuous feeds use it as an inactivity limit instead. Default 30000. */
  readonly connectionTimeout?: number;
  /** Retries of 5xx/408/network failures per request (default 5), 250 ms doubling. */
  readonly retriesPerRequest?: number;
  /** Stops retries and open requests. */
  readonly signal?: AbortSignal;
}

interface RequestInit {
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** Statuses returned to the caller instead of thrown. */
  readonly accept?: readonly number[];
}

interface JsonReply {
  readonly status: number;
  readonly body: unknown;
}

const NO_RETRY = new Set([400, 401, 403, 404, 405, 409, 412, 413, 415]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The DoppelError for a failed HTTP reply. */
export function httpError(status: number, body: unknown, what: string): DoppelError {
  const error = isObject(body) && typeof body['error'] === 'string' ? body['error'] : undefined;
  const reason =
    isObject(body) && typeof body['reason'] === 'string' ? body['reason'] : `${what}: HTTP ${status}`;
  const opts = error === undefined ? {} : { errorName: error };
  if (status === 401) return new DoppelError(ErrorKind.Unauthorized, reason, opts);
  if (status === 403) return new DoppelError(ErrorKind.Forbidden, reason, opts);
  if (status === 404) return new DoppelError(ErrorKind.NotFound, reason, opts);
  if (status === 409) return new DoppelError(ErrorKind.Conflict, reason, opts);
  if (status === 412) return new DoppelError(ErrorKind.PreconditionFailed, reason, opts);
  if (status === 413) return new DoppelError(ErrorKind.TooLarge, reason, opts);
  if (status === 405) return new DoppelError(ErrorKind.MethodNotAllowed, reason, opts);
  if (status === 400) return new DoppelError(ErrorKind.BadRequest, reason, opts);
  if (status >= 500 || status === 408 || status === 429)
    return new DoppelError(ErrorKind.Unavailable, reason, opts);
  return new DoppelError(ErrorKind.Internal, reason, opts);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
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
  const changes = Array.isArray(row['changes'])
    ? (row['changes'] as unknown[])
        .filter((c): c is { rev: string } => isObject(c) && typeof c['rev'] === 'string')
        .map((c) => ({ rev: c.rev }))
    : [];
  return row['deleted'] === true
    ? { seq, id: row['id'], changes, deleted: true }
    : { seq, id: row['id'], changes };
}

function isFetchedDoc(v: unknown): v is FetchedDoc {
  return isObject(v) && typeof v['_id'] === 'string' && typeof v['_rev'] === 'string';
}

export class HttpEndpoint implements ReplicationEndpoint {
  readonly displayName: string;
  readonly identity: string;
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #timeout: number;
  readonly #retries: number;
  readonly #signal: AbortSignal | undefined;
  #bulkGetSupported = true;

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
    this.#base = `${url.origin}${path}`;
    this.displayName = `${this.#base}/`;
    const identityHeaders = Object.keys(headers)
      .filter((k) => k !== 'authorization' && k !== 'cookie')
      .sort()
      .map((k) => `${k}=${headers[k] ?? ''}`);
    this.identity = JSON.stringify(['http', user ?? null, url.protocol, url.host, path, identityHeaders]);
    this.#headers = { accept: 'application/json', ...headers };
    this.#timeout = options.connectionTimeout ?? 30_000;
    this.#retries = options.retriesPerRequest ?? 5;
    this.#signal = options.signal;
  }

  #url(path: string, query?: Readonly<Record<string, string>>): string {
    const qs = query === undefined ? '' : new URLSearchParams(query).toString();
    return `${this.#base}${path}${qs === '' ? '' : `?${qs}`}`;
  }

  /** One JSON request with retries (5xx/408/429/network/timeouts). */
  async #request(method: string, path: string, init: RequestInit = {}): Promise<JsonReply> {
    let delay = 250;
    for (let attempt = 0; ; attempt++) {
      let status: number;
      let body: unknown = null;
      try {
        const signals = [AbortSignal.timeout(this.#timeout)];
        if (this.#signal !== undefined) signals.push(this.#signal);
        const headers: Record<string, string> = { ...this.#headers };
        if (init.body !== undefined) headers['content-type'] = 'application/json';
        const response = await fetch(this.#url(path, init.query), {
          method,
          headers,
          ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
          signal: AbortSignal.any(signals),
        });
        status = response.status;
        const text = method === 'HEAD' ? '' : await response.text();
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            body = null;
          }
        }
      } catch (err) {
        if (this.#signal?.aborted === true)
          throw new DoppelError(ErrorKind.Unavailable, 'replication stopped', { cause: err });
        if (attempt >= this.#retries)
          throw new DoppelError(
            ErrorKind.Unavailable,
            `${method} ${this.displayName}${path.slice(1)} failed: ${String(err)}`,
            {
              cause: err,
            },
          );
        await sleep(delay, this.#signal);
        delay *= 2;
        continue;
      }
      if ((status >= 200 && status < 300) || init.accept?.includes(status) === true) return { status, body };
      if (
        NO_RETRY.has(status) ||
        (status < 500 && status !== 408 && status !== 429) ||
        attempt >= this.#retries
      )
        throw httpError(status, body, `${method} ${path}`);
      await sleep(delay, this.#signal);
      delay *= 2;
    }
  }

  async exists(): Promise<boolean> {
    const reply = await this.#request('HEAD', '', { accept: [404] });
    return reply.status !== 404;
  }

  async create(): Promise<void> {
    await this.#request('PUT', '', { accept: [412] });
  }

  async info(): Promise<EndpointInfo> {
    const { body } = await this.#request('GET', '');
    if (!isObject(body)) throw new DoppelError(ErrorKind.Unavailable, 'bad database info');
    const seq = body['update_seq'];
    return {
      db_name: typeof body['db_name'] === 'string' ? body['db_name'] : '',
      update_seq: typeof seq === 'number' || typeof seq === 'string' ? seq : 0,
      instance_start_time:
        typeof body['instance_start_time'] === 'string' ? body['instance_start_time'] : '0',
    };
  }

  /** Query string and POST body of a `_changes` request. */
  #changesRequest(options: ChangesOptions, since: Seq): { query: Record<string, string>; body?: unknown } {
    const query: Record<string, string> = {
      style: options.winningRevsOnly ? 'main_only' : 'all_docs',
      since: String(since),
    };
    const f = options.filter;
    switch (f.kind) {
      case 'none':
        return { query };
      case 'doc_ids':
        return { query: { ...query, filter: '_doc_ids' }, body: { doc_ids: f.docIds } };
      case 'selector':
        return { query: { ...query, filter: '_selector' }, body: { selector: f.selector } };
      case 'js':
        return { query: { ...f.queryParams, ...query, filter: f.name } };
    }
  }

  async changes(
    options: ChangesOptions,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    let since = options.since;
    // Catch up with paged normal feeds, then (continuous) stream.
    for (;;) {
      if (options.signal.aborted) return { lastSeq: since };
      const req = this.#changesRequest(options, since);
      const query = { ...req.query, feed: 'normal', limit: String(options.batchSize) };
      const { body } = await this.#request(req.body === undefined ? 'GET' : 'POST', '/_changes', {
        query,
        ...(req.body === undefined ? {} : { body: req.body }),
      });
      if (!isObject(body) || !Array.isArray(body['results']))
        throw new DoppelError(ErrorKind.Unavailable, 'bad _changes reply');
      const rows = (body['results'] as unknown[]).map(toChange).filter((r): r is ChangeEntry => r !== null);
      const last = body['last_seq'];
      const lastSeq: Seq =
        typeof last === 'number' || typeof last === 'string' ? last : (rows[rows.length - 1]?.seq ?? since);
      if (rows.length > 0 || lastSeq !== since) await onBatch(rows, lastSeq);
      since = lastSeq;
      if (rows.length < options.batchSize) break;
    }
    if (!options.continuous) return { lastSeq: since };
    return this.#continuous(options, since, onBatch);
  }

  async #continuous(
    options: ChangesOptions,
    start: Seq,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    let since = start;
    let delay = 250;
    while (!options.signal.aborted) {
      const idle = new AbortController();
      let idleTimer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        if (idleTimer !== undefined) clearTimeout(idleTimer);
        idleTimer = setTimeout(() => idle.abort(), Math.max(options.heartbeatMs * 3, 3000));
      };
      try {
        const req = this.#changesRequest(options, since);
        const query = { ...req.query, feed: 'continuous', heartbeat: String(options.heartbeatMs) };
        const headers: Record<string, string> = { ...this.#headers };
        if (req.body !== undefined) headers['content-type'] = 'application/json';
        arm();
        const response = await fetch(this.#url('/_changes', query), {
          method: req.body === undefined ? 'GET' : 'POST',
          headers,
          ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
          signal: AbortSignal.any([options.signal, idle.signal]),
        });
        if (response.status !== 200) {
          const text = await response.text();
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text) as unknown;
          } catch {
            // not JSON
          }
          const error = httpError(response.status, parsed, 'continuous _changes');
          if (error.kind !== ErrorKind.Unavailable) throw error;
          throw error;
        }
        if (response.body === null) throw new DoppelError(ErrorKind.Unavailable, 'empty _changes stream');
        const decoder = new TextDecoder();
        let buffered = '';
        let pending: ChangeEntry[] = [];
        const flush = async (): Promise<void> => {
          if (pending.length === 0) return;
          const rows = pending;
          pending = [];
          const lastSeq = rows[rows.length - 1]?.seq ?? since;
          await onBatch(rows, lastSeq);
          since = lastSeq;
        };
        for await (const chunk of response.body) {
          arm();
          delay = 250;
          buffered += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line === '') continue;
            let parsed: unknown;
            try {
              parsed = JSON.parse(line) as unknown;
            } catch {
              continue;
            }
            const row = toChange(parsed);
            if (row !== null) {
              pending.push(row);
              if (pending.length >= options.batchSize) await flush();
            } else if (isObject(parsed) && 'last_seq' in parsed) {
              await flush();
              const last = parsed['last_seq'];
              if (typeof last === 'number' || typeof last === 'string') since = last;
            }
          }
          // The server has nothing more buffered for now: hand over what we have.
          await flush();
        }
        await flush();
      } catch (err) {
        if (options.signal.aborted) break;
        if (
          err instanceof DoppelError &&
          err.kind !== ErrorKind.Unavailable &&
          err.kind !== ErrorKind.Internal
        )
          throw err;
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, 30_000);
      } finally {
        if (idleTimer !== undefined) clearTimeout(idleTimer);
      }
    }
    return { lastSeq: since };
  }

  async pending(since: Seq): Promise<number | null> {
    const { body } = await this.#request('GET', '/_changes', { query: { since: String(since), limit: '0' } });
    return isObject(body) && typeof body['pending'] === 'number' ? body['pending'] : null;
  }

  async revsDiff(
    revs: Readonly<Record<string, readonly string[]>>,
  ): Promise<Readonly<Record<string, RevsDiffEntry>>> {
    if (Object.keys(revs).length === 0) return {};
    const { body } = await this.#request('POST', '/_revs_diff', { body: revs });
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
      const reply = await this.#request('POST', '/_bulk_get', {
        query: { revs: 'true', latest: 'true', attachments: 'true' },
        body: {
          docs: requests.map((r) =>
            r.attsSince === undefined
              ? { id: r.id, rev: r.rev }
              : { id: r.id, rev: r.rev, atts_since: r.attsSince },
          ),
        },
        accept: [400, 404, 405],
      });
      if (reply.status < 300) return this.#bulkGetReply(requests, reply.body);
      this.#bulkGetSupported = false;
    }
    return this.#openRevs(requests);
  }

  #bulkGetReply(requests: readonly BulkGetRequest[], body: unknown): BulkGetResult {
    if (!isObject(body) || !Array.isArray(body['results']))
      throw new DoppelError(ErrorKind.Unavailable, 'bad _bulk_get reply');
    const docs: FetchedDoc[] = [];
    const got = new Set<string>();
    for (const result of body['results'] as unknown[]) {
      if (!isObject(result) || !Array.isArray(result['docs'])) continue;
      for (const item of result['docs'] as unknown[]) {
        if (isObject(item) && isFetchedDoc(item['ok'])) {
          docs.push(item['ok']);
          got.add(`${item['ok']._id}\u0000${item['ok']._rev}`);
        }
      }
    }
    const missing = requests.filter(
      (r) => !got.has(`${r.id}\u0000${r.rev}`) && !docs.some((d) => d._id === r.id),
    );
    return { docs, missing };
  }

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
    for (const [id, e] of byId) {
      const query: Record<string, string> = {
        open_revs: JSON.stringify(e.revs),
        revs: 'true',
        latest: 'true',
        attachments: 'true',
      };
      if (e.attsSince.size > 0) query['atts_since'] = JSON.stringify([...e.attsSince]);
      const reply = await this.#request('GET', `/${docPath(id)}`, { query, accept: [404] });
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
    return { docs, missing };
  }

  async bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]> {
    if (docs.length === 0) return [];
    const { body } = await this.#request('POST', '/_bulk_docs', { body: { docs, new_edits: false } });
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

  async getLocal(id: string): Promise<Record<string, unknown> | null> {
    const reply = await this.#request('GET', `/_local/${encodeURIComponent(id)}`, { accept: [404] });
    if (reply.status === 404 || !isObject(reply.body)) return null;
    return reply.body;
  }

  async putLocal(id: string, body: Record<string, unknown>): Promise<string> {
    const reply = await this.#request('PUT', `/_local/${encodeURIComponent(id)}`, { body });
    const rev = isObject(reply.body) ? reply.body['rev'] : undefined;
    return typeof rev === 'string' ? rev : '0-1';
  }

  async ensureFullCommit(): Promise<void> {
    await this.#request('POST', '/_ensure_full_commit', { body: {}, accept: [400, 404, 405] });
  }

  async filterSource(ddocAndName: string): Promise<string> {
    const slash = ddocAndName.indexOf('/');
    if (slash <= 0) throw badRequest(`invalid filter name: ${ddocAndName}`);
    const ddoc = ddocAndName.slice(0, slash);
    const name = ddocAndName.slice(slash + 1);
    const { body } = await this.#request('GET', `/_design/${encodeURIComponent(ddoc)}`);
    const filters = isObject(body) ? body['filters'] : undefined;
    const source = isObject(filters) ? filters[name] : undefined;
    if (typeof source !== 'string')
      throw new DoppelError(ErrorKind.NotFound, `missing filter ${name} in _design/${ddoc}`);
    return source;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
