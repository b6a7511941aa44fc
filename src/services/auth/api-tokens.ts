/**
 * API tokens (`Authorization: Token …`, as InfluxDB clients send them). A token is
 * `dpl_<id>_<secret>`; only the SHA-256 of the whole token is stored, it is compared in
 * constant time, and the token itself is returned once, by `create`. A token acts as
 * the server admin who created it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from 'lmdb';
import { badRequest, notFound } from '../../errors.js';
import type { Storage } from '../../storage/environment.js';

interface StoredToken {
  readonly id: string;
  readonly description: string;
  /** Hex SHA-256 of the full token. */
  readonly sha256: string;
  /** The admin it acts as. */
  readonly user: string;
  readonly created_at: string;
}

export interface TokenView {
  readonly id: string;
  readonly description: string;
  readonly user: string;
  readonly created_at: string;
}

const KEY_PREFIX = 'token:';
const TOKEN = /^dpl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export class ApiTokens {
  readonly #storage: Storage;
  readonly #db: Database<unknown, string>;

  /** `db` is the auth service's own sub-database; tokens live under `token:<id>` keys. */
  constructor(storage: Storage, db: Database<unknown, string>) {
    this.#storage = storage;
    this.#db = db;
  }

  /** Creates a token acting as `user`; the returned `token` is never available again. */
  async create(user: string, description: unknown): Promise<TokenView & { token: string }> {
    if (description !== undefined && typeof description !== 'string')
      throw badRequest('description must be a string');
    const id = randomBytes(8).toString('hex');
    const token = `dpl_${id}_${randomBytes(32).toString('base64url')}`;
    const stored: StoredToken = {
      id,
      description: description ?? '',
      sha256: sha256(token).toString('hex'),
      user,
      created_at: new Date().toISOString(),
    };
    await this.#storage.write(() => this.#db.putSync(KEY_PREFIX + id, stored));
    return { ...view(stored), token };
  }

  list(): TokenView[] {
    const out: TokenView[] = [];
    for (const { value } of this.#db.getRange({ start: KEY_PREFIX, end: `${KEY_PREFIX}\uffff` }))
      out.push(view(value as StoredToken));
    return out;
  }

  async delete(id: string): Promise<void> {
    const key = KEY_PREFIX + id;
    if (this.#db.get(key) === undefined) throw notFound(`no API token with id "${id}"`);
    await this.#storage.write(() => this.#db.removeSync(key));
  }

  /** The user a presented token acts as, or null when it is not a valid token. */
  verify(token: string): string | null {
    const match = TOKEN.exec(token);
    if (match === null) return null;
    const stored = this.#db.get(KEY_PREFIX + match[1]) as StoredToken | undefined;
    if (stored === undefined) return null;
    const expected = Buffer.from(stored.sha256, 'hex');
    return timingSafeEqual(expected, sha256(token)) ? stored.user : null;
  }
}

function view(stored: StoredToken): TokenView {
  return { id: stored.id, description: stored.description, user: stored.user, created_at: stored.created_at };
}
