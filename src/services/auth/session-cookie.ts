/**
 * CouchDB's `AuthSession` cookie, built the way CouchDB builds it so cookies stay meaningful to
 * clients (and to a CouchDB node sharing the same secret):
 *
 *   value = base64url-without-padding(`${name}:${hexSeconds}:` + rawMac)
 *   rawMac = HMAC-SHA256(key = secret + userSalt, message = `${name}:${hexSeconds}`)
 *
 * The MAC is appended as raw bytes, not hex, and may itself contain ':' — only the first two
 * colons separate fields (user names may not contain ':', see `validateUserDoc`). Keying with the
 * user's salt means a password change, which re-randomises the salt, invalidates every session.
 * CouchDB's default `[chttpd_auth] hash_algorithms = sha256, sha` signs with SHA-256 and still
 * accepts SHA-1 MACs; the algorithm is told apart by the MAC's length.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE_NAME = 'AuthSession';

/** `[chttpd_auth] timeout`: seconds a session lives after it was (re-)issued. */
export const DEFAULT_SESSION_TIMEOUT_SECONDS = 600;

/**
 * CouchDB re-issues the cookie on a request once more than 10% of its lifetime has elapsed
 * (`TimeLeft < Timeout * 0.9`), i.e. an active client keeps sliding its session forward.
 */
export const SESSION_REFRESH_FRACTION = 0.9;

const MAC_ALGORITHMS = [
  { name: 'sha256', length: 32 },
  { name: 'sha1', length: 20 },
] as const;
const SIGNING_ALGORITHM = 'sha256';

/** 13 hex digits stay below Number.MAX_SAFE_INTEGER; anything longer is not a real timestamp. */
const HEX_TIME = /^[0-9A-Fa-f]{1,13}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
const COLON = 0x3a;

export interface ParsedSessionCookie {
  name: string;
  /** Unix seconds at which the cookie was issued. */
  issuedAt: number;
  mac: Buffer;
}

export function makeSessionCookie(options: {
  name: string;
  userSalt: string;
  secret: string;
  nowSeconds: number;
}): string {
  const { name, userSalt, secret, nowSeconds } = options;
  if (secret === '') throw new RangeError('cookie auth secret is not set');
  if (name === '' || name.includes(':'))
    throw new RangeError('session user names must be non-empty without ":"');
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0)
    throw new RangeError('nowSeconds must be whole seconds');
  const signed = `${name}:${nowSeconds.toString(16).toUpperCase()}`;
  const mac = sign(SIGNING_ALGORITHM, secret, userSalt, signed);
  return Buffer.concat([Buffer.from(`${signed}:`, 'utf8'), mac]).toString('base64url');
}

/** Splits a cookie value into its fields without checking the MAC; null when malformed. */
export function parseSessionCookie(value: string): ParsedSessionCookie | null {
  const parsed = parseInternal(value);
  return parsed === null ? null : { name: parsed.name, issuedAt: parsed.issuedAt, mac: parsed.mac };
}

/**
 * Checks the MAC (constant time) and expiry. `secret` may list several secrets so a rotated secret
 * keeps recent sessions alive; the first one is the one {@link makeSessionCookie} should be given.
 * `expiresSoon` means "send a fresh cookie with this response" (CouchDB's refresh rule). Returns
 * null for any malformed, forged, foreign-salted or expired cookie; never throws.
 */
export function verifySessionCookie(
  value: string,
  options: {
    secret: string | readonly string[];
    userSalt: string;
    nowSeconds: number;
    timeoutSeconds?: number;
  },
): { name: string; expiresSoon: boolean } | null {
  try {
    const parsed = parseInternal(value);
    if (parsed === null) return null;
    const timeout = options.timeoutSeconds ?? DEFAULT_SESSION_TIMEOUT_SECONDS;
    if (!Number.isFinite(options.nowSeconds) || !Number.isFinite(timeout)) return null;
    const timeLeft = parsed.issuedAt + timeout - options.nowSeconds;
    if (!(timeLeft > 0)) return null;
    const algorithm = MAC_ALGORITHMS.find((a) => a.length === parsed.mac.length);
    if (algorithm === undefined || typeof options.userSalt !== 'string') return null;
    const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret;
    let valid = false;
    // Every candidate is checked (no early exit) so timing doesn't reveal which secret matched.
    for (const secret of secrets) {
      if (typeof secret !== 'string' || secret === '') continue;
      const expected = sign(algorithm.name, secret, options.userSalt, parsed.signed);
      if (timingSafeEqual(expected, parsed.mac)) valid = true;
    }
    if (!valid) return null;
    return { name: parsed.name, expiresSoon: timeLeft < timeout * SESSION_REFRESH_FRACTION };
  } catch {
    return null;
  }
}

/**
 * A `Set-Cookie` header value in CouchDB's attribute order (mochiweb's):
 * `AuthSession=V; Version=1[; Expires=…; Max-Age=N][; Secure][; Domain=D]; Path=/; HttpOnly[; SameSite=X]`.
 * CouchDB sends Expires/Max-Age only with `allow_persistent_cookies` (the default, Max-Age = the
 * session timeout), Secure only over TLS, and SameSite only when `same_site` is configured (it is
 * unset by default), so it is opt-in here too.
 */
export function setCookieHeader(
  value: string,
  options: {
    maxAgeSeconds?: number;
    secure: boolean;
    /** Basis for `Expires`; defaults to the clock. */
    nowSeconds?: number;
    domain?: string;
    sameSite?: 'Lax' | 'Strict' | 'None';
  },
): string {
  if (!/^[A-Za-z0-9_=-]*$/.test(value)) throw new RangeError('session cookie values are base64url');
  const parts = [`${SESSION_COOKIE_NAME}=${value}`, 'Version=1'];
  if (options.maxAgeSeconds !== undefined) {
    const age = Math.max(0, Math.floor(options.maxAgeSeconds));
    const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
    parts.push(`Expires=${new Date((now + age) * 1000).toUTCString()}`, `Max-Age=${age}`);
  }
  if (options.secure) parts.push('Secure');
  if (options.domain !== undefined) {
    if (!/^[A-Za-z0-9.-]+$/.test(options.domain)) throw new RangeError('invalid cookie domain');
    parts.push(`Domain=${options.domain}`);
  }
  parts.push('Path=/', 'HttpOnly');
  if (options.sameSite !== undefined) parts.push(`SameSite=${options.sameSite}`);
  return parts.join('; ');
}

/**
 * A header that makes the browser drop the session (logout, failed login). CouchDB sends an empty
 * value with its usual attributes; Max-Age=0 additionally deletes it instead of keeping an empty
 * cookie around.
 */
export function clearCookieHeader(options: {
  secure: boolean;
  nowSeconds?: number;
  domain?: string;
  sameSite?: 'Lax' | 'Strict' | 'None';
}): string {
  return setCookieHeader('', { ...options, maxAgeSeconds: 0 });
}

function sign(algorithm: string, secret: string, userSalt: string, message: string): Buffer {
  return createHmac(algorithm, secret + userSalt)
    .update(message, 'utf8')
    .digest();
}

function parseInternal(value: unknown): (ParsedSessionCookie & { signed: string }) | null {
  if (typeof value !== 'string' || value.length > 4096 || !BASE64URL.test(value)) return null;
  const raw = Buffer.from(value.replace(/=+$/, ''), 'base64url');
  const first = raw.indexOf(COLON);
  if (first <= 0) return null;
  const second = raw.indexOf(COLON, first + 1);
  if (second < 0) return null;
  const mac = raw.subarray(second + 1);
  if (mac.length === 0) return null;
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(raw.subarray(0, first));
  } catch {
    return null;
  }
  const hexTime = raw.subarray(first + 1, second).toString('latin1');
  if (!HEX_TIME.test(hexTime)) return null;
  // The MAC covers the timestamp exactly as written, so it is kept verbatim rather than re-encoded.
  return { name, issuedAt: parseInt(hexTime, 16), mac: Buffer.from(mac), signed: `${name}:${hexTime}` };
}
