import { randomBytes } from 'node:crypto';
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import type { DocumentStore } from '../../engines/docs/document-store.js';
import type { Journal } from '../../engines/journal/journal.js';
import { DoppelError, ErrorKind, unauthorized } from '../../errors.js';
import type { Storage } from '../../storage/environment.js';
import { ApiTokens } from './api-tokens.js';
import { parseBasicAuth } from './basic-auth.js';
import {
  hashPasswordAsync,
  UNMATCHABLE_HASH,
  VerifiedCredentialCache,
  verifyPasswordAsync,
  type PasswordHash,
} from './passwords.js';
import {
  makeSessionCookie,
  parseSessionCookie,
  SESSION_COOKIE_NAME,
  verifySessionCookie,
} from './session-cookie.js';
import {
  anonymousContext,
  serverAdminContext,
  USER_DOC_ID_PREFIX,
  type UserContext,
} from './user-context.js';

interface AdminRecord {
  readonly name: string;
  readonly hash: PasswordHash;
}

export interface Authenticated {
  readonly ctx: UserContext;
  /** How the caller proved who they are: CouchDB's handler names. */
  readonly method: 'default' | 'cookie' | null;
  /** A fresh session cookie value when the presented one is close to expiry. */
  readonly renewedCookie?: string;
}

interface Credentials {
  readonly stored: unknown;
  readonly salt: string;
  readonly roles: string[];
  readonly admin: boolean;
}

export const USERS_DB = '_users';

/**
 * Who is calling: the server admin (kept in node metadata, hash only) or a
 * user of the `_users` database, by basic auth or an `AuthSession` cookie.
 */
export class AuthService {
  readonly #meta: Database<unknown, string>;
  readonly #storage: Storage;
  readonly #journal: Journal;
  readonly #docs: DocumentStore;
  readonly #cache = new VerifiedCredentialCache();
  readonly #sessionTimeoutS: number;
  /** API tokens (`Authorization: Token …`); stored as hashes beside the admin record. */
  readonly tokens: ApiTokens;
  #secret = '';

  constructor(storage: Storage, journal: Journal, docs: DocumentStore, options: { sessionTimeoutS: number }) {
    this.#storage = storage;
    this.#journal = journal;
    this.#docs = docs;
    this.#meta = storage.structured<unknown, string>('auth');
    this.#sessionTimeoutS = options.sessionTimeoutS;
    this.tokens = new ApiTokens(storage, this.#meta);
  }

  /**
   * Ensures a server admin exists. With a name and password from the
   * environment, they become the admin (re-hashed only when changed); with
   * neither and no admin yet, a password is generated and returned so the
   * caller can show it once.
   */
  async bootstrap(
    envName: string | undefined,
    envPassword: string | undefined,
    log: Logger,
  ): Promise<{ name: string; generatedPassword?: string }> {
    let secret = this.#meta.get('cookieSecret') as string | undefined;
    if (secret === undefined) {
      secret = randomBytes(32).toString('hex');
      const value = secret;
      await this.#storage.write(() => this.#meta.putSync('cookieSecret', value));
    }
    this.#secret = secret;
    const existing = this.#meta.get('admin') as AdminRecord | undefined;
    if (envPassword !== undefined && envPassword !== '') {
      const name = envName ?? existing?.name ?? 'admin';
      if (existing?.name === name && this.#cache.verify(name, existing.hash, envPassword)) return { name };
      await this.#setAdmin(name, envPassword);
      log.info({ admin: name }, 'server admin set from the environment');
      return { name };
    }
    if (existing !== undefined) return { name: existing.name };
    const name = envName ?? 'admin';
    const generatedPassword = randomBytes(18).toString('base64url');
    await this.#setAdmin(name, generatedPassword);
    return { name, generatedPassword };
  }

  async #setAdmin(name: string, password: string): Promise<void> {
    const hash = await hashPasswordAsync(password);
    await this.#storage.write(() => this.replayAdmin(name, hash, Date.now()));
  }

  /** Stores the server admin (inside a write): a new one here, or a node replica's copy of its primary's. */
  replayAdmin(name: string, hash: unknown, now: number): void {
    this.storeAdmin(name, hash);
    this.#journal.append({ k: 'admin', name, hash }, now);
  }

  /** Inside a write, without journaling: a node replica's full sync stores its primary's admin. */
  storeAdmin(name: string, hash: unknown): void {
    this.#meta.putSync('admin', { name, hash });
  }

  #credentials(name: string): Credentials | undefined {
    const admin = this.#meta.get('admin') as AdminRecord | undefined;
    if (admin !== undefined && admin.name === name) {
      return { stored: admin.hash, salt: admin.hash.salt, roles: [], admin: true };
    }
    if (!this.#docs.exists(USERS_DB)) return undefined;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(
        this.#docs.revision(USERS_DB, USER_DOC_ID_PREFIX + name, undefined).stored.b,
      ) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const roles = Array.isArray(doc['roles'])
      ? doc['roles'].filter((r): r is string => typeof r === 'string')
      : [];
    const salt = typeof doc['salt'] === 'string' ? doc['salt'] : '';
    return { stored: doc, salt, roles, admin: false };
  }

  #context(name: string, creds: Credentials): UserContext {
    return creds.admin ? serverAdminContext(name) : { name, roles: creds.roles };
  }

  /** Checks a name and password; null when they do not match. */
  async verify(name: string, password: string): Promise<UserContext | null> {
    const creds = this.#credentials(name);
    if (creds === undefined) {
      await verifyPasswordAsync(UNMATCHABLE_HASH, password);
      return null;
    }
    if (!(await this.#cache.verifyAsync(name, creds.stored, password))) return null;
    return this.#context(name, creds);
  }

  /**
   * The caller of a request. Bad basic credentials are a 401 (as CouchDB
   * does); a bad or expired cookie just leaves the caller anonymous.
   */
  async authenticate(
    authorization: string | undefined,
    cookieHeader: string | undefined,
  ): Promise<Authenticated> {
    if (authorization !== undefined && /^basic /i.test(authorization)) {
      const basic = parseBasicAuth(authorization);
      if (basic === null) throw unauthorized('Malformed basic authorization header.');
      const ctx = await this.verify(basic.name, basic.password);
      if (ctx === null) throw unauthorized('Name or password is incorrect.');
      return { ctx, method: 'default' };
    }
    if (authorization !== undefined && /^token /i.test(authorization)) {
      const user = this.tokens.verify(authorization.slice(6).trim());
      if (user === null) throw unauthorized('The API token is not valid.');
      return { ctx: serverAdminContext(user), method: 'default' };
    }
    const cookie = readCookie(cookieHeader, SESSION_COOKIE_NAME);
    if (cookie !== undefined && cookie !== '') {
      const name = parseSessionCookie(cookie)?.name ?? null;
      const creds = name === null ? undefined : this.#credentials(name);
      if (name !== null && creds !== undefined) {
        const nowSeconds = Math.floor(Date.now() / 1000);
        const verified = verifySessionCookie(cookie, {
          secret: this.#secret,
          userSalt: creds.salt,
          nowSeconds,
          timeoutSeconds: this.#sessionTimeoutS,
        });
        if (verified !== null) {
          const ctx = this.#context(name, creds);
          return verified.expiresSoon
            ? { ctx, method: 'cookie', renewedCookie: this.#cookieFor(name, creds.salt) }
            : { ctx, method: 'cookie' };
        }
      }
    }
    return { ctx: anonymousContext(), method: null };
  }

  /** `POST /_session`: a cookie value for valid credentials. */
  async login(name: string, password: string): Promise<{ ctx: UserContext; cookie: string }> {
    const ctx = await this.verify(name, password);
    if (ctx === null) throw unauthorized('Name or password is incorrect.');
    return { ctx, cookie: this.#cookieFor(name, this.#credentials(name)!.salt) };
  }

  #cookieFor(name: string, salt: string): string {
    if (name.includes(':'))
      throw new DoppelError(ErrorKind.BadRequest, 'User names with ":" cannot use sessions.');
    return makeSessionCookie({
      name,
      userSalt: salt,
      secret: this.#secret,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
  }

  get sessionTimeoutS(): number {
    return this.#sessionTimeoutS;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
