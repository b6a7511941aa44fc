/**
 * Named connections to other systems (DESIGN.md "Remote"): a URL and the
 * credentials to use there. Replicator jobs, followers and streams name a
 * remote instead of carrying credentials in their own documents. Secrets are
 * write-only: they are stored for use and never returned by `describe`/`list`.
 */
import type { Database } from 'lmdb';
import { badRequest, notFound } from '../../errors.js';
import type { Storage } from '../../storage/environment.js';

export const REMOTE_KINDS = ['doppel', 'couchdb', 'influxdb', 'redis'] as const;
export type RemoteKind = (typeof REMOTE_KINDS)[number];

/** What is stored (secrets included). */
export interface Remote {
  readonly name: string;
  readonly kind: RemoteKind;
  /** Base URL without credentials. */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly token?: string;
  readonly description?: string;
  /** InfluxDB remotes: the remote organization writes go to (`remoteOrgID`). */
  readonly remote_org_id?: string;
  /** InfluxDB's `allowInsecureTLS`: accept any certificate of the remote. */
  readonly allow_insecure_tls?: boolean;
  /** A free-form name shown by the InfluxDB API (its `name`); the registry name is its `id`. */
  readonly display_name?: string;
  /** ISO-8601. */
  readonly created_at: string;
  readonly updated_at: string;
}

/** What the API shows: no secret, only which kind of credential is set. */
export interface RemoteView {
  readonly name: string;
  readonly kind: RemoteKind;
  readonly url: string;
  readonly username?: string;
  readonly auth: 'basic' | 'token' | 'none';
  readonly description?: string;
  readonly remote_org_id?: string;
  readonly allow_insecure_tls?: boolean;
  readonly display_name?: string;
  readonly created_at: string;
  readonly updated_at: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const FIELDS = new Set([
  'url',
  'kind',
  'username',
  'password',
  'token',
  'description',
  'remote_org_id',
  'allow_insecure_tls',
  'display_name',
]);

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${field} must be a string`);
  return value;
}

export function validRemoteName(name: string): boolean {
  return NAME.test(name);
}

export class RemoteRegistry {
  readonly #storage: Storage;
  readonly #db: Database<Remote, string>;

  constructor(storage: Storage) {
    this.#storage = storage;
    this.#db = storage.structured<Remote, string>('remotes');
  }

  /** Creates or replaces `name`; the body is validated before anything is written. */
  async put(name: string, body: unknown): Promise<{ created: boolean; remote: RemoteView }> {
    if (!validRemoteName(name))
      throw badRequest('a remote name is 1-128 characters of letters, digits, "_", "." and "-"');
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('the remote must be a JSON object');
    const fields = body as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
    if (unknown.length > 0) throw badRequest(`unknown field: ${unknown.join(', ')}`);
    const kindValue = optionalString(fields, 'kind') ?? 'doppel';
    if (!(REMOTE_KINDS as readonly string[]).includes(kindValue))
      throw badRequest(`kind must be one of ${REMOTE_KINDS.join(', ')}`);
    const kind = kindValue as RemoteKind;
    const rawUrl = optionalString(fields, 'url');
    if (rawUrl === undefined) throw badRequest('url is required');
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw badRequest('url is not a valid URL');
    }
    const schemes = kind === 'redis' ? ['redis:', 'rediss:'] : ['http:', 'https:'];
    if (!schemes.includes(url.protocol))
      throw badRequest(`a ${kind} remote needs a ${schemes.map((s) => s.slice(0, -1)).join(' or ')} url`);
    let username = optionalString(fields, 'username');
    let password = optionalString(fields, 'password');
    if (url.username !== '' || url.password !== '') {
      // Credentials in the URL are moved out of it, so the URL can be shown.
      if (username !== undefined || password !== undefined)
        throw badRequest('give credentials either in the url or as username/password, not both');
      username = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
      url.username = '';
      url.password = '';
    }
    const token = optionalString(fields, 'token');
    if (token !== undefined && (username !== undefined || password !== undefined))
      throw badRequest('a remote authenticates with username/password or with a token, not both');
    if (password !== undefined && username === undefined) throw badRequest('password needs a username');
    const description = optionalString(fields, 'description');
    const remoteOrgId = optionalString(fields, 'remote_org_id');
    const displayName = optionalString(fields, 'display_name');
    const insecure = fields['allow_insecure_tls'];
    if (insecure !== undefined && insecure !== null && typeof insecure !== 'boolean')
      throw badRequest('allow_insecure_tls must be a boolean');
    const now = new Date().toISOString();
    const previous = this.#db.get(name);
    const remote: Remote = {
      name,
      kind,
      url: url.toString().replace(/\/+$/, ''),
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(token === undefined ? {} : { token }),
      ...(description === undefined ? {} : { description }),
      ...(remoteOrgId === undefined ? {} : { remote_org_id: remoteOrgId }),
      ...(insecure === true ? { allow_insecure_tls: true } : {}),
      ...(displayName === undefined ? {} : { display_name: displayName }),
      created_at: previous?.created_at ?? now,
      updated_at: now,
    };
    await this.#storage.write(() => this.#db.putSync(name, remote));
    return { created: previous === undefined, remote: describeRemote(remote) };
  }

  /** The stored remote with its secrets, for the services that connect with it. */
  get(name: string): Remote | undefined {
    return this.#db.get(name);
  }

  /** Like `get`, but a missing remote is a 404 naming it. */
  require(name: string): Remote {
    const remote = this.#db.get(name);
    if (remote === undefined) throw notFound(`no remote named "${name}"`);
    return remote;
  }

  list(): RemoteView[] {
    const out: RemoteView[] = [];
    for (const { value } of this.#db.getRange()) out.push(describeRemote(value));
    return out;
  }

  async delete(name: string): Promise<void> {
    this.require(name);
    await this.#storage.write(() => this.#db.removeSync(name));
  }
}

export function describeRemote(remote: Remote): RemoteView {
  return {
    name: remote.name,
    kind: remote.kind,
    url: remote.url,
    ...(remote.username === undefined ? {} : { username: remote.username }),
    auth: remote.token !== undefined ? 'token' : remote.username !== undefined ? 'basic' : 'none',
    ...(remote.description === undefined ? {} : { description: remote.description }),
    ...(remote.remote_org_id === undefined ? {} : { remote_org_id: remote.remote_org_id }),
    ...(remote.allow_insecure_tls === undefined ? {} : { allow_insecure_tls: remote.allow_insecure_tls }),
    ...(remote.display_name === undefined ? {} : { display_name: remote.display_name }),
    created_at: remote.created_at,
    updated_at: remote.updated_at,
  };
}
