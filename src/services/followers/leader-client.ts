/**
 * The follower service's control-plane calls to a leader node (database
 * info and `_security`, `_all_dbs`, `_db_updates`), as the remote's
 * credentials. The data itself is copied by the replication engine through
 * `HttpEndpoint`; this client only asks small questions, over one small pool
 * per remote shared by every follower of that remote.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { DoppelError, ErrorKind } from '../../errors.js';
import { DATABASE_COPY_CONTENT_TYPE } from '../docs/database-copy-wire.js';
import { readCapped } from '../remotes/capped-body.js';
import type { Remote } from '../remotes/remote-registry.js';

export interface LeaderDbInfo {
  readonly db_name: string;
  readonly update_seq: number;
  readonly doc_count: number;
  readonly doc_del_count: number;
  readonly active_bytes: number;
}

export interface DbUpdate {
  readonly seq: number;
  readonly db_name: string;
  readonly type: string;
}

const REQUEST_TIMEOUT_MS = 15_000;
/** The leader's replies read whole are small (info, security, status): this is far above them. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
const CONNECTIONS_PER_REMOTE = 4;

function statusError(status: number, what: string, reason: string): DoppelError {
  const detail = `${what}: HTTP ${status}${reason === '' ? '' : ` (${reason})`}`;
  if (status === 401) return new DoppelError(ErrorKind.Unauthorized, detail);
  if (status === 403) return new DoppelError(ErrorKind.Forbidden, detail);
  if (status === 404) return new DoppelError(ErrorKind.NotFound, detail);
  if (status >= 400 && status < 500 && status !== 408 && status !== 429)
    return new DoppelError(ErrorKind.BadRequest, detail);
  return new DoppelError(ErrorKind.Unavailable, detail);
}

/** The JSON of a reply's text, or null when it is empty or not JSON. */
function parseJson(text: string): unknown {
  try {
    return text === '' ? null : (JSON.parse(text) as unknown);
  } catch {
    return null;
  }
}

/** An error reply's `reason`, or '' when it has none. */
function reasonOf(body: unknown): string {
  const reason =
    typeof body === 'object' && body !== null ? (body as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : '';
}

function numberField(body: Record<string, unknown>, name: string): number {
  const v = body[name];
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number.parseInt(v, 10) || 0;
  return 0;
}

export class LeaderClient {
  readonly remote: Remote;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;

  constructor(remote: Remote) {
    this.remote = remote;
    this.#agent = new Agent({ connections: CONNECTIONS_PER_REMOTE, keepAliveTimeout: 30_000 });
    this.#headers = { accept: 'application/json' };
    if (remote.username !== undefined)
      this.#headers['authorization'] =
        `Basic ${Buffer.from(`${remote.username}:${remote.password ?? ''}`).toString('base64')}`;
    else if (remote.token !== undefined) this.#headers['authorization'] = `Bearer ${remote.token}`;
  }

  /** Sends a GET of `path` under the remote's URL; an unreachable leader is `unavailable`. */
  async #send(
    path: string,
    what: string,
    options: { timeoutMs?: number; signal?: AbortSignal; headers?: Readonly<Record<string, string>> },
  ): Promise<Dispatcher.ResponseData> {
    const timeout = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    try {
      return await request(`${this.remote.url}${path}`, {
        method: 'GET',
        headers: options.headers === undefined ? this.#headers : { ...this.#headers, ...options.headers },
        dispatcher: this.#agent,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (err) {
      throw new DoppelError(
        ErrorKind.Unavailable,
        `${what}: leader ${this.remote.name} unreachable (${err instanceof Error ? err.message : String(err)})`,
        { cause: err },
      );
    }
  }

  /** A GET of `path` under the remote's URL; statuses in `accept` come back as `null`. */
  async #get(
    path: string,
    what: string,
    options: { accept?: readonly number[]; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const reply = await this.#send(path, what, options);
    let text: string;
    try {
      const bytes = await readCapped(reply.body, MAX_REPLY_BYTES);
      if (bytes === null)
        throw new DoppelError(
          ErrorKind.TooLarge,
          `${what}: the leader's reply is over ${MAX_REPLY_BYTES} bytes`,
        );
      text = bytes.toString('utf8');
    } catch (err) {
      if (err instanceof DoppelError) throw err;
      throw new DoppelError(ErrorKind.Unavailable, `${what}: reply cut off`, { cause: err });
    }
    if (options.accept?.includes(reply.statusCode) === true) return null;
    const body = parseJson(text);
    if (reply.statusCode >= 300) throw statusError(reply.statusCode, what, reasonOf(body));
    if (typeof body !== 'object' || body === null)
      throw new DoppelError(ErrorKind.Unavailable, `${what}: the leader's reply is not JSON`);
    return body;
  }

  /** The leader database's info, or null when it does not exist. */
  async dbInfo(db: string, signal?: AbortSignal): Promise<LeaderDbInfo | null> {
    const body = await this.#get(`/${encodeURIComponent(db)}`, `GET ${db} on ${this.remote.name}`, {
      accept: [404],
      ...(signal === undefined ? {} : { signal }),
    });
    if (body === null) return null;
    const b = body as Record<string, unknown>;
    const sizes = (typeof b['sizes'] === 'object' && b['sizes'] !== null ? b['sizes'] : {}) as Record<
      string,
      unknown
    >;
    return {
      db_name: typeof b['db_name'] === 'string' ? b['db_name'] : db,
      update_seq: numberField(b, 'update_seq'),
      doc_count: numberField(b, 'doc_count'),
      doc_del_count: numberField(b, 'doc_del_count'),
      active_bytes: numberField(sizes, 'active') || numberField(sizes, 'external'),
    };
  }

  /**
   * The leader database's copy (`GET /{db}/_doppel_copy`) after `afterId`: the
   * reply's body, or null when the leader cannot make one (not a Doppel node,
   * or an older one) and the bootstrap must replicate instead.
   */
  async copy(
    db: string,
    afterId: string | undefined,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Buffer> | null> {
    const what = `GET ${db}/_doppel_copy on ${this.remote.name}`;
    const query = afterId === undefined ? '' : `?after=${encodeURIComponent(afterId)}`;
    const reply = await this.#send(`/${encodeURIComponent(db)}/_doppel_copy${query}`, what, {
      headers,
      signal,
    });
    const type = reply.headers['content-type'];
    if (reply.statusCode === 200 && type === DATABASE_COPY_CONTENT_TYPE) return reply.body;
    const text = (await readCapped(reply.body, MAX_REPLY_BYTES).catch(() => null))?.toString('utf8') ?? '';
    if (reply.statusCode === 401 || reply.statusCode === 403 || reply.statusCode >= 500)
      throw statusError(reply.statusCode, what, reasonOf(parseJson(text)));
    return null;
  }

  /** The leader database's security object. */
  async security(db: string): Promise<Record<string, unknown>> {
    return (await this.#get(
      `/${encodeURIComponent(db)}/_security`,
      `GET ${db}/_security on ${this.remote.name}`,
    )) as Record<string, unknown>;
  }

  async allDbs(signal?: AbortSignal): Promise<string[]> {
    const body = await this.#get('/_all_dbs', `GET /_all_dbs on ${this.remote.name}`, {
      ...(signal === undefined ? {} : { signal }),
    });
    return Array.isArray(body) ? body.filter((n): n is string => typeof n === 'string') : [];
  }

  /** `_db_updates` after `since`, waiting up to `timeoutMs` for the first one (longpoll). */
  async dbUpdates(
    since: number,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<{ results: DbUpdate[]; last_seq: number }> {
    const body = (await this.#get(
      `/_db_updates?feed=longpoll&since=${since}&timeout=${timeoutMs}`,
      `GET /_db_updates on ${this.remote.name}`,
      { timeoutMs: timeoutMs + REQUEST_TIMEOUT_MS, signal },
    )) as Record<string, unknown>;
    const rows = Array.isArray(body['results']) ? (body['results'] as unknown[]) : [];
    const results: DbUpdate[] = [];
    for (const r of rows) {
      if (typeof r !== 'object' || r === null) continue;
      const row = r as Record<string, unknown>;
      if (typeof row['db_name'] === 'string')
        results.push({
          seq: numberField(row, 'seq'),
          db_name: row['db_name'],
          type: typeof row['type'] === 'string' ? row['type'] : 'updated',
        });
    }
    return { results, last_seq: numberField(body, 'last_seq') };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
