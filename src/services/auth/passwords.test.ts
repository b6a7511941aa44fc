import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DoppelError, ErrorKind } from '../../errors.js';
import {
  DEFAULT_PBKDF2_ITERATIONS,
  UNMATCHABLE_HASH,
  VerifiedCredentialCache,
  hashPassword,
  hashPasswordAsync,
  verifyPassword,
  verifyPasswordAsync,
} from './passwords.js';

// Low cost keeps the suite fast; the default is exercised only as a constant.
const FAST = 2;

void describe('hashPassword', () => {
  void it('produces CouchDB 3.x pbkdf2-sha256 fields', () => {
    const hash = hashPassword('secret', FAST);
    assert.equal(hash.password_scheme, 'pbkdf2');
    assert.equal(hash.pbkdf2_prf, 'sha256');
    assert.equal(hash.iterations, FAST);
    assert.match(hash.salt, /^[0-9a-f]{32}$/);
    assert.match(hash.derived_key, /^[0-9a-f]{64}$/);
    assert.equal(DEFAULT_PBKDF2_ITERATIONS, 600_000);
  });

  void it('draws a fresh salt each time unless one is given', () => {
    assert.notEqual(hashPassword('x', FAST).salt, hashPassword('x', FAST).salt);
    const a = hashPassword('x', FAST, 'fixedsalt');
    const b = hashPassword('x', FAST, 'fixedsalt');
    assert.deepEqual(a, b);
  });

  void it('round-trips through verifyPassword, sync and async', async () => {
    const hash = hashPassword('correct horse', FAST);
    assert.equal(verifyPassword(hash, 'correct horse'), true);
    assert.equal(verifyPassword(hash, 'correct horsE'), false);
    const asyncHash = await hashPasswordAsync('pässwörd ☃', FAST);
    assert.equal(await verifyPasswordAsync(asyncHash, 'pässwörd ☃'), true);
    assert.equal(await verifyPasswordAsync(asyncHash, 'passwort'), false);
  });

  void it('rejects nonsensical iteration counts', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 2e9]) {
      assert.throws(() => hashPassword('x', bad), RangeError);
    }
  });
});

void describe('verifyPassword against independently computed vectors', () => {
  // Expected values from Python's hashlib, not from this module.
  const cases: Array<[string, Record<string, unknown>]> = [
    [
      'pbkdf2 without pbkdf2_prf means sha1 (RFC 6070 vector)',
      {
        password_scheme: 'pbkdf2',
        salt: 'salt',
        iterations: 1,
        derived_key: '0c60c80f961f0e71f3a9b524af6012062fe037a6',
      },
    ],
    [
      'pbkdf2 sha256',
      {
        password_scheme: 'pbkdf2',
        pbkdf2_prf: 'sha256',
        salt: 'salt',
        iterations: 1,
        derived_key: '120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b',
      },
    ],
    [
      'legacy simple scheme (no password_scheme)',
      { salt: 'salt', password_sha: 'c88e9c67041a74e0357befdff93f87dde0904214' },
    ],
    [
      'explicit simple scheme',
      { password_scheme: 'simple', salt: 'salt', password_sha: 'c88e9c67041a74e0357befdff93f87dde0904214' },
    ],
    [
      'simple+pbkdf2 upgrade scheme',
      {
        password_scheme: 'simple+pbkdf2',
        salt: 'salt',
        iterations: 2,
        derived_key: 'b4a945c749bb73189ee167cecb3c1bb284110cf0',
      },
    ],
  ];
  for (const [label, stored] of cases) {
    void it(label, async () => {
      assert.equal(verifyPassword(stored, 'password'), true);
      assert.equal(verifyPassword(stored, 'Password'), false);
      assert.equal(verifyPassword(stored, ''), false);
      assert.equal(await verifyPasswordAsync(stored, 'password'), true);
    });
  }

  void it('sha512 with a hex-text salt and a UTF-8 password', () => {
    const stored = {
      password_scheme: 'pbkdf2',
      pbkdf2_prf: 'sha512',
      salt: '0123456789abcdef0123456789abcdef',
      iterations: 3,
      derived_key:
        '7e3c4e91ac8718b156af34848f2ae1083ca11f174a68cdba99a546e6bafce27c' +
        'b7058710807a400263eed3503a2ff777c4eaa860394e6033917ff2b207d1cce4',
    };
    assert.equal(verifyPassword(stored, 'pässword'), true);
    assert.equal(verifyPassword(stored, 'password'), false);
  });
});

void describe('verifyPassword on malformed stored data', () => {
  const good = hashPassword('pw', FAST);
  const malformed: unknown[] = [
    undefined,
    null,
    42,
    'pbkdf2',
    [],
    [good],
    {},
    { ...good, password_scheme: 'bcrypt' },
    { ...good, pbkdf2_prf: 'md5' },
    { ...good, pbkdf2_prf: 'toString' },
    { ...good, pbkdf2_prf: '__proto__' },
    { ...good, iterations: '2' },
    { ...good, iterations: 0 },
    { ...good, iterations: -5 },
    { ...good, iterations: 1.5 },
    { ...good, iterations: 1e12 },
    { ...good, derived_key: 12 },
    { ...good, derived_key: undefined },
    { ...good, derived_key: good.derived_key.slice(1) },
    { ...good, derived_key: good.derived_key.toUpperCase() },
    { ...good, derived_key: 'zz' },
    { ...good, salt: 7 },
    { password_scheme: 'simple', salt: 'salt' },
    { password_scheme: 'simple', password_sha: ['x'], salt: 'salt' },
    Object.create(null) as unknown,
  ];
  for (const [i, stored] of malformed.entries()) {
    void it(`case ${i} is false, never a throw`, async () => {
      assert.equal(verifyPassword(stored, 'pw'), false);
      assert.equal(await verifyPasswordAsync(stored, 'pw'), false);
    });
  }

  void it('a non-string password is false', () => {
    assert.equal(verifyPassword(good, undefined as unknown as string), false);
    assert.equal(verifyPassword(good, { toString: () => 'pw' } as unknown as string), false);
  });
});

void describe('VerifiedCredentialCache', () => {
  void it('serves repeat verifications from the cache', () => {
    const cache = new VerifiedCredentialCache();
    const stored = hashPassword('pw', FAST);
    assert.equal(cache.check('bob', stored, 'pw'), false);
    assert.equal(cache.verify('bob', stored, 'pw'), true);
    assert.equal(cache.size, 1);
    assert.equal(cache.check('bob', stored, 'pw'), true);
  });

  void it('never answers a wrong password from the cache', () => {
    const cache = new VerifiedCredentialCache();
    const stored = hashPassword('pw', FAST);
    cache.verify('bob', stored, 'pw');
    assert.equal(cache.check('bob', stored, 'pw2'), false);
    assert.equal(cache.verify('bob', stored, 'pw2'), false);
    assert.equal(cache.check('alice', stored, 'pw'), false);
  });

  void it('is invalidated by a changed password doc', () => {
    const cache = new VerifiedCredentialCache();
    const before = hashPassword('old', FAST);
    assert.equal(cache.verify('bob', before, 'old'), true);
    const after = hashPassword('new', FAST);
    assert.equal(cache.check('bob', after, 'old'), false);
    assert.equal(cache.verify('bob', after, 'old'), false);
    // Same salt, different derived key (e.g. re-hash with preserve_salt) must not match either.
    assert.equal(cache.check('bob', { ...before, iterations: FAST + 1 }, 'old'), false);
    assert.equal(cache.verify('bob', after, 'new'), true);
    assert.equal(cache.check('bob', before, 'old'), false);
  });

  void it('does not cache failures or malformed docs', async () => {
    const cache = new VerifiedCredentialCache();
    const stored = hashPassword('pw', FAST);
    assert.equal(cache.verify('bob', stored, 'nope'), false);
    assert.equal(await cache.verifyAsync('bob', { junk: true }, 'pw'), false);
    cache.remember('bob', 'not a doc', 'pw');
    assert.equal(cache.size, 0);
  });

  void it('evicts the least recently used entry', async () => {
    const cache = new VerifiedCredentialCache({ maxEntries: 2 });
    const a = hashPassword('a', FAST);
    const b = hashPassword('b', FAST);
    const c = hashPassword('c', FAST);
    assert.equal(await cache.verifyAsync('a', a, 'a'), true);
    assert.equal(await cache.verifyAsync('b', b, 'b'), true);
    assert.equal(cache.check('a', a, 'a'), true); // touches a: b is now oldest
    assert.equal(await cache.verifyAsync('c', c, 'c'), true);
    assert.equal(cache.size, 2);
    assert.equal(cache.check('b', b, 'b'), false);
    assert.equal(cache.check('a', a, 'a'), true);
    assert.equal(cache.check('c', c, 'c'), true);
  });

  void it('forget and clear drop entries', () => {
    const cache = new VerifiedCredentialCache();
    const stored = hashPassword('pw', FAST);
    cache.verify('bob', stored, 'pw');
    cache.verify('amy', stored, 'pw');
    cache.forget('bob');
    assert.equal(cache.check('bob', stored, 'pw'), false);
    assert.equal(cache.check('amy', stored, 'pw'), true);
    cache.clear();
    assert.equal(cache.size, 0);
  });

  void it('rejects a nonsensical bound', () => {
    assert.throws(() => new VerifiedCredentialCache({ maxEntries: 0 }), RangeError);
  });
});

void describe('PBKDF2 turns', () => {
  void it('admits two running and 256 waiting hashes and refuses the next as unavailable', async () => {
    const stored = hashPassword('pw', FAST);
    // Every call below takes or queues for its turn before any hash can finish.
    const accepted = Array.from({ length: 2 + 256 }, () => verifyPasswordAsync(stored, 'pw'));
    const refused = verifyPasswordAsync(stored, 'pw');
    await assert.rejects(
      refused,
      (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.Unavailable,
    );
    assert.deepEqual(new Set(await Promise.all(accepted)), new Set([true]));
    // Turns are handed back: a later check runs normally.
    assert.equal(await verifyPasswordAsync(stored, 'nope'), false);
  });

  void it('never matches the hash that stands in for unknown users, which costs a default hash', async () => {
    assert.equal(UNMATCHABLE_HASH.iterations, DEFAULT_PBKDF2_ITERATIONS);
    assert.equal(UNMATCHABLE_HASH.password_scheme, 'pbkdf2');
    assert.equal(await verifyPasswordAsync(UNMATCHABLE_HASH, ''), false);
  });
});
