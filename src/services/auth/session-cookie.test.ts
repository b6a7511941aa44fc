import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  DEFAULT_SESSION_TIMEOUT_SECONDS,
  clearCookieHeader,
  makeSessionCookie,
  parseSessionCookie,
  setCookieHeader,
  verifySessionCookie,
} from './session-cookie.js';

const secret = 'topsecret';
const T0 = 100_000_000; // 0x5F5E100
const base = { secret, userSalt: 'usersalt', nowSeconds: T0 };

void describe('makeSessionCookie', () => {
  void it("matches CouchDB's construction byte for byte", () => {
    // Expected value computed with Python's hmac/base64, not with this module.
    assert.equal(
      makeSessionCookie({ name: 'alice', ...base }),
      'YWxpY2U6NUY1RTEwMDqXKAQhatSAHLZMvCqRDrqGHD34MRQUedOETKiJwjELWQ',
    );
  });

  void it('round-trips through parse', () => {
    const value = makeSessionCookie({ name: 'jöhn', ...base });
    const parsed = parseSessionCookie(value);
    assert.ok(parsed);
    assert.equal(parsed.name, 'jöhn');
    assert.equal(parsed.issuedAt, T0);
    assert.equal(parsed.mac.length, 32);
  });

  void it('refuses an unset secret and names that cannot round-trip', () => {
    assert.throws(() => makeSessionCookie({ name: 'a', ...base, secret: '' }), RangeError);
    assert.throws(() => makeSessionCookie({ name: 'a:b', ...base }), RangeError);
    assert.throws(() => makeSessionCookie({ name: '', ...base }), RangeError);
    assert.throws(() => makeSessionCookie({ name: 'a', ...base, nowSeconds: 1.5 }), RangeError);
  });
});

void describe('verifySessionCookie', () => {
  const value = makeSessionCookie({ name: 'alice', ...base });
  const verifyAt = (v: string, now: number, extra: Partial<Parameters<typeof verifySessionCookie>[1]> = {}) =>
    verifySessionCookie(v, { secret, userSalt: 'usersalt', nowSeconds: now, ...extra });

  void it('accepts a fresh cookie', () => {
    assert.deepEqual(verifyAt(value, T0), { name: 'alice', expiresSoon: false });
  });

  void it('asks for a refresh once more than 10% of the lifetime has passed', () => {
    assert.equal(verifyAt(value, T0 + 60)?.expiresSoon, false); // exactly 90% left
    assert.equal(verifyAt(value, T0 + 61)?.expiresSoon, true);
    assert.equal(verifyAt(value, T0 + 599)?.expiresSoon, true);
  });

  void it('rejects an expired cookie', () => {
    assert.equal(DEFAULT_SESSION_TIMEOUT_SECONDS, 600);
    assert.equal(verifyAt(value, T0 + 600), null);
    assert.equal(verifyAt(value, T0 + 10_000), null);
    assert.equal(verifyAt(value, T0 + 100, { timeoutSeconds: 100 }), null);
    assert.notEqual(verifyAt(value, T0 + 1000, { timeoutSeconds: 3600 }), null);
  });

  void it("rejects user A's cookie checked against user B's salt", () => {
    const a = makeSessionCookie({ name: 'alice', secret, userSalt: 'salt-of-alice', nowSeconds: T0 });
    assert.notEqual(verifySessionCookie(a, { secret, userSalt: 'salt-of-alice', nowSeconds: T0 }), null);
    assert.equal(verifySessionCookie(a, { secret, userSalt: 'salt-of-bob', nowSeconds: T0 }), null);
  });

  void it('rejects a cookie after a password change (new salt)', () => {
    assert.equal(verifyAt(value, T0, { userSalt: 'newsalt' }), null);
  });

  void it('rejects a cookie signed with another secret, and honours rotated secrets', () => {
    assert.equal(verifyAt(value, T0, { secret: 'othersecret' }), null);
    assert.notEqual(verifyAt(value, T0, { secret: ['newsecret', secret] }), null);
    assert.equal(verifyAt(value, T0, { secret: [] }), null);
    assert.equal(verifyAt(value, T0, { secret: '' }), null);
  });

  void it('rejects tampered cookies', () => {
    const raw = Buffer.from(value, 'base64url');
    const rename = Buffer.from(raw);
    rename.write('bobby', 0, 'latin1'); // same length as "alice"
    const newTime = Buffer.from(raw);
    newTime.write('5F5E200', 6, 'latin1'); // extend the session
    const flipMac = Buffer.from(raw);
    flipMac[flipMac.length - 1] = (flipMac[flipMac.length - 1] ?? 0) ^ 1;
    const truncated = raw.subarray(0, raw.length - 1);
    for (const forged of [rename, newTime, flipMac, truncated]) {
      assert.equal(verifyAt(forged.toString('base64url'), T0 + 1), null);
    }
  });

  void it('accepts legacy SHA-1 MACs, as CouchDB does', () => {
    const signed = 'alice:5F5E100';
    const mac = createHmac('sha1', secret + 'usersalt')
      .update(signed)
      .digest();
    const legacy = Buffer.concat([Buffer.from(`${signed}:`), mac]).toString('base64url');
    assert.deepEqual(verifyAt(legacy, T0), { name: 'alice', expiresSoon: false });
  });

  void it('MACs the timestamp as written (lowercase hex from another implementation)', () => {
    const signed = 'alice:5f5e100';
    const mac = createHmac('sha256', secret + 'usersalt')
      .update(signed)
      .digest();
    const lower = Buffer.concat([Buffer.from(`${signed}:`), mac]).toString('base64url');
    assert.deepEqual(verifyAt(lower, T0), { name: 'alice', expiresSoon: false });
  });

  void it('accepts a padded value', () => {
    assert.notEqual(verifyAt(value + '=', T0), null);
  });
});

void describe('parseSessionCookie on malformed input', () => {
  const enc = (s: string | Buffer) => Buffer.from(s).toString('base64url');
  const malformed: unknown[] = [
    '',
    '!!!',
    'a b',
    'abc.def',
    enc('no-colons'),
    enc('alice:5F5E100'),
    enc('alice:5F5E100:'),
    enc(':5F5E100:mac'),
    enc('alice::mac'),
    enc('alice:xyz:mac'),
    enc('alice:-1:mac'),
    enc('alice:FFFFFFFFFFFFFFFF:mac'),
    enc(Buffer.from([0xff, 0xfe, 0x3a, 0x31, 0x3a, 0x61])),
    'A'.repeat(10_000),
    undefined,
    null,
    42,
    {},
  ];
  for (const [i, input] of malformed.entries()) {
    void it(`case ${i} is null, never a throw`, () => {
      assert.equal(parseSessionCookie(input as string), null);
      assert.equal(verifySessionCookie(input as string, { secret, userSalt: 's', nowSeconds: T0 }), null);
    });
  }

  void it('verify tolerates junk options', () => {
    const v = makeSessionCookie({ name: 'alice', ...base });
    const junk = { secret: [42], userSalt: null, nowSeconds: Number.NaN } as unknown as Parameters<
      typeof verifySessionCookie
    >[1];
    assert.equal(verifySessionCookie(v, junk), null);
  });
});

void describe('setCookieHeader', () => {
  const v = makeSessionCookie({ name: 'alice', ...base });

  void it("uses CouchDB's attributes and order", () => {
    assert.equal(
      setCookieHeader(v, { secure: false, maxAgeSeconds: 600, nowSeconds: 1_700_000_000 }),
      `AuthSession=${v}; Version=1; Expires=Tue, 14 Nov 2023 22:23:20 GMT; Max-Age=600; Path=/; HttpOnly`,
    );
    assert.equal(setCookieHeader(v, { secure: false }), `AuthSession=${v}; Version=1; Path=/; HttpOnly`);
  });

  void it('adds Secure, Domain and SameSite when asked', () => {
    assert.equal(
      setCookieHeader(v, { secure: true, domain: 'example.com', sameSite: 'Lax' }),
      `AuthSession=${v}; Version=1; Secure; Domain=example.com; Path=/; HttpOnly; SameSite=Lax`,
    );
  });

  void it('clears with an empty value and Max-Age=0', () => {
    assert.equal(
      clearCookieHeader({ secure: false, nowSeconds: 0 }),
      'AuthSession=; Version=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; HttpOnly',
    );
  });

  void it('refuses header injection', () => {
    assert.throws(() => setCookieHeader('x; Domain=evil', { secure: false }), RangeError);
    assert.throws(() => setCookieHeader(v, { secure: false, domain: 'a;b' }), RangeError);
  });
});
