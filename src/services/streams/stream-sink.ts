/**
 * The far end of a stream: one HTTP write per batch, and the dry-run write that
 * validates a stream. Sinks: InfluxDB 2.x and Doppel (`/api/v2/write`), InfluxDB 1.x
 * (`/write?db=&rp=`, remote bucket name `db/rp`), and CouchDB-compatible `_bulk_docs`
 * for document streams. With `auto`, an `influxdb` remote is asked `/ping` once and
 * its `X-Influxdb-Version` decides between 1.x and 2.x.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { formatBasicAuth } from '../auth/basic-auth.js';
import { readCapped } from '../remotes/capped-body.js';
import type { Remote } from '../remotes/remote-registry.js';
import type { StreamConfig } from './stream-config.js';

export type ResolvedSink = 'influxdb2' | 'influxdb1' | 'bulk_docs';

export interface SendResult {
  /** The HTTP status, 0 when no response came back. */
  readonly code: number;
  readonly ok: boolean;
  /** Why it failed (the remote's message when it gave one). */
  readonly message: string | null;
  /** Seconds asked by a 429's `Retry-After`. */
  readonly retryAfterS?: number;
}

const MESSAGE_LIMIT = 512;
/** A remote's reply is only ever a status and an error message: more is not read. */
const MAX_REPLY_BYTES = 1024 * 1024;

export class StreamSink {
  readonly #agent: Dispatcher;
  readonly #timeoutMs: number;
  /** Aborts requests in flight when the stream stops. */
  readonly #abort = new AbortController();
  #detected: ResolvedSink | undefined;

  constructor(allowInsecureTls: boolean, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#agent = new Agent({
      connections: 2,
      connectTimeout: Math.min(timeoutMs, 30_000),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { rejectUnauthorized: !allowInsecureTls },
    });
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#agent.destroy();
  }

  /** Which protocol a stream speaks to its remote. */
  async resolve(config: StreamConfig, remote: Remote): Promise<ResolvedSink> {
    if (config.sink !== 'auto') return config.sink;
    if (config.sourceKind === 'database') return 'bulk_docs';
    if (remote.kind === 'couchdb') return 'bulk_docs';
    if (remote.kind !== 'influxdb') return 'influxdb2';
    if (this.#detected !== undefined) return this.#detected;
    const { statusCode, headers, body } = await request(`${remote.url}/ping`, {
      dispatcher: this.#agent,
      signal: this.#abort.signal,
      method: 'GET',
      headersTimeout: this.#timeoutMs,
    });
    await body.dump();
    const version = headers['x-influxdb-version'];
    const text = Array.isArray(version) ? version[0] : version;
    if (statusCode >= 400 || text === undefined) throw new Error(`GET /ping answered ${statusCode}`);
    this.#detected = /^v?1\./.test(text) ? 'influxdb1' : 'influxdb2';
    return this.#detected;
  }

  /** Sends one batch (a gzipped line protocol body, or `_bulk_docs` JSON). */
  async send(config: StreamConfig, remote: Remote, payload: Buffer, gzipped: boolean): Promise<SendResult> {
    let sink: ResolvedSink;
    try {
      sink = await this.resolve(config, remote);
    } catch (err) {
      return { code: 0, ok: false, message: errorText(err) };
    }
    return this.#post(sink, config, remote, payload, gzipped);
  }

  /** InfluxDB's validation: an empty write must answer 204 (for `_bulk_docs`: the database must exist). */
  async validate(config: StreamConfig, remote: Remote): Promise<SendResult> {
    let sink: ResolvedSink;
    try {
      sink = await this.resolve(config, remote);
    } catch (err) {
      return { code: 0, ok: false, message: errorText(err) };
    }
    if (sink === 'bulk_docs') {
      try {
        const res = await request(`${remote.url}/${encodeURIComponent(config.remoteBucketName)}`, {
          dispatcher: this.#agent,
          signal: this.#abort.signal,
          method: 'GET',
          headers: authHeaders(remote, sink),
        });
        const text = await replyText(res.body);
        return res.statusCode === 200
          ? { code: 200, ok: true, message: null }
          : { code: res.statusCode, ok: false, message: failureText(res.statusCode, text) };
      } catch (err) {
        return { code: 0, ok: false, message: errorText(err) };
      }
    }
    return this.#post(sink, config, remote, Buffer.alloc(0), false);
  }

  async #post(
    sink: ResolvedSink,
    config: StreamConfig,
    remote: Remote,
    payload: Buffer,
    gzipped: boolean,
  ): Promise<SendResult> {
    const headers: Record<string, string> = {
      ...authHeaders(remote, sink),
      'content-type': sink === 'bulk_docs' ? 'application/json' : 'text/plain; charset=utf-8',
    };
    if (gzipped) headers['content-encoding'] = 'gzip';
    try {
      const res = await request(writeUrl(sink, config, remote), {
        dispatcher: this.#agent,
        signal: this.#abort.signal,
        method: 'POST',
        headers,
        body: payload,
      });
      const text = await replyText(res.body);
      const success =
        sink === 'bulk_docs' ? res.statusCode === 201 || res.statusCode === 200 : res.statusCode === 204;
      if (success) return { code: res.statusCode, ok: true, message: null };
      const result: SendResult = {
        code: res.statusCode,
        ok: false,
        message: failureText(res.statusCode, text),
      };
      const retryAfter = res.headers['retry-after'];
      const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      return res.statusCode === 429 && Number.isFinite(seconds) && seconds >= 0
        ? { ...result, retryAfterS: seconds }
        : result;
    } catch (err) {
      return { code: 0, ok: false, message: errorText(err) };
    }
  }
}

/**
 * The remote's credential as its protocol expects it. InfluxDB 1.x before 1.8 knows no
 * `Token` scheme, so a `user:password` token goes to 1.x as basic auth.
 */
function authHeaders(remote: Remote, sink: ResolvedSink): Record<string, string> {
  const token = remote.token;
  if (token !== undefined && sink === 'influxdb1' && token.includes(':')) {
    const colon = token.indexOf(':');
    return { authorization: formatBasicAuth(token.slice(0, colon), token.slice(colon + 1)) };
  }
  if (token !== undefined) return { authorization: `Token ${token}` };
  if (remote.username !== undefined)
    return { authorization: formatBasicAuth(remote.username, remote.password ?? '') };
  return {};
}

export function writeUrl(sink: ResolvedSink, config: StreamConfig, remote: Remote): string {
  const target = config.remoteBucketName !== '' ? config.remoteBucketName : (config.remoteBucketID ?? '');
  if (sink === 'bulk_docs') return `${remote.url}/${encodeURIComponent(target)}/_bulk_docs`;
  const query = new URLSearchParams();
  if (sink === 'influxdb1') {
    const slash = target.indexOf('/');
    query.set('db', slash < 0 ? target : target.slice(0, slash));
    if (slash >= 0 && slash < target.length - 1) query.set('rp', target.slice(slash + 1));
    query.set('precision', 'n');
    return `${remote.url}/write?${query.toString()}`;
  }
  if (remote.remote_org_id !== undefined) query.set('orgID', remote.remote_org_id);
  query.set('bucket', target);
  query.set('precision', 'ns');
  return `${remote.url}/api/v2/write?${query.toString()}`;
}

/** A credential the remote refused reads as such, whatever the remote's own wording. */
function failureText(status: number, body: string): string {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const inner = parsed['message'] ?? parsed['error'] ?? parsed['reason'];
    if (typeof inner === 'string') message = inner;
    if (typeof parsed['reason'] === 'string' && typeof parsed['error'] === 'string')
      message = `${parsed['error']}: ${parsed['reason']}`;
  } catch {
    // not JSON: keep the text
  }
  if (message.length > MESSAGE_LIMIT) message = `${message.slice(0, MESSAGE_LIMIT)}…`;
  const detail = message === '' ? '' : `: ${message}`;
  if (status === 401 || status === 403) return `the remote rejected the credential (HTTP ${status})${detail}`;
  return `HTTP ${status}${detail}`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** The reply as text, up to `MAX_REPLY_BYTES` (a longer one reads as empty: only its status counts). */
async function replyText(body: Dispatcher.ResponseData['body']): Promise<string> {
  return (await readCapped(body, MAX_REPLY_BYTES))?.toString('utf8') ?? '';
}
