/**
 * A replication as written in a `_replicator` document or a `POST /_replicate`
 * body (reference §2.1), validated into a `ReplicationSpec`. Defaults are
 * CouchDB's. Unknown fields are ignored, as CouchDB does.
 *
 * Endpoints: an http(s) URL; `{url, headers, auth}` (`auth.basic` or
 * `auth.bearer`); `{remote, db}` or the string `remote/db` naming a remote
 * registered with `PUT /_doppel/remotes/{name}` (the remote's URL, plus the
 * database when given); otherwise the name of a database on this node.
 */
import type { ChangesFilterOptions, Seq } from '../../engines/replication/endpoint.js';
import { badRequest } from '../../errors.js';
import type { UserContext } from '../auth/user-context.js';
import type { RemoteRegistry } from '../remotes/remote-registry.js';

export type EndpointRef =
  | { readonly kind: 'local'; readonly db: string }
  | {
      readonly kind: 'http';
      /** Database URL without credentials. */
      readonly url: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly basic?: { readonly username: string; readonly password: string };
      readonly bearer?: string;
      /** Set when the endpoint came from a registered remote (only admins may use those). */
      readonly remote?: string;
    };

/** Per-job tuning, CouchDB's names in camelCase. */
export interface JobTuning {
  readonly workerProcesses: number;
  readonly workerBatchSize: number;
  readonly httpConnections: number;
  readonly connectionTimeout: number;
  readonly retriesPerRequest: number;
  readonly checkpointInterval: number;
  readonly useCheckpoints: boolean;
}

export interface ReplicationSpec {
  readonly source: EndpointRef;
  readonly target: EndpointRef;
  readonly continuous: boolean;
  readonly createTarget: boolean;
  readonly filter: ChangesFilterOptions;
  readonly winningRevsOnly: boolean;
  readonly sinceSeq?: Seq;
  readonly tuning: JobTuning;
  readonly sourceProxy?: string;
  readonly targetProxy?: string;
  /** Whose rights the job has on local endpoints; from `user_ctx` or the caller. */
  readonly userCtx: UserContext;
}

/** CouchDB's `[replicator]` defaults; the node's config may change them. */
export const DEFAULT_TUNING: JobTuning = {
  workerProcesses: 4,
  workerBatchSize: 500,
  httpConnections: 20,
  connectionTimeout: 30_000,
  retriesPerRequest: 5,
  checkpointInterval: 30_000,
  useCheckpoints: true,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function boolField(body: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = body[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw badRequest(`parameter \`${name}\` must be a boolean`);
  return v;
}

function intField(body: Record<string, unknown>, name: string, fallback: number, min: number): number {
  const v = body[name];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min)
    throw badRequest(`parameter \`${name}\` must be an integer >= ${min}`);
  return n;
}

function proxyField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest(`parameter \`${name}\` must be a string`);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw badRequest(`parameter \`${name}\` is not a valid URL`);
  }
  if (url.protocol.startsWith('socks')) throw badRequest(`socks proxies are not supported (${name})`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badRequest(`parameter \`${name}\` must be an http or https proxy URL`);
  return v;
}

function stringRecord(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw badRequest(`${what} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw badRequest(`${what} values must be strings`);
  }
  return out;
}

function httpRef(
  rawUrl: string,
  headers: Record<string, string>,
  auth: unknown,
  remote?: string,
): EndpointRef {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw badRequest(`invalid endpoint url`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badRequest(`endpoints must be http(s) URLs, database names or remotes`);
  let basic: { username: string; password: string } | undefined;
  let bearer: string | undefined;
  if (auth !== undefined && auth !== null) {
    if (!isRecord(auth)) throw badRequest('`auth` must be an object');
    const b = auth['basic'];
    if (b !== undefined) {
      if (!isRecord(b) || typeof b['username'] !== 'string' || typeof b['password'] !== 'string')
        throw badRequest('`auth.basic` needs string `username` and `password`');
      basic = { username: b['username'], password: b['password'] };
    }
    const t = auth['bearer'];
    if (t !== undefined) {
      if (typeof t !== 'string') throw badRequest('`auth.bearer` must be a string');
      bearer = t;
    }
  }
  if (basic === undefined && url.username !== '')
    basic = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  url.username = '';
  url.password = '';
  return {
    kind: 'http',
    url: url.toString(),
    headers,
    ...(basic === undefined ? {} : { basic }),
    ...(bearer === undefined ? {} : { bearer }),
    ...(remote === undefined ? {} : { remote }),
  };
}

function remoteRef(remotes: RemoteRegistry, name: string, db: string | undefined): EndpointRef {
  const remote = remotes.require(name);
  if (remote.kind === 'redis' || remote.kind === 'influxdb')
    throw badRequest(`remote "${name}" is a ${remote.kind} remote, not a document database`);
  const url = db === undefined ? remote.url : `${remote.url}/${encodeURIComponent(db)}`;
  const auth =
    remote.token !== undefined
      ? { bearer: remote.token }
      : remote.username !== undefined
        ? { basic: { username: remote.username, password: remote.password ?? '' } }
        : undefined;
  return httpRef(url, {}, auth, name);
}

export function parseEndpoint(value: unknown, which: string, remotes: RemoteRegistry): EndpointRef {
  if (typeof value === 'string') {
    if (/^https?:\/\//i.test(value)) return httpRef(value, {}, undefined);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value))
      throw badRequest(`\`${which}\`: only http(s) URLs, database names and remotes are supported`);
    if (value === '') throw badRequest(`\`${which}\` must not be empty`);
    const slash = value.indexOf('/');
    const head = slash < 0 ? value : value.slice(0, slash);
    if (remotes.get(head) !== undefined)
      return remoteRef(remotes, head, slash < 0 ? undefined : value.slice(slash + 1));
    return { kind: 'local', db: value };
  }
  if (isRecord(value)) {
    if (typeof value['remote'] === 'string') {
      const db = value['db'];
      if (db !== undefined && typeof db !== 'string') throw badRequest(`\`${which}.db\` must be a string`);
      return remoteRef(remotes, value['remote'], db);
    }
    if (typeof value['url'] !== 'string') throw badRequest(`\`${which}\` needs a \`url\``);
    const headers = stringRecord(value['headers'], `\`${which}.headers\``);
    if (/^https?:\/\//i.test(value['url'])) return httpRef(value['url'], headers, value['auth']);
    return { kind: 'local', db: value['url'] };
  }
  throw badRequest(`\`${which}\` must be a URL, an object with \`url\`, or a database name`);
}

function parseFilter(body: Record<string, unknown>): ChangesFilterOptions {
  const given = ['doc_ids', 'filter', 'selector'].filter((k) => body[k] !== undefined && body[k] !== null);
  const filterName = body['filter'];
  // `filter: "_doc_ids"` / `"_selector"` with their parameter is the same filter spelled twice.
  const spelledTwice =
    given.length === 2 &&
    ((filterName === '_doc_ids' && given.includes('doc_ids')) ||
      (filterName === '_selector' && given.includes('selector')));
  if (given.length > 1 && !spelledTwice)
    throw badRequest('`doc_ids`, `filter`, `selector` are mutually exclusive');
  if (body['doc_ids'] !== undefined && body['doc_ids'] !== null) {
    const ids = body['doc_ids'];
    if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string'))
      throw badRequest('`doc_ids` must be an array of strings');
    return { kind: 'doc_ids', docIds: [...new Set(ids)].sort() };
  }
  if (body['selector'] !== undefined && body['selector'] !== null) {
    if (!isRecord(body['selector'])) throw badRequest('`selector` must be a JSON object');
    return { kind: 'selector', selector: body['selector'] };
  }
  if (filterName !== undefined && filterName !== null) {
    if (typeof filterName !== 'string' || filterName === '') throw badRequest('`filter` must be a string');
    if (!filterName.startsWith('_') && !/^[^/]+\/[^/]+$/.test(filterName))
      throw badRequest('`filter` must be of the form `ddoc/name`');
    return {
      kind: 'js',
      name: filterName,
      queryParams: stringRecord(body['query_params'], '`query_params`'),
    };
  }
  return { kind: 'none' };
}

function parseUserCtx(value: unknown): UserContext | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw badRequest('`user_ctx` must be an object');
  const name = value['name'];
  if (name !== undefined && name !== null && typeof name !== 'string')
    throw badRequest('`user_ctx.name` must be a string');
  const roles = value['roles'] ?? [];
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string'))
    throw badRequest('`user_ctx.roles` must be an array of strings');
  return { name: typeof name === 'string' ? name : null, roles: [...roles] };
}

export interface ParseOptions {
  readonly remotes: RemoteRegistry;
  readonly defaults: JobTuning;
  /** Who the job runs as when the body has no `user_ctx`. */
  readonly defaultUser: UserContext;
}

/** Validates a replication body; every mistake is a 400 with a reason naming the field. */
export function parseReplicationSpec(body: unknown, options: ParseOptions): ReplicationSpec {
  if (!isRecord(body)) throw badRequest('the replication must be a JSON object');
  if (body['source'] === undefined || body['source'] === null) throw badRequest('`source` is missing');
  if (body['target'] === undefined || body['target'] === null) throw badRequest('`target` is missing');
  const source = parseEndpoint(body['source'], 'source', options.remotes);
  const target = parseEndpoint(body['target'], 'target', options.remotes);
  const proxy = proxyField(body, 'proxy');
  let sourceProxy = proxyField(body, 'source_proxy');
  let targetProxy = proxyField(body, 'target_proxy');
  if (proxy !== undefined) {
    if (sourceProxy !== undefined || targetProxy !== undefined)
      throw badRequest('`proxy` is mutually exclusive with `source_proxy` and `target_proxy`');
    sourceProxy = proxy;
    targetProxy = proxy;
  }
  const d = options.defaults;
  const tuning: JobTuning = {
    workerProcesses: intField(body, 'worker_processes', d.workerProcesses, 1),
    workerBatchSize: intField(body, 'worker_batch_size', d.workerBatchSize, 1),
    httpConnections: intField(body, 'http_connections', d.httpConnections, 1),
    connectionTimeout: intField(body, 'connection_timeout', d.connectionTimeout, 1),
    retriesPerRequest: intField(body, 'retries_per_request', d.retriesPerRequest, 0),
    checkpointInterval: intField(body, 'checkpoint_interval', d.checkpointInterval, 100),
    useCheckpoints: boolField(body, 'use_checkpoints', d.useCheckpoints),
  };
  const since = body['since_seq'];
  if (since !== undefined && since !== null && typeof since !== 'number' && typeof since !== 'string')
    throw badRequest('`since_seq` must be a number or a string');
  return {
    source,
    target,
    continuous: boolField(body, 'continuous', false),
    createTarget: boolField(body, 'create_target', false),
    filter: parseFilter(body),
    winningRevsOnly: boolField(body, 'winning_revs_only', false),
    ...(since === undefined || since === null ? {} : { sinceSeq: since }),
    tuning,
    ...(sourceProxy === undefined ? {} : { sourceProxy }),
    ...(targetProxy === undefined ? {} : { targetProxy }),
    userCtx: parseUserCtx(body['user_ctx']) ?? options.defaultUser,
  };
}

/** An endpoint as shown by `_scheduler` and `_active_tasks`: passwords are always `*****`. */
export function redactedEndpoint(ref: EndpointRef): string {
  if (ref.kind === 'local') return ref.db;
  if (ref.basic === undefined) return ref.url;
  const url = new URL(ref.url);
  url.username = encodeURIComponent(ref.basic.username);
  url.password = '*****';
  return url.toString();
}

/** Whether the spec would do the same work as another (used to ignore no-op document updates). */
export function sameSpec(a: ReplicationSpec, b: ReplicationSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
