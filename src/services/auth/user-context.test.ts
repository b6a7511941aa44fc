import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DoppelError, ErrorKind } from '../../errors.js';
import type { ErrorKind as ErrorKindType } from '../../errors.js';
import { verifyPassword } from './passwords.js';
import {
  DEFAULT_SECURITY,
  anonymousContext,
  defaultSecurityObject,
  isDbAdmin,
  isDbMember,
  isServerAdmin,
  normalizeSecurityObject,
  preparePasswordForStorage,
  preparePasswordForStorageAsync,
  requireDbAdmin,
  requireDbMember,
  requireServerAdmin,
  serverAdminContext,
  validateUserDoc,
} from './user-context.js';
import type { SecurityObject, UserContext } from './user-context.js';

function throwsKind(fn: () => unknown, kind: ErrorKindType, reason?: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DoppelError, `expected DoppelError, got ${String(err)}`);
    assert.equal(err.kind, kind);
    if (typeof reason === 'string') assert.equal(err.reason, reason);
    else if (reason !== undefined) assert.match(err.reason, reason);
    return true;
  });
}

const ctx = (name: string | null, ...roles: string[]): UserContext => ({ name, roles });
const sec = (
  admins: Partial<SecurityObject['admins']> = {},
  members: Partial<SecurityObject['members']> = {},
): SecurityObject => ({
  admins: { names: [], roles: [], ...admins },
  members: { names: [], roles: [], ...members },
});

void describe('normalizeSecurityObject', () => {
  void it('fills missing sections and lists', () => {
    assert.deepEqual(normalizeSecurityObject({}), sec());
    assert.deepEqual(normalizeSecurityObject({ admins: { names: ['a'] } }), sec({ names: ['a'] }));
    assert.deepEqual(
      normalizeSecurityObject({ members: { roles: ['r'] }, cloudant: { x: 1 } }),
      sec({}, { roles: ['r'] }),
    );
  });

  void it('falls back to the pre-1.0 "readers" section', () => {
    assert.deepEqual(normalizeSecurityObject({ readers: { names: ['old'] } }), sec({}, { names: ['old'] }));
    assert.deepEqual(
      normalizeSecurityObject({ members: { names: ['new'] }, readers: { names: ['old'] } }),
      sec({}, { names: ['new'] }),
    );
  });

  const bad: Array<[string, unknown]> = [
    ['null body', null],
    ['array body', []],
    ['string body', 'x'],
    ['admins not an object', { admins: [] }],
    ['members null', { members: null }],
    ['names not a list', { admins: { names: 'bob' } }],
    ['names with a number', { members: { names: ['bob', 1] } }],
    ['roles null', { members: { roles: null } }],
    ['roles with an object', { admins: { roles: [{}] } }],
  ];
  for (const [label, body] of bad) {
    void it(`rejects ${label} as bad_request`, () => {
      throwsKind(() => normalizeSecurityObject(body), ErrorKind.BadRequest);
    });
  }

  void it('copies the lists rather than aliasing the input', () => {
    const names = ['a'];
    const out = normalizeSecurityObject({ admins: { names } });
    names.push('b');
    assert.deepEqual(out.admins.names, ['a']);
  });
});

void describe('security semantics', () => {
  const admin = serverAdminContext('root');
  const anon = anonymousContext();
  const alice = ctx('alice');
  const bob = ctx('bob', 'staff');
  const carol = ctx('carol', 'ops', 'staff');

  const restricted = sec({ names: ['alice'], roles: ['ops'] }, { names: ['bob'], roles: ['readers'] });
  const publicDb = sec({ names: ['alice'] });
  const roleMembers = sec({}, { roles: ['staff'] });

  const table: Array<[string, UserContext, SecurityObject | null, { admin: boolean; member: boolean }]> = [
    ['server admin, restricted db', admin, restricted, { admin: true, member: true }],
    ['server admin, no security object', admin, null, { admin: true, member: true }],
    ['server admin, default object', admin, defaultSecurityObject(), { admin: true, member: true }],
    ['db admin by name', alice, restricted, { admin: true, member: true }],
    ['db admin by role', carol, restricted, { admin: true, member: true }],
    ['member by name', bob, restricted, { admin: false, member: true }],
    ['member by role', bob, roleMembers, { admin: false, member: true }],
    ['outsider', ctx('dave', 'misc'), restricted, { admin: false, member: false }],
    ['anonymous, restricted db', anon, restricted, { admin: false, member: false }],
    ['anonymous, empty members = public', anon, publicDb, { admin: false, member: true }],
    ['named user, empty members = public', bob, publicDb, { admin: false, member: true }],
    ['anonymous, fully empty object = public', anon, sec(), { admin: false, member: true }],
    ['named user, no security object = admin only', alice, null, { admin: false, member: false }],
    ['anonymous, no security object = admin only', anon, null, { admin: false, member: false }],
    [
      'named user, default object = admin only',
      alice,
      defaultSecurityObject(),
      { admin: false, member: false },
    ],
    [
      'name list does not match roles',
      ctx('readers'),
      sec({}, { roles: ['readers'] }),
      { admin: false, member: false },
    ],
    [
      'role list does not match names',
      ctx('x', 'bob'),
      sec({}, { names: ['bob'] }),
      { admin: false, member: false },
    ],
    ['null name never matches', ctx(null), sec({}, { names: ['null'] }), { admin: false, member: false }],
  ];
  for (const [label, user, security, expected] of table) {
    void it(label, () => {
      assert.equal(isDbAdmin(user, security), expected.admin, 'isDbAdmin');
      assert.equal(isDbMember(user, security), expected.member, 'isDbMember');
    });
  }

  void it('describes the default', () => {
    assert.equal(DEFAULT_SECURITY, 'admin_only');
    assert.deepEqual(defaultSecurityObject(), sec({ roles: ['_admin'] }, { roles: ['_admin'] }));
    assert.notEqual(defaultSecurityObject(), defaultSecurityObject());
  });

  void it('isServerAdmin looks only at the _admin role', () => {
    assert.equal(isServerAdmin(admin), true);
    assert.equal(isServerAdmin(ctx('_admin')), false);
    assert.equal(isServerAdmin(alice), false);
  });

  void it('require* throw the CouchDB error kinds', () => {
    requireServerAdmin(admin);
    throwsKind(() => requireServerAdmin(alice), ErrorKind.Unauthorized, 'You are not a server admin.');
    requireDbAdmin(alice, restricted);
    throwsKind(() => requireDbAdmin(anon, restricted), ErrorKind.Unauthorized);
    throwsKind(
      () => requireDbAdmin(bob, restricted),
      ErrorKind.Forbidden,
      'You are not a db or server admin.',
    );
    requireDbMember(bob, restricted);
    throwsKind(() => requireDbMember(anon, restricted), ErrorKind.Unauthorized);
    throwsKind(() => requireDbMember(ctx('dave'), restricted), ErrorKind.Forbidden);
  });
});

void describe('validateUserDoc', () => {
  const admin = serverAdminContext('root');
  const anon = anonymousContext();
  const joe = ctx('joe');
  const userDoc = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    _id: 'org.couchdb.user:joe',
    type: 'user',
    name: 'joe',
    roles: [],
    password: 'pw',
    ...over,
  });
  const stored = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    _id: 'org.couchdb.user:joe',
    _rev: '1-a',
    type: 'user',
    name: 'joe',
    roles: ['reader'],
    password_scheme: 'pbkdf2',
    pbkdf2_prf: 'sha256',
    iterations: 2,
    salt: 'abc',
    derived_key: 'def',
    ...over,
  });

  void it('lets anonymous users sign up, and users update themselves', () => {
    validateUserDoc(userDoc(), null, anon);
    validateUserDoc(userDoc({ roles: ['reader'] }), stored(), joe);
    validateUserDoc(userDoc({ roles: ['reader'], password: undefined }), stored(), joe);
    validateUserDoc(stored({ roles: ['reader', 'x'] }), stored(), admin);
  });

  void it('accepts an already hashed doc', () => {
    validateUserDoc(stored({ roles: [] }), null, anon);
  });

  const forbiddenCases: Array<[string, unknown, unknown, UserContext, string | RegExp]> = [
    ['wrong type', userDoc({ type: 'person' }), null, anon, 'doc.type must be user'],
    ['missing name', userDoc({ name: undefined }), null, anon, 'doc.name is required'],
    ['empty name', userDoc({ name: '' }), null, anon, 'doc.name is required'],
    ['numeric name', userDoc({ name: 5 }), null, anon, 'doc.name is required'],
    ['missing roles', userDoc({ roles: undefined }), null, anon, 'doc.roles must exist'],
    ['roles not an array', userDoc({ roles: 'admin' }), null, anon, 'doc.roles must be an array'],
    ['non-string role', userDoc({ roles: [1] }), null, admin, 'doc.roles can only contain strings'],
    ['id/name mismatch', userDoc({ _id: 'org.couchdb.user:jim' }), null, anon, /Doc ID must be/],
    ['id without prefix', userDoc({ _id: 'joe' }), null, anon, /Doc ID must be/],
    [
      'rename',
      stored({ name: 'jim', _id: 'org.couchdb.user:jim' }),
      stored(),
      admin,
      'Usernames can not be changed.',
    ],
    ['anonymous sets roles', userDoc({ roles: ['x'] }), null, anon, 'Only _admin may set roles'],
    ['user brings a costly hash', stored({ iterations: 1e9 }), stored(), joe, /Only admins may store a hash/],
    [
      'signup with a costly hash',
      stored({ iterations: 1e9, roles: [] }),
      null,
      anon,
      /Only admins may store/,
    ],
    [
      'user edits own roles',
      userDoc({ roles: ['reader', 'boss'] }),
      stored(),
      joe,
      'Only _admin may edit roles',
    ],
    ['user drops own role', userDoc({ roles: [] }), stored(), joe, 'Only _admin may edit roles'],
    ['anonymous updates a user', userDoc({ roles: ['reader'] }), stored(), anon, /only update your own/],
    ['system role', userDoc({ roles: ['_admin'] }), null, admin, /No system roles/],
    ['underscore name', userDoc({ _id: 'org.couchdb.user:_joe', name: '_joe' }), null, anon, /underscore/],
    [
      'colon in name',
      userDoc({ _id: 'org.couchdb.user:a:b', name: 'a:b' }),
      null,
      anon,
      /`:` is not allowed/,
    ],
    [
      'unknown scheme',
      stored({ password_scheme: 'bcrypt', roles: [] }),
      null,
      anon,
      /`bcrypt` not supported/,
    ],
    ['pbkdf2 without iterations', stored({ iterations: undefined, roles: [] }), null, anon, /iterations/],
    ['pbkdf2 without derived_key', stored({ derived_key: 1, roles: [] }), null, anon, /derived_key/],
    [
      'password_sha without salt',
      { ...userDoc({ password: undefined, password_sha: 'x' }) },
      null,
      anon,
      /salt/,
    ],
    ['anonymous delete', { ...stored(), _deleted: true }, stored(), anon, /Only admins may delete/],
  ];
  for (const [label, doc, existing, user, reason] of forbiddenCases) {
    void it(`forbids: ${label}`, () => {
      throwsKind(() => validateUserDoc(doc, existing, user), ErrorKind.Forbidden, reason);
    });
  }

  void it('allows the _metrics system role (set by an admin)', () => {
    validateUserDoc(userDoc({ roles: ['_metrics'] }), null, admin);
  });

  void it("hides other users' docs from logged-in non-admins (404)", () => {
    throwsKind(() => validateUserDoc(userDoc(), null, ctx('eve')), ErrorKind.NotFound);
    throwsKind(() => validateUserDoc(userDoc(), stored(), ctx('eve')), ErrorKind.NotFound);
    throwsKind(
      () => validateUserDoc({ ...stored(), _deleted: true }, stored(), ctx('eve')),
      ErrorKind.NotFound,
    );
  });

  void it('lets owners and admins delete without field checks', () => {
    validateUserDoc({ _id: 'org.couchdb.user:joe', _deleted: true }, stored(), joe);
    validateUserDoc({ _id: 'org.couchdb.user:joe', _deleted: true }, stored(), admin);
    throwsKind(
      () => validateUserDoc({ _id: 'org.couchdb.user:joe', _deleted: true }, { name: 'other' }, joe),
      ErrorKind.Forbidden,
    );
  });

  void it('treats admins of the users db like server admins', () => {
    const usersSec = sec({ roles: ['useradmins'] });
    const manager = ctx('mgr', 'useradmins');
    validateUserDoc(userDoc({ roles: ['reader'] }), null, manager, usersSec);
    throwsKind(() => validateUserDoc(userDoc({ roles: ['reader'] }), null, manager), ErrorKind.NotFound);
  });

  void it('design docs need an admin and skip the user rules', () => {
    validateUserDoc({ _id: '_design/_auth', validate_doc_update: 'function(){}' }, null, admin);
    throwsKind(() => validateUserDoc({ _id: '_design/x' }, null, anon), ErrorKind.Unauthorized);
    throwsKind(() => validateUserDoc({ _id: '_design/x' }, null, joe), ErrorKind.NotFound);
  });

  void it('rejects non-object docs as bad_request and never throws anything else', () => {
    for (const junk of [null, 1, 'doc', [], undefined]) {
      throwsKind(() => validateUserDoc(junk, null, anon), ErrorKind.BadRequest);
    }
    for (const junk of [{}, { _id: 1 }, { _id: null, name: {} }, { type: 'user', name: 'x', roles: {} }]) {
      assert.throws(() => validateUserDoc(junk, 'garbage', anon), DoppelError);
    }
  });
});

void describe('preparePasswordForStorage', () => {
  const doc = {
    _id: 'org.couchdb.user:joe',
    type: 'user',
    name: 'joe',
    roles: [],
    password: 'pw',
    password_sha: 'stale',
    derived_key: 'stale',
  };

  void it('replaces the plaintext with pbkdf2 fields', async () => {
    for (const out of [
      preparePasswordForStorage(doc, { iterations: 2 }),
      await preparePasswordForStorageAsync(doc, { iterations: 2 }),
    ]) {
      assert.equal('password' in out, false);
      assert.equal('password_sha' in out, false);
      assert.equal(out['password_scheme'], 'pbkdf2');
      assert.equal(out['pbkdf2_prf'], 'sha256');
      assert.equal(out['iterations'], 2);
      assert.equal(out['name'], 'joe');
      assert.equal(verifyPassword(out, 'pw'), true);
      assert.equal(verifyPassword(out, 'px'), false);
      validateUserDoc(out, null, anonymousContext());
    }
    assert.equal(doc.password, 'pw', 'input is not mutated');
  });

  void it('keeps the salt only when preserve_salt is set', () => {
    const kept = preparePasswordForStorage(
      { ...doc, salt: 'oldsalt', preserve_salt: true },
      { iterations: 2 },
    );
    assert.equal(kept['salt'], 'oldsalt');
    assert.equal('preserve_salt' in kept, false);
    const fresh = preparePasswordForStorage({ ...doc, salt: 'oldsalt' }, { iterations: 2 });
    assert.notEqual(fresh['salt'], 'oldsalt');
  });

  void it('leaves docs without a password alone', () => {
    const hashed = { name: 'joe', salt: 's', derived_key: 'k' };
    assert.deepEqual(preparePasswordForStorage(hashed), hashed);
    assert.deepEqual(preparePasswordForStorage({ name: 'joe', password: null }), {
      name: 'joe',
      password: null,
    });
  });

  void it('refuses a non-string password', () => {
    throwsKind(() => preparePasswordForStorage({ ...doc, password: 123 }), ErrorKind.Forbidden);
  });
});
