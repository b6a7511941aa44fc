/**
 * Password hashing and verification compatible with the credential fields CouchDB keeps in
 * `_users` documents (and, in the same shape, for server admins).
 *
 * Wire facts this module follows (CouchDB 3.4+):
 * - new hashes use `password_scheme: "pbkdf2"`, `pbkdf2_prf: "sha256"` and 600000 iterations
 *   (`[chttpd_auth] iterations`, `pbkdf2_prf`);
 * - the salt is 16 random bytes written as 32 hex characters, and it is fed to PBKDF2 as that hex
 *   *text*, not as the decoded bytes — otherwise hashes written by CouchDB would not verify here;
 * - the derived key is as long as the PRF's digest and is stored as lowercase hex;
 * - a stored doc without `pbkdf2_prf` predates the setting and means SHA-1; one without
 *   `iterations` means 10000; one without `password_scheme` is the legacy `simple` scheme
 *   (`password_sha` = hex sha1(password + salt)); `simple+pbkdf2` runs PBKDF2 over that legacy hash.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { DoppelError, ErrorKind } from '../../errors.js';

export interface PasswordHash {
  password_scheme: 'pbkdf2';
  pbkdf2_prf: 'sha256';
  iterations: number;
  salt: string;
  derived_key: string;
}

/**
 * CouchDB 3.4's default. At roughly 100 ms of CPU per hash this is too slow to pay on every
 * basic-auth request, hence {@link VerifiedCredentialCache} and the async variants, which run on
 * libuv's thread pool instead of stalling the event loop.
 */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/** CouchDB's `[chttpd_auth] min_iterations` / `max_iterations` defaults. */
export const PBKDF2_ITERATION_LIMITS = { min: 1, max: 1_000_000_000 } as const;

/** What CouchDB assumes for a pbkdf2 doc written before `iterations` was recorded. */
const LEGACY_DEFAULT_ITERATIONS = 10_000;

/** CouchDB PRF names → Node digest names and digest lengths (the derived key length). */
const PRFS: Readonly<Record<string, { digest: string; keyLength: number }>> = {
  sha: { digest: 'sha1', keyLength: 20 },
  sha224: { digest: 'sha224', keyLength: 28 },
  sha256: { digest: 'sha256', keyLength: 32 },
  sha384: { digest: 'sha384', keyLength: 48 },
  sha512: { digest: 'sha512', keyLength: 64 },
};

const SALT_BYTES = 16;

/**
 * `salt` is for the rare caller that must keep an existing salt (CouchDB's `preserve_salt`, which
 * keeps sessions alive across a hash upgrade); normally a fresh one is drawn.
 */
export function hashPassword(
  password: string,
  iterations = DEFAULT_PBKDF2_ITERATIONS,
  salt = newSalt(),
): PasswordHash {
  checkIterations(iterations);
  const derived = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  return pbkdf2Result(salt, iterations, derived);
}

/** Like {@link hashPassword} but off the event loop; prefer it in request handlers. */
export async function hashPasswordAsync(
  password: string,
  iterations = DEFAULT_PBKDF2_ITERATIONS,
  salt = newSalt(),
): Promise<PasswordHash> {
  checkIterations(iterations);
  const derived = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  return pbkdf2Result(salt, iterations, derived);
}

function newSalt(): string {
  return randomBytes(SALT_BYTES).toString('hex');
}

function pbkdf2Result(salt: string, iterations: number, derived: Buffer): PasswordHash {
  return {
    password_scheme: 'pbkdf2',
    pbkdf2_prf: 'sha256',
    iterations,
    salt,
    derived_key: derived.toString('hex'),
  };
}

function checkIterations(iterations: number): void {
  if (
    !Number.isSafeInteger(iterations) ||
    iterations < PBKDF2_ITERATION_LIMITS.min ||
    iterations > PBKDF2_ITERATION_LIMITS.max
  ) {
    throw new RangeError(`pbkdf2 iterations must be an integer in [1, ${PBKDF2_ITERATION_LIMITS.max}]`);
  }
}

/**
 * What verifying a stored credential requires: either a fast digest to recompute, or a PBKDF2
 * run. Parsing is separated from hashing so the sync and async paths cannot drift apart.
 */
type VerificationPlan =
  | { kind: 'simple'; salt: string; expected: string }
  | {
      kind: 'pbkdf2';
      legacyInput: boolean;
      salt: string;
      iterations: number;
      digest: string;
      keyLength: number;
      expected: string;
    };

function planVerification(stored: unknown): VerificationPlan | null {
  if (!isRecord(stored)) return null;
  const scheme = stored['password_scheme'] ?? 'simple';
  // CouchDB reads a missing salt as the empty binary rather than refusing the doc.
  const salt = stored['salt'] ?? '';
  if (typeof salt !== 'string') return null;
  if (scheme === 'simple') {
    const expected = stored['password_sha'];
    return typeof expected === 'string' ? { kind: 'simple', salt, expected } : null;
  }
  if (scheme !== 'pbkdf2' && scheme !== 'simple+pbkdf2') return null;
  const prfName = stored['pbkdf2_prf'] ?? 'sha';
  const prf = typeof prfName === 'string' && Object.hasOwn(PRFS, prfName) ? PRFS[prfName] : undefined;
  if (prf === undefined) return null;
  const iterations = stored['iterations'] ?? LEGACY_DEFAULT_ITERATIONS;
  if (
    typeof iterations !== 'number' ||
    !Number.isSafeInteger(iterations) ||
    iterations < PBKDF2_ITERATION_LIMITS.min ||
    iterations > PBKDF2_ITERATION_LIMITS.max
  ) {
    return null;
  }
  const expected = stored['derived_key'];
  if (typeof expected !== 'string') return null;
  return {
    kind: 'pbkdf2',
    legacyInput: scheme === 'simple+pbkdf2',
    salt,
    iterations,
    digest: prf.digest,
    keyLength: prf.keyLength,
    expected,
  };
}

function simpleHash(password: string, salt: string): string {
  return createHash('sha1')
    .update(password + salt, 'utf8')
    .digest('hex');
}

function pbkdf2Input(plan: Extract<VerificationPlan, { kind: 'pbkdf2' }>, password: string): string {
  return plan.legacyInput ? simpleHash(password, plan.salt) : password;
}

/**
 * Compares two hex strings as bytes in constant time. Lengths are compared first because
 * `timingSafeEqual` demands equal lengths; a length mismatch only reveals the digest size,
 * which the PRF already makes public.
 */
function hexEquals(actualHex: string, expectedHex: string): boolean {
  const actual = Buffer.from(actualHex, 'utf8');
  const expected = Buffer.from(expectedHex, 'utf8');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** True iff `password` matches the credential fields in `stored`; never throws. */
export function verifyPassword(stored: unknown, password: string): boolean {
  try {
    if (typeof password !== 'string') return false;
    const plan = planVerification(stored);
    if (plan === null) return false;
    if (plan.kind === 'simple') return hexEquals(simpleHash(password, plan.salt), plan.expected);
    const derived = pbkdf2Sync(
      pbkdf2Input(plan, password),
      plan.salt,
      plan.iterations,
      plan.keyLength,
      plan.digest,
    );
    return hexEquals(derived.toString('hex'), plan.expected);
  } catch {
    return false;
  }
}

/**
 * Like {@link verifyPassword} but runs PBKDF2 on the thread pool. Rejects only when too many
 * hashes already wait (an `unavailable` error); any other failure is a mismatch.
 */
export async function verifyPasswordAsync(stored: unknown, password: string): Promise<boolean> {
  try {
    if (typeof password !== 'string') return false;
    const plan = planVerification(stored);
    if (plan === null) return false;
    if (plan.kind === 'simple') return hexEquals(simpleHash(password, plan.salt), plan.expected);
    const derived = await pbkdf2Async(
      pbkdf2Input(plan, password),
      plan.salt,
      plan.iterations,
      plan.keyLength,
      plan.digest,
    );
    return hexEquals(derived.toString('hex'), plan.expected);
  } catch (err) {
    if (err instanceof DoppelError) throw err;
    return false;
  }
}

/**
 * Stored credentials no password matches (the derived key is random), at the cost of a
 * default hash: checking a name that has no account takes as long as checking one that
 * has, so timing does not tell which names exist.
 */
export const UNMATCHABLE_HASH: Readonly<PasswordHash> = Object.freeze(
  pbkdf2Result(newSalt(), DEFAULT_PBKDF2_ITERATIONS, randomBytes(32)),
);

/**
 * At most this many PBKDF2 runs at once: each holds one of libuv's four threads for ~100 ms,
 * and the rest of the node (file reads, zlib, DNS) needs the others. A flood of failed logins
 * then slows logins down, not the node.
 */
const MAX_RUNNING_HASHES = 2;
/** Hashes waiting beyond this many are refused (HTTP 503, RESP -ERR) instead of queued. */
const MAX_WAITING_HASHES = 256;

let runningHashes = 0;
const waitingHashes: (() => void)[] = [];

async function hashingTurn(): Promise<void> {
  if (runningHashes < MAX_RUNNING_HASHES) {
    runningHashes++;
    return;
  }
  if (waitingHashes.length >= MAX_WAITING_HASHES) {
    throw new DoppelError(ErrorKind.Unavailable, 'Too many password checks are in progress; retry later.');
  }
  // The finishing hash hands its turn over directly, so `runningHashes` stays counted.
  await new Promise<void>((resolve) => waitingHashes.push(resolve));
}

function endHashingTurn(): void {
  const next = waitingHashes.shift();
  if (next === undefined) runningHashes--;
  else next();
}

async function pbkdf2Async(
  password: string,
  salt: string,
  iterations: number,
  keyLength: number,
  digest: string,
): Promise<Buffer> {
  await hashingTurn();
  try {
    return await new Promise((resolve, reject) => {
      pbkdf2(password, salt, iterations, keyLength, digest, (err, key) => (err ? reject(err) : resolve(key)));
    });
  } finally {
    endHashingTurn();
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Remembers, per user name, that a password recently verified against one exact set of stored
 * credential fields, so repeated basic-auth requests (replicators send credentials on every
 * request) don't pay a 600000-iteration PBKDF2 each time. CouchDB 3.4 does the same thing in
 * `couch_passwords_cache`.
 *
 * Security properties:
 * - Entries are bound to a fingerprint of the stored fields (scheme, prf, iterations, salt and the
 *   derived key / password_sha), so a changed or re-hashed user doc never matches a stale entry.
 * - No plaintext is kept: only an HMAC of the password under a random per-instance key, compared
 *   with `timingSafeEqual`.
 * - Only successes are cached, and a cache miss *or mismatch* falls through to the full PBKDF2
 *   check. Answering "wrong" from the cache would hand a password-guesser a cheap oracle.
 * - Bounded LRU (a Map's insertion order, refreshed on hit); one entry per user name, so guessing
 *   many passwords for one user can't flood it.
 */
export class VerifiedCredentialCache {
  readonly #maxEntries: number;
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, { fingerprint: Buffer; tag: Buffer }>();

  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? 1000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Verifies via the cache, falling back to a full (synchronous) check. */
  verify(name: string, stored: unknown, password: string): boolean {
    if (this.check(name, stored, password)) return true;
    if (!verifyPassword(stored, password)) return false;
    this.remember(name, stored, password);
    return true;
  }

  /** Verifies via the cache, falling back to a full check on the thread pool. */
  async verifyAsync(name: string, stored: unknown, password: string): Promise<boolean> {
    if (this.check(name, stored, password)) return true;
    if (!(await verifyPasswordAsync(stored, password))) return false;
    this.remember(name, stored, password);
    return true;
  }

  /** True only on a cache hit; false means "unknown", not "wrong". */
  check(name: string, stored: unknown, password: string): boolean {
    const entry = this.#entries.get(name);
    if (entry === undefined) return false;
    const fingerprint = credentialFingerprint(stored);
    if (fingerprint === null || typeof password !== 'string') return false;
    const fingerprintMatches =
      entry.fingerprint.length === fingerprint.length && timingSafeEqual(entry.fingerprint, fingerprint);
    // Both comparisons always run so timing does not reveal which of them failed.
    const tagMatches = timingSafeEqual(entry.tag, this.#tag(fingerprint, password));
    if (!(fingerprintMatches && tagMatches)) return false;
    this.#entries.delete(name);
    this.#entries.set(name, entry);
    return true;
  }

  /** Records a password the caller has just verified against `stored`. */
  remember(name: string, stored: unknown, password: string): void {
    const fingerprint = credentialFingerprint(stored);
    if (fingerprint === null) return;
    this.#entries.delete(name);
    this.#entries.set(name, { fingerprint, tag: this.#tag(fingerprint, password) });
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }

  forget(name: string): void {
    this.#entries.delete(name);
  }

  clear(): void {
    this.#entries.clear();
  }

  #tag(fingerprint: Buffer, password: string): Buffer {
    return createHmac('sha256', this.#key).update(fingerprint).update(password, 'utf8').digest();
  }
}

/** A digest of every stored field that affects verification; null when nothing is verifiable. */
function credentialFingerprint(stored: unknown): Buffer | null {
  const plan = planVerification(stored);
  if (plan === null) return null;
  const parts =
    plan.kind === 'simple'
      ? ['simple', plan.salt, plan.expected]
      : [
          plan.legacyInput ? 'simple+pbkdf2' : 'pbkdf2',
          plan.digest,
          String(plan.iterations),
          plan.salt,
          plan.expected,
        ];
  // Length-prefixing keeps distinct field splits from colliding.
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${Buffer.byteLength(part)}:${part};`);
  return hash.digest();
}
