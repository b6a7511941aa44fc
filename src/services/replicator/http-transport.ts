/**
 * The HTTP client under `HttpEndpoint`: one undici pool per endpoint (or one
 * proxy agent), sized by `http_connections`, with CouchDB's replicator
 * semantics for failures:
 *
 * - network errors, timeouts, 5xx and 408 are retried `retries_per_request`
 *   times, waiting 250 ms and doubling up to 5 minutes;
 * - 429 slows the whole endpoint down: `Retry-After` (or a doubling interval)
 *   holds back every request, and each success eases the interval off again;
 *   a request gives up after 5 minutes of being throttled;
 * - `connection_timeout` bounds connecting, waiting for the headers, and each
 *   silence while a body is read.
 *
 * Replies are read whole and parsed as JSON (gzip/deflate accepted), except
 * for `stream()`, which hands the raw (decompressed) body to the caller.
 */
import { constants as bufferConstants, isAscii } from 'node:buffer';
import { setMaxListeners } from 'node:events';
import { pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, createInflate, gunzip, inflate } from 'node:zlib';
import { Pool, ProxyAgent, type Dispatcher } from 'undici';
import { badRequest, DoppelError, ErrorKind } from '../../errors.js';
import { linkedSignal } from '../linked-signal.js';
import { readCapped } from '../remotes/capped-body.js';

export const DEFAULT_HTTP_CONNECTIONS = 20;
export const DEFAULT_CONNECTION_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRIES_PER_REQUEST = 5;
const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** How long one request may be held back by 429s before the job is told the peer is unavailable. */
const MAX_THROTTLED_MS = 5 * 60_000;
/** Below this, the 429 interval is dropped altogether. */
const MIN_THROTTLE_MS = 20;
/** How long an idle pooled connection stays open (servers usually allow more). */
const KEEP_ALIVE_MS = 30_000;

/** The longest reply read whole (decompressed too): the most a JavaScript string can hold. */
const MAX_RESPONSE_BYTES = bufferConstants.MAX_STRING_LENGTH;
const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export interface HttpTransportOptions {
  /** Connections to the peer at most (CouchDB `http_connections`, default 20). */
  readonly httpConnections?: number;
  /** ms for connecting, for the headers, and for each silence within a body (default 30000). */
  readonly connectionTimeout?: number;
  /** Retries of network errors, 5xx and 408 per request (default 5). */
  readonly retriesPerRequest?: number;
  /** An `http://` or `https://` proxy URL (credentials in its userinfo are sent to the proxy). */
  readonly proxy?: string;
  /** Aborting it stops retries and fails open requests. */
  readonly signal?: AbortSignal;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT';

export interface HttpRequest {
  readonly method: HttpMethod;
  /** The path under the endpoint's base path, with its query string ('' is the database itself). */
  readonly path: string;
  /** JSON text (or bytes) sent with `content-type: application/json` unless `contentType` says otherwise. */
  readonly body?: string | Buffer;
  readonly contentType?: string;
  /** Statuses handed back instead of thrown. */
  readonly accept?: readonly number[];
}

export interface HttpReply {
  readonly status: number;
  /** The parsed JSON body; null when empty or not JSON. */
  readonly body: unknown;
}

export interface StreamRequest {
  readonly method: HttpMethod;
  readonly path: string;
  readonly body?: string;
  /** Aborts the request and its body. */
  readonly signal: AbortSignal;
  /**
   * Longest silence (ms) while the body is read; 0 for none (the caller
   * watches itself). Time the caller spends not reading does not count.
   */
  readonly bodyTimeout: number;
}

/** A 2xx reply's body as it arrives (decompressed), or a failed reply's body read whole. */
export type StreamReply =
  | {
      readonly ok: true;
      readonly status: number;
      readonly contentType: string;
      readonly body: AsyncIterable<Buffer>;
    }
  | { readonly ok: false; readonly status: number; readonly errorBody: unknown };

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
  if (status === 415) return new DoppelError(ErrorKind.UnsupportedMediaType, reason, opts);
  if (status === 400) return new DoppelError(ErrorKind.BadRequest, reason, opts);
  if (status >= 500 || status === 408 || status === 429)
    return new DoppelError(ErrorKind.Unavailable, reason, opts);
  return new DoppelError(ErrorKind.Internal, reason, opts);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v)?.trim().toLowerCase() ?? '';
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/**
 * A whole body as text; ASCII (the usual JSON) is decoded as latin1, which skips UTF-8
 * validation. Bodies larger than a string can hold are refused, compressed or not: a peer
 * must not be able to exhaust this node's memory.
 */
async function readAll(body: Dispatcher.ResponseData['body'], encoding: string): Promise<string> {
  let bytes = await readCapped(body, MAX_RESPONSE_BYTES);
  if (bytes === null) throw responseTooLarge();
  try {
    if (encoding === 'gzip' || encoding === 'x-gzip')
      bytes = await gunzipAsync(bytes, { maxOutputLength: MAX_RESPONSE_BYTES });
    else if (encoding === 'deflate')
      bytes = await inflateAsync(bytes, { maxOutputLength: MAX_RESPONSE_BYTES });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw responseTooLarge();
    throw err;
  }
  return bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
}

const responseTooLarge = (): DoppelError =>
  new DoppelError(ErrorKind.TooLarge, `the peer's response is larger than ${MAX_RESPONSE_BYTES} bytes`);

/** A streamed body, decompressed; a failure of the body (reset, timeout) fails the result too. */
function decoded(body: Readable, encoding: string): Readable {
  const ignore = (): void => undefined;
  if (encoding === 'gzip' || encoding === 'x-gzip') return pipeline(body, createGunzip(), ignore);
  if (encoding === 'deflate') return pipeline(body, createInflate(), ignore);
  return body;
}

/** Validates a proxy URL: http(s) only (SOCKS is refused with a clear error). */
export function checkProxyUrl(proxy: string): URL {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    throw badRequest('invalid proxy url');
  }
  if (url.protocol.startsWith('socks'))
    throw badRequest('socks proxies are not supported; use an http:// or https:// proxy');
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badRequest(`unsupported proxy protocol ${url.protocol} (use http:// or https://)`);
  return url;
}

export class HttpTransport {
  /** `scheme://host:port` of the peer. */
  readonly origin: string;
  readonly #basePath: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #dispatcher: Dispatcher;
  readonly #timeout: number;
  readonly #retries: number;
  /** Aborted by the caller's signal or by close(): one listener on the caller's signal for all requests. */
  readonly #stop = new AbortController();
  readonly #unlink: () => void;
  /** 429 handling: the gap kept between requests, and the earliest time the next one may go. */
  #throttleMs = 0;
  #nextSlotAt = 0;

  constructor(base: URL, headers: Readonly<Record<string, string>>, options: HttpTransportOptions = {}) {
    this.origin = base.origin;
    this.#basePath = base.pathname.replace(/\/+$/, '');
    this.#headers = { accept: 'application/json', 'accept-encoding': 'gzip, deflate', ...headers };
    this.#timeout = options.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT_MS;
    this.#retries = Math.max(0, options.retriesPerRequest ?? DEFAULT_RETRIES_PER_REQUEST);
    const connections = Math.max(1, options.httpConnections ?? DEFAULT_HTTP_CONNECTIONS);
    const poolOptions = {
      connections,
      connect: { timeout: this.#timeout },
      headersTimeout: this.#timeout,
      bodyTimeout: this.#timeout,
      keepAliveTimeout: KEEP_ALIVE_MS,
      pipelining: 1,
    };
    if (options.proxy !== undefined) {
      const proxy = checkProxyUrl(options.proxy);
      // A plain-http peer is asked for through the proxy (absolute URIs); TLS needs a CONNECT tunnel.
      this.#dispatcher = new ProxyAgent({
        uri: proxy.href,
        proxyTunnel: base.protocol === 'https:',
        ...poolOptions,
      });
    } else {
      this.#dispatcher = new Pool(this.origin, poolOptions);
    }
    // Every open request listens on #stop; a pool of 20 plus streams is more than the default of 10.
    setMaxListeners(0, this.#stop.signal);
    const outer = options.signal;
    if (outer?.aborted === true) this.#stop.abort();
    const onAbort = (): void => this.#stop.abort();
    outer?.addEventListener('abort', onAbort, { once: true });
    this.#unlink = () => outer?.removeEventListener('abort', onAbort);
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  get connectionTimeout(): number {
    return this.#timeout;
  }

  get retriesPerRequest(): number {
    return this.#retries;
  }

  /** One JSON request with retries (network, timeouts, 5xx, 408) and throttling (429). */
  async request(req: HttpRequest, what = `${req.method} ${req.path}`): Promise<HttpReply> {
    let delay = FIRST_RETRY_DELAY_MS;
    let throttledFor = 0;
    const headers: Record<string, string> =
      req.body === undefined
        ? { ...this.#headers }
        : { ...this.#headers, 'content-type': req.contentType ?? 'application/json' };
    for (let attempt = 0; ;) {
      throttledFor += await this.#waitForSlot();
      let status: number;
      let body: unknown;
      let retryAfter: number | undefined;
      try {
        const res = await this.#dispatcher.request({
          origin: this.origin,
          path: `${this.#basePath}${req.path}`,
          method: req.method,
          headers,
          body: req.body ?? null,
          signal: this.#stop.signal,
          // Replication writes are idempotent (new_edits=false, checkpoint revs): safe to pipeline/retry.
          idempotent: true,
        });
        status = res.statusCode;
        retryAfter = status === 429 ? retryAfterMs(res.headers['retry-after']) : undefined;
        if (req.method === 'HEAD') {
          await res.body.dump();
          body = null;
        } else if (headerValue(res.headers, 'content-type').startsWith('multipart/')) {
          // We always ask for JSON; a peer that answers multipart anyway must not look like "no docs".
          await res.body.dump();
          throw new DoppelError(
            ErrorKind.UnsupportedMediaType,
            `${what}: the peer answered ${headerValue(res.headers, 'content-type').split(';')[0] ?? ''}; only JSON replies are supported`,
          );
        } else {
          body = parseJson(await readAll(res.body, headerValue(res.headers, 'content-encoding')));
        }
      } catch (err) {
        if (err instanceof DoppelError) throw err;
        if (this.#stop.signal.aborted)
          throw new DoppelError(ErrorKind.Unavailable, 'replication stopped', { cause: err });
        if (attempt >= this.#retries)
          throw new DoppelError(ErrorKind.Unavailable, `${what} failed: ${describe(err)}`, { cause: err });
        attempt++;
        await sleep(delay, this.#stop.signal);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
        continue;
      }
      if (status === 429) {
        if (throttledFor >= MAX_THROTTLED_MS) throw httpError(status, body, what);
        this.#throttle(retryAfter);
        continue;
      }
      this.#ease();
      if ((status >= 200 && status < 300) || req.accept?.includes(status) === true) return { status, body };
      if ((status >= 500 || status === 408) && attempt < this.#retries) {
        attempt++;
        await sleep(delay, this.#stop.signal);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
        if (this.#stop.signal.aborted) throw new DoppelError(ErrorKind.Unavailable, 'replication stopped');
        continue;
      }
      throw httpError(status, body, what);
    }
  }

  /** A request whose body is read as it arrives (`_changes` feeds). Not retried: the caller resumes. */
  async stream(req: StreamRequest): Promise<StreamReply> {
    await this.#waitForSlot();
    const { signal, unlink } = linkedSignal(req.signal, this.#stop.signal);
    const headers: Record<string, string> =
      req.body === undefined
        ? { ...this.#headers }
        : { ...this.#headers, 'content-type': 'application/json' };
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#dispatcher.request({
        origin: this.origin,
        path: `${this.#basePath}${req.path}`,
        method: req.method,
        headers,
        body: req.body ?? null,
        signal,
        bodyTimeout: req.bodyTimeout,
        idempotent: true,
      });
    } catch (err) {
      unlink();
      throw err;
    }
    // Stopping must also end the body's reading: linked until the body is done with.
    res.body.once('close', unlink);
    const encoding = headerValue(res.headers, 'content-encoding');
    if (res.statusCode < 200 || res.statusCode >= 300) {
      if (res.statusCode === 429) this.#throttle(retryAfterMs(res.headers['retry-after']));
      const errorBody = parseJson(await readAll(res.body, encoding));
      return { ok: false, status: res.statusCode, errorBody };
    }
    this.#ease();
    return {
      ok: true,
      status: res.statusCode,
      contentType: headerValue(res.headers, 'content-type'),
      body: decoded(res.body, encoding),
    };
  }

  /** Waits for the 429 rate limit, if one is in force; returns how long it waited. */
  async #waitForSlot(): Promise<number> {
    const now = Date.now();
    if (this.#throttleMs === 0 && this.#nextSlotAt <= now) return 0;
    const at = Math.max(now, this.#nextSlotAt);
    this.#nextSlotAt = at + this.#throttleMs;
    await sleep(at - now, this.#stop.signal);
    return at - now;
  }

  /** A 429: widen the gap between requests; a `Retry-After` also holds every request back until then. */
  #throttle(retryAfter: number | undefined): void {
    this.#throttleMs = Math.min(
      MAX_RETRY_DELAY_MS,
      Math.max(FIRST_RETRY_DELAY_MS, this.#throttleMs * 2, Math.min(retryAfter ?? 0, MAX_RETRY_DELAY_MS)),
    );
    const until = Date.now() + Math.min(retryAfter ?? this.#throttleMs, MAX_RETRY_DELAY_MS);
    this.#nextSlotAt = Math.max(this.#nextSlotAt, until);
  }

  /** A success: shrink the 429 gap (multiplicative decrease of the wait, as CouchDB's limiter does). */
  #ease(): void {
    if (this.#throttleMs === 0) return;
    this.#throttleMs = this.#throttleMs * 0.75 < MIN_THROTTLE_MS ? 0 : this.#throttleMs * 0.75;
  }

  /** Fails open requests and closes every pooled connection. */
  async close(): Promise<void> {
    this.#unlink();
    this.#stop.abort();
    await this.#dispatcher.destroy();
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}
