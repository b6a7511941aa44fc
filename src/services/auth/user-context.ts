/**
 * Who is asking (UserContext), what a database allows (SecurityObject), and the rules CouchDB
 * applies to `_users` documents. Semantics follow CouchDB 3.x (`couch_db:is_admin/is_member`,
 * `couch_users_db`, and the `_design/_auth` validate_doc_update function).
 */
import { badRequest, forbidden, notFound, unauthorized } from '../../errors.js';
import { DEFAULT_PBKDF2_ITERATIONS, hashPassword, hashPasswordAsync } from './passwords.js';
import type { PasswordHash } from './passwords.js';

export interface UserContext {
  /** null for an anonymous request. */
  name: string | null;
  roles: string[];
}

/** The role every server admin carries; it implicitly grants admin on every database. */
export const ADMIN_ROLE = '_admin';

export function anonymousContext(): UserContext {
  return { name: null, roles: [] };
}

export function serverAdminContext(name: string): UserContext {
  return { name, roles: [ADMIN_ROLE] };
}

export interface SecurityObject {
  admins: { names: string[]; roles: string[] };
  members: { names: string[]; roles: string[] };
}

/**
 * CouchDB 3.x's `[couchdb] default_security = admin_only`. CouchDB implements it by *writing*
 * {@link defaultSecurityObject} into every new database, not by changing the membership rule: a
 * security object whose `members` lists are both empty still means "public" (`is_public_db`),
 * and `PUT /{db}/_security {}` is the documented way to open a database to everyone. Doppel keeps
 * both halves — so clients that rely on either behave the same — and additionally treats a
 * database with no stored security object (`null`/`undefined` below) as carrying the default, so
 * forgetting to store it can only fail closed.
 */
export const DEFAULT_SECURITY = 'admin_only';

/** The object CouchDB 3.x stores in (and `GET /{db}/_security` returns for) a new database. */
export function defaultSecurityObject(): SecurityObject {
  return {
    admins: { names: [], roles: [ADMIN_ROLE] },
    members: { names: [], roles: [ADMIN_ROLE] },
  };
}

/**
 * Validates a `PUT /{db}/_security` body; the list-type messages are CouchDB's. Unknown top-level
 * fields are dropped (CouchDB would store them verbatim).
 */
export function normalizeSecurityObject(body: unknown): SecurityObject {
  if (!isRecord(body)) throw badRequest('Security object must be a JSON object');
  // Pre-1.0 databases called the members section "readers"; CouchDB still falls back to it.
  const members = body['members'] !== undefined ? body['members'] : body['readers'];
  return { admins: namesAndRoles(body['admins']), members: namesAndRoles(members) };
}

function namesAndRoles(section: unknown): { names: string[]; roles: string[] } {
  if (section === undefined) return { names: [], roles: [] };
  if (!isRecord(section)) throw badRequest('admins or members must be a JSON object of names and roles');
  return {
    names: stringList(section['names'], 'names must be a JSON list of strings'),
    roles: stringList(section['roles'], 'roles must be a JSON list of strings'),
  };
}

function stringList(value: unknown, message: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
    throw badRequest(message);
  }
  return [...value];
}

export function isServerAdmin(ctx: UserContext): boolean {
  return ctx.roles.includes(ADMIN_ROLE);
}

/** Server admins, plus anyone named in (or holding a role of) `admins`. */
export function isDbAdmin(ctx: UserContext, sec: SecurityObject | null | undefined): boolean {
  return isServerAdmin(ctx) || isListed(ctx, (sec ?? defaultSecurityObject()).admins);
}

/**
 * Db admins; everyone when `members` lists no names and no roles; otherwise anyone listed.
 * A missing security object means {@link DEFAULT_SECURITY}: admins only.
 */
export function isDbMember(ctx: UserContext, sec: SecurityObject | null | undefined): boolean {
  const effective = sec ?? defaultSecurityObject();
  if (isDbAdmin(ctx, effective)) return true;
  const { names, roles } = effective.members;
  if (names.length === 0 && roles.length === 0) return true;
  return isListed(ctx, effective.members);
}

function isListed(ctx: UserContext, section: { names: string[]; roles: string[] }): boolean {
  if (ctx.name !== null && section.names.includes(ctx.name)) return true;
  return ctx.roles.some((role) => section.roles.includes(role));
}

/** CouchDB answers 401 here even for a logged-in non-admin. */
export function requireServerAdmin(ctx: UserContext): void {
  if (!isServerAdmin(ctx)) throw unauthorized('You are not a server admin.');
}

/** 401 for anonymous callers (they may log in and retry), 403 for named ones. */
export function requireDbAdmin(ctx: UserContext, sec: SecurityObject | null | undefined): void {
  if (isDbAdmin(ctx, sec)) return;
  const reason = 'You are not a db or server admin.';
  throw ctx.name === null ? unauthorized(reason) : forbidden(reason);
}

export function requireDbMember(ctx: UserContext, sec: SecurityObject | null | undefined): void {
  if (isDbMember(ctx, sec)) return;
  throw ctx.name === null
    ? unauthorized('You are not authorized to access this db.')
    : forbidden('You are not allowed to access this db.');
}

export const USER_DOC_ID_PREFIX = 'org.couchdb.user:';

/** The one system role CouchDB lets a `_users` doc carry (read-only metrics access). */
const ALLOWED_SYSTEM_ROLES: readonly string[] = ['_metrics'];
const PASSWORD_SCHEMES: readonly string[] = ['simple', 'pbkdf2', 'simple+pbkdf2'];

/**
 * Throws unless `ctx` may write `doc` over `existing` (null when creating) in the users database.
 * `sec` is the users database's security object: its admins count as admins here, as in CouchDB.
 *
 * Combines CouchDB's `before_doc_update` ownership rule (a logged-in non-admin touching someone
 * else's doc gets 404, so the doc's existence isn't revealed) with the `_design/_auth` rules.
 * Design docs skip the latter, as CouchDB skips validate_doc_update for them, and need an admin.
 * The hashed-credential checks are skipped while the doc still carries a plaintext `password`, so
 * this may run before {@link preparePasswordForStorage} — cheaper, since hashing is the slow part.
 */
export function validateUserDoc(
  doc: unknown,
  existing: unknown,
  ctx: UserContext,
  sec?: SecurityObject | null,
): void {
  if (!isRecord(doc)) throw badRequest('Document must be a JSON object');
  const id = doc['_id'];
  const isAdmin = isDbAdmin(ctx, sec);
  const docName =
    typeof id === 'string' && id.startsWith(USER_DOC_ID_PREFIX)
      ? id.slice(USER_DOC_ID_PREFIX.length)
      : undefined;
  if (!isAdmin && ctx.name !== null && ctx.name !== docName) throw notFound();

  if (typeof id === 'string' && id.startsWith('_design/')) {
    if (!isAdmin) throw unauthorized('You are not a db or server admin.');
    return;
  }

  const old = isRecord(existing) ? existing : null;
  if (doc['_deleted'] === true) {
    // Deletes skip the field checks; only the owner or an admin may delete.
    if (isAdmin || (ctx.name !== null && old !== null && old['name'] === ctx.name)) return;
    throw forbidden('Only admins may delete other user docs.');
  }

  if (doc['type'] !== 'user') throw forbidden('doc.type must be user');
  const name = doc['name'];
  if (typeof name !== 'string' || name === '') throw forbidden('doc.name is required');
  const roles = doc['roles'];
  if (roles === undefined || roles === null) throw forbidden('doc.roles must exist');
  if (!Array.isArray(roles)) throw forbidden('doc.roles must be an array');
  if (!roles.every((r): r is string => typeof r === 'string')) {
    throw forbidden('doc.roles can only contain strings');
  }
  if (id !== USER_DOC_ID_PREFIX + name) {
    throw forbidden(`Doc ID must be of the form ${USER_DOC_ID_PREFIX}name`);
  }
  if (old !== null && old['name'] !== name) throw forbidden('Usernames can not be changed.');

  if (typeof doc['password'] !== 'string') validateStoredCredentials(doc);

  if (!isAdmin) {
    // A hash a user brings may not cost more than the node's own: at `iterations: 1e9`, every
    // failed login as them would take minutes of the shared hashing threads.
    const iterations = doc['iterations'];
    if (
      typeof doc['password'] !== 'string' &&
      typeof iterations === 'number' &&
      iterations > DEFAULT_PBKDF2_ITERATIONS &&
      iterations !== old?.['iterations']
    )
      throw forbidden(`Only admins may store a hash of more than ${DEFAULT_PBKDF2_ITERATIONS} iterations.`);
    if (old !== null) {
      if (ctx.name !== name) throw forbidden('You may only update your own user document.');
      const stored: unknown = old['roles'];
      const oldRoles = Array.isArray(stored)
        ? stored.filter((r): r is string => typeof r === 'string').sort()
        : [];
      const newRoles = [...roles].sort();
      if (oldRoles.length !== newRoles.length || oldRoles.some((r, i) => r !== newRoles[i])) {
        throw forbidden('Only _admin may edit roles');
      }
    } else if (roles.length > 0) {
      throw forbidden('Only _admin may set roles');
    }
  }

  if (roles.some((r) => r.startsWith('_') && !ALLOWED_SYSTEM_ROLES.includes(r))) {
    throw forbidden('No system roles (starting with underscore) in users db.');
  }
  if (name.startsWith('_')) throw forbidden('Username may not start with underscore.');
  // ':' separates fields in the session cookie, so it can't appear in a name.
  if (name.includes(':')) throw forbidden('Character `:` is not allowed in usernames.');
}

function validateStoredCredentials(doc: Record<string, unknown>): void {
  if (isTruthy(doc['password_sha']) && !isTruthy(doc['salt'])) {
    throw forbidden('Users with password_sha must have a salt.');
  }
  const scheme = doc['password_scheme'];
  if (isTruthy(scheme) && !(typeof scheme === 'string' && PASSWORD_SCHEMES.includes(scheme))) {
    throw forbidden(`Password scheme \`${String(scheme)}\` not supported.`);
  }
  if (scheme === 'pbkdf2') {
    if (typeof doc['iterations'] !== 'number') throw forbidden('iterations must be a number.');
    if (typeof doc['derived_key'] !== 'string') throw forbidden('derived_key must be a string.');
  }
}

/** Every field CouchDB strips before writing freshly hashed credentials. */
const CREDENTIAL_FIELDS: readonly string[] = [
  'derived_key',
  'iterations',
  'password',
  'password_scheme',
  'password_sha',
  'preserve_salt',
  'pbkdf2_prf',
  'salt',
];

type PreparedPassword = { password: string; iterations: number; salt: string | undefined } | null;

function passwordToHash(doc: Record<string, unknown>, iterations: number | undefined): PreparedPassword {
  const password = doc['password'];
  // A null password is how admin-created docs say "no password"; CouchDB leaves such docs alone.
  if (password === undefined || password === null) return null;
  if (typeof password !== 'string') throw forbidden('Password value is invalid.');
  // preserve_salt keeps the salt through a re-hash so existing session cookies stay valid.
  const salt = doc['preserve_salt'] === true && typeof doc['salt'] === 'string' ? doc['salt'] : undefined;
  return { password, iterations: iterations ?? DEFAULT_PBKDF2_ITERATIONS, salt };
}

function withCredentials(doc: Record<string, unknown>, hash: PasswordHash): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (!CREDENTIAL_FIELDS.includes(key)) out[key] = value;
  }
  return { ...out, ...hash };
}

/**
 * Returns a copy of a `_users` doc in which a plaintext `password` is replaced by pbkdf2-sha256
 * fields (and any older credential fields are dropped). Docs without a password come back as an
 * unchanged copy. Synchronous hashing at the default cost blocks for ~100 ms; request handlers
 * should prefer {@link preparePasswordForStorageAsync}.
 */
export function preparePasswordForStorage(
  doc: Record<string, unknown>,
  options: { iterations?: number } = {},
): Record<string, unknown> {
  const plan = passwordToHash(doc, options.iterations);
  if (plan === null) return { ...doc };
  return withCredentials(doc, hashPassword(plan.password, plan.iterations, plan.salt));
}

export async function preparePasswordForStorageAsync(
  doc: Record<string, unknown>,
  options: { iterations?: number } = {},
): Promise<Record<string, unknown>> {
  const plan = passwordToHash(doc, options.iterations);
  if (plan === null) return { ...doc };
  return withCredentials(doc, await hashPasswordAsync(plan.password, plan.iterations, plan.salt));
}

function isTruthy(value: unknown): boolean {
  return (
    value !== undefined &&
    value !== null &&
    value !== false &&
    value !== 0 &&
    value !== '' &&
    !Number.isNaN(value)
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
