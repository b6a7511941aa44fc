/**
 * End-to-end tour of the CouchDB API surface over real HTTP against a Doppel
 * node running as a child process: response shapes and status codes as
 * CouchDB 3.x gives them, and bad input that must be refused without writing
 * anything.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  basicAuth,
  DoppelProcess,
  fetchJson,
  makeTempDir,
  removeTempDir,
  type FetchJsonInit,
  type JsonResponse,
} from './support/doppel-process.js';
import { LineStream } from './support/http-stream.js';

// ---- response shapes ---------------------------------------------------------

type Doc = Record<string, unknown> & { _id: string; _rev: string };

interface ErrorBody {
  error: string;
  reason: string;
}

interface WriteOk {
  ok: true;
  id: string;
  rev: string;
}

interface DbInfo {
  db_name: string;
  update_seq: number;
  doc_count: number;
  doc_del_count: number;
  purge_seq: number;
  instance_start_time: string;
  sizes: { active: number; external: number; file: number };
  compact_running: boolean;
}

interface ChangeRow {
  seq: number;
  id: string;
  changes: { rev: string }[];
  deleted?: boolean;
  doc?: Doc;
}

interface ChangesBody {
  results: ChangeRow[];
  last_seq: number;
  pending: number;
}

interface AllDocsRow {
  id?: string;
  key: string;
  value?: { rev: string; deleted?: boolean };
  doc?: Doc | null;
  error?: string;
}

interface AllDocsBody {
  total_rows: number;
  offset: number;
  rows: AllDocsRow[];
}

interface Attachment {
  content_type: string;
  revpos: number;
  digest: string;
  length?: number;
  stub?: boolean;
  data?: string;
}

interface RevsInfo {
  rev: string;
  status: 'available' | 'missing' | 'deleted';
}

interface DbUpdates {
  results: { db_name: string; type: string; seq: number | string }[];
  last_seq: number | string;
}

// ---- helpers -----------------------------------------------------------------

let node: DoppelProcess;

const md5 = (data: Buffer | string): string => `md5-${createHash('md5').update(data).digest('base64')}`;
const hex32 = (seed: string): string => createHash('md5').update(seed).digest('hex');

function api<T = unknown>(path: string, init: FetchJsonInit = {}): Promise<JsonResponse<T>> {
  return node.request<T>(path, init);
}

/** A request that must answer `status`; returns the JSON body. */
async function expectOk<T>(path: string, init: FetchJsonInit = {}, status = 200): Promise<T> {
  const res = await api<T>(path, init);
  assert.equal(
    res.status,
    status,
    `${init.method ?? 'GET'} ${path}: ${res.status} ${res.text.slice(0, 500)}`,
  );
  return res.json;
}

/** CouchDB's error shape: `{error, reason}` with the given status (and error name, if given). */
function assertError(res: JsonResponse<unknown>, status: number, error?: string, label = ''): void {
  assert.equal(
    res.status,
    status,
    `${label} expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`,
  );
  const body = res.json as Partial<ErrorBody> | undefined;
  assert.equal(typeof body?.error, 'string', `${label} error body: ${res.text}`);
  assert.equal(typeof body?.reason, 'string', `${label} error body: ${res.text}`);
  if (error !== undefined) assert.equal(body?.error, error, `${label} error name (${res.text})`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${label} error content-type`);
}

async function createDb(name: string): Promise<void> {
  const res = await api<{ ok: boolean }>(`/${encodeURIComponent(name)}`, { method: 'PUT' });
  assert.equal(res.status, 201, `PUT /${name}: ${res.text}`);
  assert.deepEqual(res.json, { ok: true });
}

async function putDoc(db: string, id: string, body: Record<string, unknown>, query = ''): Promise<string> {
  const res = await api<WriteOk>(`/${db}/${encodeURIComponent(id)}${query}`, { method: 'PUT', body });
  assert.equal(res.status, 201, `PUT /${db}/${id}${query}: ${res.status} ${res.text}`);
  assert.equal(res.json.ok, true);
  assert.equal(res.json.id, id);
  assert.match(res.json.rev, /^\d+-[0-9a-f]{32}$/);
  return res.json.rev;
}

async function getDoc<T = Doc>(db: string, id: string, query = ''): Promise<T> {
  return expectOk<T>(`/${db}/${encodeURIComponent(id)}${query}`);
}

async function dbInfo(db: string): Promise<DbInfo> {
  return expectOk<DbInfo>(`/${encodeURIComponent(db)}`);
}

/** Runs `action` (bad requests) and asserts the database changed in no way. */
async function writesNothing(db: string, action: () => Promise<void>): Promise<void> {
  const before = await dbInfo(db);
  await action();
  const after = await dbInfo(db);
  assert.equal(after.update_seq, before.update_seq, `${db}: update_seq moved`);
  assert.equal(after.doc_count, before.doc_count, `${db}: doc_count moved`);
  assert.equal(after.doc_del_count, before.doc_del_count, `${db}: doc_del_count moved`);
}

const q = (value: unknown): string => encodeURIComponent(JSON.stringify(value));
const revPos = (rev: string): number => Number(rev.split('-')[0]);

function cookieFrom(res: JsonResponse<unknown>): string {
  const header = res.headers.get('set-cookie');
  assert.ok(header !== null, 'a Set-Cookie header');
  const match = /(?:^|,\s*)AuthSession=([^;]*)/.exec(header);
  assert.ok(match !== null, `an AuthSession cookie in ${header}`);
  return `AuthSession=${match[1]}`;
}

// ---- the tour ------------------------------------------------------------------

void describe('CouchDB HTTP API', () => {
  before(async () => {
    node = await DoppelProcess.start();
  });

  after(async () => {
    // Open feeds were aborted by their clients: a graceful stop must still be quick and clean.
    const status = await node?.stop();
    assert.equal(status?.code, 0, `graceful stop (SIGTERM) exit status ${JSON.stringify(status)}`);
  });

  void describe('server', () => {
    void it('GET / welcomes anyone', async () => {
      const res = await fetchJson<Record<string, unknown>>(`${node.url}/`);
      assert.equal(res.status, 200);
      assert.equal(res.json['couchdb'], 'Welcome');
      assert.match(String(res.json['version']), /^\d+\.\d+\.\d+/);
      assert.match(String(res.json['uuid']), /^[0-9a-f]{32}$/);
      assert.equal(typeof (res.json['vendor'] as { name?: unknown }).name, 'string');
      assert.ok(Array.isArray(res.json['features']), "Array.isArray(res.json['features'])");
    });

    void it('GET /_up answers anyone', async () => {
      const res = await fetchJson<{ status: string }>(`${node.url}/_up`);
      assert.equal(res.status, 200);
      assert.equal(res.json.status, 'ok');
    });

    void it('GET /_uuids', async () => {
      const one = await expectOk<{ uuids: string[] }>('/_uuids');
      assert.equal(one.uuids.length, 1);
      const many = await expectOk<{ uuids: string[] }>('/_uuids?count=5');
      assert.equal(many.uuids.length, 5);
      assert.equal(new Set(many.uuids).size, 5);
      for (const u of many.uuids) assert.match(u, /^[0-9a-f]{32}$/);
      assertError(await api('/_uuids?count=abc'), 400, 'query_parse_error');
    });

    void it('GET /_all_dbs lists the databases in order', async () => {
      await createDb('zz-last');
      await createDb('aa-first');
      const dbs = await expectOk<string[]>('/_all_dbs');
      assert.ok(dbs.includes('_users') && dbs.includes('_replicator'), JSON.stringify(dbs));
      assert.ok(
        dbs.includes('aa-first') && dbs.includes('zz-last'),
        "dbs.includes('aa-first') && dbs.includes('zz-last')",
      );
      assert.deepEqual(dbs, [...dbs].sort());
      const limited = await expectOk<string[]>('/_all_dbs?limit=1&skip=1');
      assert.deepEqual(limited, [dbs[1]]);
      const descending = await expectOk<string[]>('/_all_dbs?descending=true');
      assert.deepEqual(descending, [...dbs].reverse());
    });

    void it('anonymous requests get 401 unauthorized; wrong credentials too', async () => {
      const anonymous = await fetchJson(`${node.url}/_all_dbs`);
      assertError(anonymous, 401, 'unauthorized');
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic/i);
      assertError(await fetchJson(`${node.url}/aa-first`), 401, 'unauthorized');
      assertError(
        await fetchJson(`${node.url}/aa-first`, { auth: basicAuth('admin', 'wrong') }),
        401,
        'unauthorized',
      );
      assertError(
        await fetchJson(`${node.url}/aa-first/doc`, { method: 'PUT', body: { a: 1 } }),
        401,
        'unauthorized',
      );
      assert.equal((await dbInfo('aa-first')).update_seq, 0);
      // The public paths are public to read only: a database named like one is not.
      assertError(
        await fetchJson(`${node.url}/ping`, { method: 'POST', body: { a: 1 } }),
        401,
        'unauthorized',
        'POST /ping',
      );
      assert.equal((await fetchJson(`${node.url}/_up`)).status, 200);
    });
  });

  void describe('sessions', () => {
    void it('POST /_session (form) gives an AuthSession cookie that authenticates', async () => {
      const form = `name=${encodeURIComponent(node.adminUser)}&password=${encodeURIComponent(node.adminPassword)}`;
      const res = await fetchJson<{ ok: boolean; name: string; roles: string[] }>(`${node.url}/_session`, {
        method: 'POST',
        body: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { ok: true, name: node.adminUser, roles: ['_admin'] });
      const cookie = cookieFrom(res);
      const session = await fetchJson<{
        ok: boolean;
        userCtx: { name: string; roles: string[] };
        info: Record<string, unknown>;
      }>(`${node.url}/_session`, { headers: { cookie } });
      assert.equal(session.status, 200);
      assert.deepEqual(session.json.userCtx, { name: node.adminUser, roles: ['_admin'] });
      assert.equal(session.json.info['authenticated'], 'cookie');
      const dbs = await fetchJson<string[]>(`${node.url}/_all_dbs`, { headers: { cookie } });
      assert.equal(dbs.status, 200, dbs.text);
      assert.ok(dbs.json.includes('_users'), "dbs.json.includes('_users')");
    });

    void it('POST /_session (JSON) works too; bad passwords get 401', async () => {
      const res = await fetchJson<{ ok: boolean; name: string }>(`${node.url}/_session`, {
        method: 'POST',
        body: { name: node.adminUser, password: node.adminPassword },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.name, node.adminUser);
      const cookie = cookieFrom(res);
      assert.equal((await fetchJson(`${node.url}/aa-first`, { headers: { cookie } })).status, 200);
      const bad = await fetchJson(`${node.url}/_session`, {
        method: 'POST',
        body: { name: node.adminUser, password: 'nope' },
      });
      assertError(bad, 401, 'unauthorized');
    });

    void it('GET /_session reports who is asking and how', async () => {
      const anonymous = await fetchJson<{ ok: boolean; userCtx: { name: unknown; roles: unknown } }>(
        `${node.url}/_session`,
      );
      assert.equal(anonymous.status, 200);
      assert.deepEqual(anonymous.json.userCtx, { name: null, roles: [] });
      const basic = await expectOk<{
        userCtx: { name: string };
        info: { authenticated?: string; authentication_handlers: string[] };
      }>('/_session');
      assert.equal(basic.userCtx.name, node.adminUser);
      assert.ok(
        basic.info.authentication_handlers.includes('cookie'),
        "basic.info.authentication_handlers.includes('cookie')",
      );
      // CouchDB names the handler that authenticated the request: basic auth is "default".
      assert.equal(basic.info.authenticated, 'default', 'basic-auth session info.authenticated');
    });

    void it('DELETE /_session clears the cookie', async () => {
      const res = await fetchJson<{ ok: boolean }>(`${node.url}/_session`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { ok: true });
      const header = res.headers.get('set-cookie') ?? '';
      assert.match(header, /AuthSession=;/);
      assert.match(header, /Max-Age=0|Expires=Thu, 01 Jan 1970/i);
    });
  });

  void describe('users and security', () => {
    const alice = { name: 'alice', password: 'alice-pw' };
    const bob = { name: 'bob', password: 'bob-pw' };
    const asAlice = basicAuth(alice.name, alice.password);
    const asBob = basicAuth(bob.name, bob.password);

    before(async () => {
      for (const [user, roles] of [
        [alice, ['writer']],
        [bob, ['reader']],
      ] as const) {
        const res = await api<WriteOk>(`/_users/org.couchdb.user:${user.name}`, {
          method: 'PUT',
          body: { name: user.name, password: user.password, roles, type: 'user' },
        });
        assert.equal(res.status, 201, res.text);
        assert.equal(res.json.id, `org.couchdb.user:${user.name}`);
      }
      await createDb('secure');
      await putDoc('secure', 'existing', { secret: true });
    });

    void it('stores only a password hash', async () => {
      const doc = await getDoc<Record<string, unknown>>('_users', 'org.couchdb.user:alice');
      assert.equal(doc['password'], undefined);
      assert.equal(typeof doc['derived_key'], 'string');
      assert.equal(typeof doc['salt'], 'string');
      assert.equal(typeof doc['password_scheme'], 'string');
      assert.deepEqual(doc['roles'], ['writer']);
    });

    void it('the user can log in (basic and cookie) with their roles', async () => {
      const session = await fetchJson<{ userCtx: { name: string; roles: string[] } }>(
        `${node.url}/_session`,
        { auth: asAlice },
      );
      assert.equal(session.status, 200);
      assert.deepEqual(session.json.userCtx, { name: 'alice', roles: ['writer'] });
      const login = await fetchJson<{ ok: boolean; name: string; roles: string[] }>(`${node.url}/_session`, {
        method: 'POST',
        body: alice,
      });
      assert.equal(login.status, 200, login.text);
      assert.deepEqual(login.json, { ok: true, name: 'alice', roles: ['writer'] });
      const viaCookie = await fetchJson<{ userCtx: { name: string } }>(`${node.url}/_session`, {
        headers: { cookie: cookieFrom(login) },
      });
      assert.equal(viaCookie.json.userCtx.name, 'alice');
    });

    void it('users read their own user document, cannot raise their roles, cannot read others', async () => {
      const own = await fetchJson<Doc & { roles: string[] }>(`${node.url}/_users/org.couchdb.user:alice`, {
        auth: asAlice,
      });
      assert.equal(own.status, 200, own.text);
      assert.deepEqual(own.json.roles, ['writer']);
      const escalate = await fetchJson(`${node.url}/_users/org.couchdb.user:alice`, {
        auth: asAlice,
        method: 'PUT',
        body: { ...own.json, roles: ['writer', '_admin'] },
      });
      assertError(escalate, 403, 'forbidden', 'raising own roles');
      // A hash at a cost of her choosing would make each failed login as alice take minutes.
      const costly = await fetchJson(`${node.url}/_users/org.couchdb.user:alice`, {
        auth: asAlice,
        method: 'PUT',
        body: { ...own.json, iterations: 1_000_000_000 },
      });
      assertError(costly, 403, 'forbidden', 'choosing her own hash cost');
      const profile = await fetchJson(`${node.url}/_users/org.couchdb.user:alice`, {
        auth: asAlice,
        method: 'PUT',
        body: { ...own.json, city: 'Oslo' },
      });
      assert.equal(profile.status, 201, `updating her profile: ${profile.text}`);
      // A replicated-style write would leave a hidden branch that deleting the winner revives.
      const branch = await fetchJson(`${node.url}/_users/org.couchdb.user:alice?new_edits=false`, {
        auth: asAlice,
        method: 'PUT',
        body: { ...own.json, _rev: '1-0123456789abcdef0123456789abcdef', password: 'x' },
      });
      assertError(branch, 403, 'forbidden', 'new_edits=false into _users');
      const bulk = await fetchJson(`${node.url}/_users/_bulk_docs`, {
        auth: asAlice,
        method: 'POST',
        body: { new_edits: false, docs: [{ ...own.json, _rev: '1-0123456789abcdef0123456789abcdef' }] },
      });
      assertError(bulk, 403, 'forbidden', 'new_edits=false into _users via _bulk_docs');
      const other = await fetchJson(`${node.url}/_users/org.couchdb.user:bob`, { auth: asAlice });
      assert.ok(
        other.status === 403 || other.status === 404,
        `reading another user's document: ${other.status}`,
      );
      const session = await fetchJson<{ userCtx: { roles: string[] } }>(`${node.url}/_session`, {
        auth: asAlice,
      });
      assert.deepEqual(session.json.userCtx.roles, ['writer']);
    });

    void it('non-members get 403 forbidden on an admin-only database; server-admin routes 401', async () => {
      assertError(await fetchJson(`${node.url}/secure`, { auth: asAlice }), 403, 'forbidden');
      assertError(await fetchJson(`${node.url}/secure/existing`, { auth: asAlice }), 403, 'forbidden');
      assertError(
        await fetchJson(`${node.url}/secure/new`, { auth: asAlice, method: 'PUT', body: {} }),
        403,
        'forbidden',
      );
      assertError(await fetchJson(`${node.url}/_all_dbs`, { auth: asAlice }), 401, 'unauthorized');
      assertError(
        await fetchJson(`${node.url}/newdb`, { auth: asAlice, method: 'PUT' }),
        401,
        'unauthorized',
      );
      // Attachment writes check membership before looking at the document (no 409 vs 404 probing).
      for (const path of ['/secure/existing/a.txt', '/secure/nothere/a.txt']) {
        const put = await fetchJson(`${node.url}${path}`, {
          auth: asAlice,
          method: 'PUT',
          body: 'x',
          headers: { 'content-type': 'text/plain' },
        });
        assertError(put, 403, 'forbidden', `PUT ${path}`);
        const del = await fetchJson(`${node.url}${path}?rev=1-abc`, { auth: asAlice, method: 'DELETE' });
        assertError(del, 403, 'forbidden', `DELETE ${path}`);
      }
      assert.equal((await dbInfo('secure')).doc_count, 1);
    });

    void it('members listed in _security get access; roles work too', async () => {
      const security = await expectOk<Record<string, unknown>>('/secure/_security');
      assert.ok('members' in security && 'admins' in security, JSON.stringify(security));
      const put = await api<{ ok: boolean }>('/secure/_security', {
        method: 'PUT',
        body: { admins: { names: [], roles: [] }, members: { names: ['alice'], roles: ['reader'] } },
      });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.json, { ok: true });
      const stored = await expectOk<{ members: { names: string[]; roles: string[] } }>('/secure/_security');
      assert.deepEqual(stored.members, { names: ['alice'], roles: ['reader'] });

      const info = await fetchJson<DbInfo>(`${node.url}/secure`, { auth: asAlice });
      assert.equal(info.status, 200, info.text);
      assert.equal(info.json.db_name, 'secure');
      const write = await fetchJson<WriteOk>(`${node.url}/secure/by-alice`, {
        auth: asAlice,
        method: 'PUT',
        body: { v: 1 },
      });
      assert.equal(write.status, 201, write.text);
      const read = await fetchJson<Doc>(`${node.url}/secure/by-alice`, { auth: asBob });
      assert.equal(read.status, 200, read.text);
      assert.equal(read.json['v'], 1);
    });

    void it('members cannot write design documents or _security (403)', async () => {
      await writesNothing('secure', async () => {
        const ddoc = await fetchJson(`${node.url}/secure/_design/app`, {
          auth: asAlice,
          method: 'PUT',
          body: { filters: {} },
        });
        assertError(ddoc, 403, 'forbidden');
        const viaBulk = await fetchJson(`${node.url}/secure/_bulk_docs`, {
          auth: asAlice,
          method: 'POST',
          body: { docs: [{ _id: '_design/app', filters: {} }] },
        });
        assert.ok(viaBulk.status === 403 || viaBulk.status === 201, `bulk design write: ${viaBulk.status}`);
        if (viaBulk.status === 201) {
          const rows = viaBulk.json as { error?: string }[];
          assert.equal(rows[0]?.error, 'forbidden', viaBulk.text);
        }
        const sec = await fetchJson(`${node.url}/secure/_security`, {
          auth: asAlice,
          method: 'PUT',
          body: { members: {} },
        });
        assertError(sec, 403, 'forbidden');
      });
    });
  });

  void describe('databases', () => {
    void it('PUT, GET, HEAD and DELETE a database', async () => {
      const put = await api<{ ok: boolean }>('/lifecycle', { method: 'PUT' });
      assert.equal(put.status, 201);
      assert.deepEqual(put.json, { ok: true });
      assert.match(put.headers.get('location') ?? '', /\/lifecycle$/);
      assertError(await api('/lifecycle', { method: 'PUT' }), 412, 'file_exists');

      const info = await dbInfo('lifecycle');
      assert.equal(info.db_name, 'lifecycle');
      assert.equal(info.update_seq, 0);
      assert.equal(info.doc_count, 0);
      assert.equal(info.doc_del_count, 0);
      assert.equal(info.purge_seq, 0);
      assert.equal(info.instance_start_time, '0');
      assert.equal(typeof info.sizes.active, 'number');
      assert.equal(info.compact_running, false);

      const head = await fetch(`${node.url}/lifecycle`, {
        method: 'HEAD',
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      const headMissing = await fetch(`${node.url}/no-such-db`, {
        method: 'HEAD',
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(headMissing.status, 404);

      assertError(await api('/lifecycle?rev=1-abc', { method: 'DELETE' }), 400);
      const del = await api<{ ok: boolean }>('/lifecycle', { method: 'DELETE' });
      assert.equal(del.status, 200);
      assert.deepEqual(del.json, { ok: true });
      assertError(await api('/lifecycle'), 404, 'not_found');
      assertError(await api('/lifecycle', { method: 'DELETE' }), 404, 'not_found');
      assert.ok(
        !(await expectOk<string[]>('/_all_dbs')).includes('lifecycle'),
        "!(await expectOk<string[]>('/_all_dbs')).includes('lifecycle')",
      );
    });

    void it('a recreated database starts empty', async () => {
      await createDb('phoenix');
      await putDoc('phoenix', 'old', { v: 1 });
      await expectOk('/phoenix', { method: 'DELETE' });
      await createDb('phoenix');
      const info = await dbInfo('phoenix');
      assert.equal(info.doc_count, 0);
      assert.equal(info.update_seq, 0);
      assertError(await api('/phoenix/old'), 404, 'not_found');
    });

    void it('database names: CouchDB rules, slashes encoded', async () => {
      assertError(await api('/Upper', { method: 'PUT' }), 400, 'illegal_database_name');
      assertError(await api('/1digit', { method: 'PUT' }), 400, 'illegal_database_name');
      assertError(await api('/_private', { method: 'PUT' }), 400, 'illegal_database_name');
      await createDb('team/a$b(c)+d-e_f');
      const info = await dbInfo('team/a$b(c)+d-e_f');
      assert.equal(info.db_name, 'team/a$b(c)+d-e_f');
      await putDoc(encodeURIComponent('team/a$b(c)+d-e_f'), 'x', { v: 1 });
      assert.ok(
        (await expectOk<string[]>('/_all_dbs')).includes('team/a$b(c)+d-e_f'),
        "(await expectOk<string[]>('/_all_dbs')).includes('team/a$b(c)+d-e_f')",
      );
    });

    void it('POST /db creates a document with a generated id', async () => {
      await createDb('posted');
      const res = await api<WriteOk>('/posted', { method: 'POST', body: { v: 1 } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.ok, true);
      assert.match(res.json.id, /^[0-9a-f]{32}$/);
      assert.match(res.json.rev, /^1-[0-9a-f]{32}$/);
      const doc = await getDoc('posted', res.json.id);
      assert.equal(doc['v'], 1);
      const named = await api<WriteOk>('/posted', { method: 'POST', body: { _id: 'chosen', v: 2 } });
      assert.equal(named.status, 201, named.text);
      assert.equal(named.json.id, 'chosen');
      assertError(await api('/posted', { method: 'POST', body: { _id: 'chosen', v: 3 } }), 409, 'conflict');
      assert.equal((await dbInfo('posted')).doc_count, 2);
    });
  });

  void describe('documents', () => {
    const db = 'docs';
    let r1 = '';
    let r2 = '';
    let r3 = '';

    before(async () => {
      await createDb(db);
    });

    void it('PUT, GET and HEAD a document; ETags; updates need the current rev', async () => {
      const created = await api<WriteOk>(`/${db}/doc`, {
        method: 'PUT',
        body: { v: 1, nested: { a: [1, 'two', null] } },
      });
      assert.equal(created.status, 201);
      r1 = created.json.rev;
      assert.match(r1, /^1-[0-9a-f]{32}$/);
      assert.equal(created.headers.get('etag'), `"${r1}"`);

      const got = await api<Doc>(`/${db}/doc`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.json, { _id: 'doc', _rev: r1, v: 1, nested: { a: [1, 'two', null] } });
      assert.equal(got.headers.get('etag'), `"${r1}"`);

      const head = await fetch(`${node.url}/${db}/doc`, {
        method: 'HEAD',
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('etag'), `"${r1}"`);
      assert.equal(await head.text(), '');

      await writesNothing(db, async () => {
        assertError(await api(`/${db}/doc`, { method: 'PUT', body: { v: 2 } }), 409, 'conflict');
        assertError(
          await api(`/${db}/doc`, { method: 'PUT', body: { v: 2, _rev: `1-${hex32('other')}` } }),
          409,
          'conflict',
        );
      });
      r2 = await putDoc(db, 'doc', { v: 2 }, `?rev=${r1}`);
      assert.equal(revPos(r2), 2);
      r3 = await putDoc(db, 'doc', { v: 3, _rev: r2 });
      assert.equal(revPos(r3), 3);
      assert.equal((await getDoc(db, 'doc'))['v'], 3);
    });

    void it('concurrent edits of the same revision: exactly one wins', async () => {
      await createDb('race');
      let rev = await putDoc('race', 'contended', { round: -1 });
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            api<WriteOk>(`/race/contended?rev=${rev}`, { method: 'PUT', body: { round, writer: i } }),
          ),
        );
        const winners = results.filter((r) => r.status === 201);
        assert.equal(winners.length, 1, `round ${round}: ${results.map((r) => r.status).join(',')}`);
        for (const r of results) if (r.status !== 201) assertError(r, 409, 'conflict');
        rev = winners[0].json.rev;
      }
      const leaves = await getDoc<{ ok: Doc }[]>('race', 'contended', '?open_revs=all');
      assert.deepEqual(
        leaves.map((l) => l.ok._rev),
        [rev],
      );
      assert.equal(revPos(rev), 6);
    });

    void it('GET ?rev, revs, revs_info', async () => {
      const old = await getDoc(db, 'doc', `?rev=${r1}`);
      assert.deepEqual(old, { _id: 'doc', _rev: r1, v: 1, nested: { a: [1, 'two', null] } });
      const revs = await getDoc<Doc & { _revisions: { start: number; ids: string[] } }>(
        db,
        'doc',
        '?revs=true',
      );
      assert.deepEqual(revs._revisions, { start: 3, ids: [r3, r2, r1].map((r) => r.split('-')[1]) });
      const info = await getDoc<Doc & { _revs_info: RevsInfo[] }>(db, 'doc', '?revs_info=true');
      assert.deepEqual(info._revs_info, [
        { rev: r3, status: 'available' },
        { rev: r2, status: 'available' },
        { rev: r1, status: 'available' },
      ]);
      assertError(await api(`/${db}/doc?rev=9-${hex32('nope')}`), 404, 'not_found');
      assertError(await api(`/${db}/missing-doc`), 404, 'not_found');
    });

    void it('DELETE with rev; a deleted document is 404 "deleted" but its tombstone is readable', async () => {
      await writesNothing(db, async () => {
        assertError(await api(`/${db}/doc`, { method: 'DELETE' }), 409, 'conflict');
        assertError(await api(`/${db}/doc?rev=${r1}`, { method: 'DELETE' }), 409, 'conflict');
      });
      const del = await api<WriteOk>(`/${db}/doc?rev=${r3}`, { method: 'DELETE' });
      assert.equal(del.status, 200, del.text);
      assert.equal(del.json.ok, true);
      const r4 = del.json.rev;
      assert.equal(revPos(r4), 4);
      const gone = await api<ErrorBody>(`/${db}/doc`);
      assertError(gone, 404, 'not_found');
      assert.equal(gone.json.reason, 'deleted');
      const tombstone = await getDoc(db, 'doc', `?rev=${r4}`);
      assert.deepEqual(tombstone, { _id: 'doc', _rev: r4, _deleted: true });
      const info = await dbInfo(db);
      assert.equal(info.doc_count, 0);
      assert.equal(info.doc_del_count, 1);

      // CouchDB 2+: a deleted document is recreated without a rev; naming the tombstone is a conflict.
      assertError(await api(`/${db}/doc?rev=${r4}`, { method: 'PUT', body: { v: 5 } }), 409, 'conflict');
      const r5 = await putDoc(db, 'doc', { v: 5 });
      assert.equal(revPos(r5), 5);
      const revived = await getDoc<Doc & { _revisions: { ids: string[] } }>(db, 'doc', '?revs=true');
      assert.equal(revived._rev, r5);
      assert.equal(revived._revisions.ids[1], r4.split('-')[1]);
      assert.equal((await dbInfo(db)).doc_count, 1);

      // If-Match names the rev too.
      const viaHeader = await api<WriteOk>(`/${db}/doc`, {
        method: 'DELETE',
        headers: { 'if-match': `"${r5}"` },
      });
      assert.equal(viaHeader.status, 200, viaHeader.text);
    });

    void it('ids with characters that need URL encoding', async () => {
      for (const id of [
        'with space',
        'slash/inside',
        'plus+sign',
        'percent%41',
        'ünïcødé',
        'question?mark',
        'hash#tag',
        'emoji-😀',
      ]) {
        const rev = await putDoc(db, id, { id });
        const doc = await getDoc(db, id);
        assert.equal(doc._id, id);
        assert.equal(doc._rev, rev);
        const rows = await expectOk<AllDocsBody>(`/${db}/_all_docs?key=${q(id)}`);
        assert.deepEqual(
          rows.rows.map((r) => r.id),
          [id],
        );
      }
      const ddoc = await api<WriteOk>(`/${db}/_design%2Fencoded`, {
        method: 'PUT',
        body: { language: 'javascript' },
      });
      assert.equal(ddoc.status, 201, ddoc.text);
      assert.equal(ddoc.json.id, '_design/encoded');
      assert.equal((await expectOk<Doc>(`/${db}/_design/encoded`))._id, '_design/encoded');
      // _design_docs lists design documents only; total_rows counts them.
      const designs = await expectOk<AllDocsBody>(`/${db}/_design_docs`);
      assert.ok(designs.rows.length > 0 && designs.rows.every((r) => r.id?.startsWith('_design/') === true));
      assert.equal(designs.total_rows, designs.rows.length);
      assert.ok(designs.rows.some((r) => r.id === '_design/encoded'));
      // With keys, only ids in the design namespace are looked up (CouchDB 3.3.3 and later).
      await putDoc(db, 'plain-not-design', { v: 1 });
      const keys = encodeURIComponent(JSON.stringify(['plain-not-design', '_design/encoded']));
      const byKeys = await expectOk<AllDocsBody>(`/${db}/_design_docs?keys=${keys}`);
      assert.deepEqual(
        byKeys.rows.map((r) => [r.key, r.id ?? null, r.error ?? null]),
        [
          ['plain-not-design', null, 'not_found'],
          ['_design/encoded', '_design/encoded', null],
        ],
      );
    });

    void it('conflicts and deleted_conflicts; open_revs=all and a list; latest', async () => {
      const base = await putDoc(db, 'multi', { v: 'base' });
      const mainLine = await putDoc(db, 'multi', { v: 'main' }, `?rev=${base}`);
      // Two foreign branches grafted with new_edits=false: a live one and a deleted one.
      const live = `2-${hex32('live branch')}`;
      const dead = `2-${hex32('dead branch')}`;
      const graft = await api<unknown[]>(`/${db}/_bulk_docs`, {
        method: 'POST',
        body: {
          new_edits: false,
          docs: [
            {
              _id: 'multi',
              _rev: live,
              _revisions: { start: 2, ids: [live.slice(2), base.slice(2)] },
              v: 'live',
            },
            {
              _id: 'multi',
              _rev: dead,
              _revisions: { start: 2, ids: [dead.slice(2), base.slice(2)] },
              _deleted: true,
            },
          ],
        },
      });
      assert.equal(graft.status, 201, graft.text);
      assert.deepEqual(graft.json, []);

      const leavesLive = [mainLine, live].sort().reverse();
      const winner = leavesLive[0];
      const doc = await getDoc<Doc & { _conflicts?: string[]; _deleted_conflicts?: string[] }>(
        db,
        'multi',
        '?conflicts=true&deleted_conflicts=true',
      );
      assert.equal(doc._rev, winner, 'the winner is the live leaf with the greater hash');
      assert.deepEqual(doc._conflicts, [leavesLive[1]]);
      assert.deepEqual(doc._deleted_conflicts, [dead]);
      const plain = await getDoc<Doc>(db, 'multi');
      assert.equal(plain['_conflicts'], undefined, 'no _conflicts without ?conflicts=true');

      const all = await getDoc<{ ok?: Doc; missing?: string }[]>(db, 'multi', '?open_revs=all');
      assert.deepEqual(all.map((r) => r.ok?._rev).sort(), [mainLine, live, dead].sort());
      const deadLeaf = all.find((r) => r.ok?._rev === dead)!.ok!;
      assert.equal(deadLeaf['_deleted'], true);

      const missing = `3-${hex32('never')}`;
      const listed = await getDoc<{ ok?: Doc; missing?: string }[]>(
        db,
        'multi',
        `?open_revs=${q([live, missing])}&revs=true`,
      );
      assert.equal(listed.length, 2);
      assert.equal(listed[0].ok?._rev, live);
      assert.deepEqual(listed[0].ok?.['_revisions'], { start: 2, ids: [live.slice(2), base.slice(2)] });
      assert.deepEqual(listed[1], { missing });

      const latest = await getDoc<{ ok?: Doc }[]>(db, 'multi', `?open_revs=${q([base])}&latest=true`);
      assert.deepEqual(
        latest.map((r) => r.ok?._rev).sort(),
        [mainLine, live, dead].sort(),
        'latest gives the leaves below base',
      );
      const notLatest = await getDoc<{ ok?: Doc }[]>(db, 'multi', `?open_revs=${q([base])}`);
      assert.deepEqual(
        notLatest.map((r) => r.ok?._rev),
        [base],
      );
      assertError(await api(`/${db}/never-existed?open_revs=all`), 404, 'not_found');
    });

    void it('PUT ?new_edits=false stores the given revision as is', async () => {
      const rev = `7-${hex32('replicated')}`;
      const res = await api<WriteOk>(`/${db}/replicated?new_edits=false`, {
        method: 'PUT',
        body: {
          _rev: rev,
          _revisions: { start: 7, ids: [rev.slice(2), hex32('six'), hex32('five')] },
          from: 'elsewhere',
        },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.rev, rev);
      const doc = await getDoc<Doc & { _revs_info: RevsInfo[] }>(db, 'replicated', '?revs_info=true');
      assert.equal(doc._rev, rev);
      assert.deepEqual(doc._revs_info, [
        { rev, status: 'available' },
        { rev: `6-${hex32('six')}`, status: 'missing' },
        { rev: `5-${hex32('five')}`, status: 'missing' },
      ]);
      // The same revision again changes nothing.
      const seq = (await dbInfo(db)).update_seq;
      const again = await api<WriteOk>(`/${db}/replicated?new_edits=false`, {
        method: 'PUT',
        body: { _rev: rev, from: 'elsewhere' },
      });
      assert.equal(again.status, 201, again.text);
      assert.equal((await dbInfo(db)).update_seq, seq);
    });

    void it('inline attachments: stubs, ?attachments=true, atts_since', async () => {
      const text = Buffer.from('hello, attachment');
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
      const a1 = await putDoc(db, 'with-atts', {
        title: 'atts',
        _attachments: {
          'hello.txt': { content_type: 'text/plain', data: text.toString('base64') },
          'bytes.bin': { content_type: 'application/octet-stream', data: binary.toString('base64') },
        },
      });
      const stubbed = await getDoc<Doc & { _attachments: Record<string, Attachment> }>(db, 'with-atts');
      assert.deepEqual(stubbed._attachments['hello.txt'], {
        content_type: 'text/plain',
        revpos: 1,
        digest: md5(text),
        length: text.length,
        stub: true,
      });
      assert.equal(stubbed._attachments['bytes.bin']?.digest, md5(binary));
      const full = await getDoc<Doc & { _attachments: Record<string, Attachment> }>(
        db,
        'with-atts',
        '?attachments=true',
      );
      assert.equal(full._attachments['bytes.bin']?.data, binary.toString('base64'));
      assert.equal(full._attachments['hello.txt']?.data, text.toString('base64'));
      assert.equal(full._attachments['hello.txt']?.stub, undefined);

      // Rev 2 keeps both as stubs; rev 3 adds one.
      const a2 = await putDoc(db, 'with-atts', {
        _rev: a1,
        title: 'atts 2',
        _attachments: {
          'hello.txt': { stub: true, content_type: 'text/plain', digest: md5(text) },
          'bytes.bin': { stub: true },
        },
      });
      const extra = Buffer.from('added in rev 3');
      const a3 = await putDoc(db, 'with-atts', {
        _rev: a2,
        title: 'atts 3',
        _attachments: {
          'hello.txt': { stub: true },
          'bytes.bin': { stub: true },
          'extra.txt': { content_type: 'text/plain', data: extra.toString('base64') },
        },
      });
      const since = await getDoc<Doc & { _attachments: Record<string, Attachment> }>(
        db,
        'with-atts',
        `?atts_since=${q([a2])}`,
      );
      assert.equal(since._rev, a3);
      assert.equal(
        since._attachments['extra.txt']?.data,
        extra.toString('base64'),
        'newer than atts_since: inline',
      );
      assert.equal(since._attachments['extra.txt']?.revpos, 3);
      assert.equal(since._attachments['hello.txt']?.stub, true, 'older than atts_since: stub');
      assert.equal(since._attachments['hello.txt']?.revpos, 1);
      assert.equal(since._attachments['bytes.bin']?.stub, true);

      // A stub naming an attachment no ancestor has is refused (412 missing_stub) and writes nothing.
      await writesNothing(db, async () => {
        const res = await api(`/${db}/with-atts`, {
          method: 'PUT',
          body: { _rev: a3, _attachments: { 'ghost.txt': { stub: true, digest: md5('ghost') } } },
        });
        assertError(res, 412, 'missing_stub');
      });
      // Dropping _attachments drops the attachments.
      await putDoc(db, 'with-atts', { _rev: a3, title: 'bare' });
      assert.equal((await getDoc(db, 'with-atts'))['_attachments'], undefined);
    });

    void it('standalone attachments: PUT, GET, HEAD, DELETE', async () => {
      const body = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 254, 255]);
      const created = await api<WriteOk>(`/${db}/att-doc/dir/file.bin`, {
        method: 'PUT',
        body,
        headers: { 'content-type': 'application/x-test' },
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.json.id, 'att-doc');
      const rev1 = created.json.rev;
      assert.equal(revPos(rev1), 1);

      const got = await fetch(`${node.url}/${db}/att-doc/dir/file.bin`, {
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('content-type'), 'application/x-test');
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), body);
      const head = await fetch(`${node.url}/${db}/att-doc/dir/file.bin`, {
        method: 'HEAD',
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(body.length));

      const doc = await getDoc<Doc & { _attachments: Record<string, Attachment> }>(db, 'att-doc');
      assert.equal(doc._attachments['dir/file.bin']?.digest, md5(body));
      assert.equal(doc._attachments['dir/file.bin']?.length, body.length);

      await writesNothing(db, async () => {
        const noRev = await api(`/${db}/att-doc/other.txt`, {
          method: 'PUT',
          body: 'x',
          headers: { 'content-type': 'text/plain' },
        });
        assertError(noRev, 409, 'conflict');
      });
      const second = await api<WriteOk>(`/${db}/att-doc/other.txt?rev=${rev1}`, {
        method: 'PUT',
        body: 'second',
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(second.status, 201, second.text);
      const rev2 = second.json.rev;
      const text = await fetch(`${node.url}/${db}/att-doc/other.txt`, {
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(await text.text(), 'second');
      const old = await fetch(`${node.url}/${db}/att-doc/other.txt?rev=${rev1}`, {
        headers: { authorization: node.adminAuthHeader },
      });
      assert.equal(old.status, 404);

      const deleted = await api<WriteOk>(`/${db}/att-doc/dir/file.bin?rev=${rev2}`, { method: 'DELETE' });
      assert.equal(deleted.status, 200, deleted.text);
      assert.equal(revPos(deleted.json.rev), 3);
      assertError(await api(`/${db}/att-doc/dir/file.bin`), 404, 'not_found');
      const after = await getDoc<Doc & { _attachments: Record<string, Attachment> }>(db, 'att-doc');
      assert.deepEqual(Object.keys(after._attachments), ['other.txt']);
      assertError(await api(`/${db}/att-doc/nothing-here`), 404, 'not_found');
    });
  });

  void describe('_bulk_docs, _all_docs, _revs_diff, _bulk_get', () => {
    const db = 'bulk';
    const revs = new Map<string, string>();

    before(async () => {
      await createDb(db);
      const res = await api<WriteOk[]>(`/${db}/_bulk_docs`, {
        method: 'POST',
        body: { docs: ['c', 'a', 'e', 'b', 'd'].map((id) => ({ _id: id, letter: id })) },
      });
      assert.equal(res.status, 201, res.text);
      for (const row of res.json) revs.set(row.id, row.rev);
    });

    void it('_bulk_docs: per-document results, conflicts reported per row', async () => {
      const res = await api<
        ({ ok: true; id: string; rev: string } | { id: string; error: string; reason: string })[]
      >(`/${db}/_bulk_docs`, {
        method: 'POST',
        body: {
          docs: [
            { _id: 'f', letter: 'f' },
            { _id: 'a', letter: 'A' },
            { _id: 'b', _rev: revs.get('b'), letter: 'B' },
            { _id: 'c', _rev: revs.get('c'), _deleted: true },
          ],
        },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.length, 4);
      assert.equal(res.json[0].id, 'f');
      assert.ok('ok' in res.json[0], "'ok' in res.json[0]!");
      assert.deepEqual(res.json[1], { id: 'a', error: 'conflict', reason: 'Document update conflict.' });
      assert.ok(
        'ok' in res.json[2] && revPos(res.json[2].rev) === 2,
        "'ok' in res.json[2]! && revPos(res.json[2].rev) === 2",
      );
      assert.ok(
        'ok' in res.json[3] && revPos(res.json[3].rev) === 2,
        "'ok' in res.json[3]! && revPos(res.json[3].rev) === 2",
      );
      for (const row of res.json) if ('ok' in row) revs.set(row.id, row.rev);
      const info = await dbInfo(db);
      assert.equal(info.doc_count, 5);
      assert.equal(info.doc_del_count, 1);
    });

    void it('_bulk_docs new_edits=false grafts foreign paths; unknown ancestors are missing', async () => {
      const top = `4-${hex32('g4')}`;
      const res = await api(`/${db}/_bulk_docs`, {
        method: 'POST',
        body: {
          new_edits: false,
          docs: [
            {
              _id: 'grafted',
              _rev: top,
              _revisions: { start: 4, ids: [hex32('g4'), hex32('g3'), hex32('g2')] },
              v: 4,
            },
          ],
        },
      });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(res.json, []);
      const doc = await getDoc<Doc & { _revs_info: RevsInfo[] }>(db, 'grafted', '?revs_info=true');
      assert.deepEqual(doc._revs_info, [
        { rev: top, status: 'available' },
        { rev: `3-${hex32('g3')}`, status: 'missing' },
        { rev: `2-${hex32('g2')}`, status: 'missing' },
      ]);
      assertError(await api(`/${db}/grafted?rev=3-${hex32('g3')}`), 404, 'not_found');

      // A second path sharing an ancestor joins the same tree.
      const other = `4-${hex32('h4')}`;
      const res2 = await api(`/${db}/_bulk_docs`, {
        method: 'POST',
        body: {
          new_edits: false,
          docs: [
            {
              _id: 'grafted',
              _rev: other,
              _revisions: { start: 4, ids: [hex32('h4'), hex32('g3')] },
              v: 'h',
            },
          ],
        },
      });
      assert.equal(res2.status, 201, res2.text);
      const all = await getDoc<{ ok: Doc }[]>(db, 'grafted', '?open_revs=all&revs=true');
      assert.equal(all.length, 2);
      for (const leaf of all) {
        const revisions = leaf.ok['_revisions'] as { start: number; ids: string[] };
        assert.equal(revisions.ids[1], hex32('g3'), `${leaf.ok._rev} descends from 3-g3`);
      }
      const winner = [top, other].sort().reverse()[0];
      assert.equal((await getDoc(db, 'grafted', '?conflicts=true'))._rev, winner);
    });

    void it('_all_docs: ranges, limit, skip, descending, include_docs, conflicts', async () => {
      const all = await expectOk<AllDocsBody>(`/${db}/_all_docs`);
      const live = ['a', 'b', 'd', 'e', 'f', 'grafted'];
      assert.deepEqual(
        all.rows.map((r) => r.id),
        live,
      );
      assert.equal(all.total_rows, live.length);
      assert.equal(all.offset, 0);
      assert.deepEqual(all.rows[0], { id: 'a', key: 'a', value: { rev: revs.get('a') } });

      const range = await expectOk<AllDocsBody>(`/${db}/_all_docs?startkey=${q('b')}&endkey=${q('e')}`);
      assert.deepEqual(
        range.rows.map((r) => r.id),
        ['b', 'd', 'e'],
      );
      const exclusive = await expectOk<AllDocsBody>(
        `/${db}/_all_docs?start_key=${q('b')}&end_key=${q('e')}&inclusive_end=false`,
      );
      assert.deepEqual(
        exclusive.rows.map((r) => r.id),
        ['b', 'd'],
      );
      const page = await expectOk<AllDocsBody>(`/${db}/_all_docs?skip=1&limit=2`);
      assert.deepEqual(
        page.rows.map((r) => r.id),
        ['b', 'd'],
      );
      assert.equal(page.offset, 1);
      const desc = await expectOk<AllDocsBody>(`/${db}/_all_docs?descending=true`);
      assert.deepEqual(
        desc.rows.map((r) => r.id),
        [...live].reverse(),
      );
      const descRange = await expectOk<AllDocsBody>(
        `/${db}/_all_docs?descending=true&startkey=${q('e')}&endkey=${q('b')}&limit=2`,
      );
      assert.deepEqual(
        descRange.rows.map((r) => r.id),
        ['e', 'd'],
      );
      const descExclusive = await expectOk<AllDocsBody>(
        `/${db}/_all_docs?descending=true&startkey=${q('e')}&endkey=${q('b')}&inclusive_end=false`,
      );
      assert.deepEqual(
        descExclusive.rows.map((r) => r.id),
        ['e', 'd'],
      );
      const withDocs = await expectOk<AllDocsBody>(`/${db}/_all_docs?include_docs=true&limit=1`);
      assert.deepEqual(withDocs.rows[0].doc, { _id: 'a', _rev: revs.get('a'), letter: 'a' });
      const conflicts = await expectOk<AllDocsBody>(
        `/${db}/_all_docs?include_docs=true&conflicts=true&key=${q('grafted')}`,
      );
      assert.equal((conflicts.rows[0].doc!['_conflicts'] as string[]).length, 1);
    });

    void it('_all_docs with keys (GET and POST): missing and deleted rows', async () => {
      const expected = (rows: AllDocsRow[]): void => {
        assert.equal(rows.length, 3);
        assert.deepEqual(rows[0], { id: 'd', key: 'd', value: { rev: revs.get('d') } });
        assert.deepEqual(rows[1], { key: 'nope', error: 'not_found' });
        assert.equal(rows[2].id, 'c');
        assert.deepEqual(rows[2].value, { rev: revs.get('c'), deleted: true });
      };
      expected((await expectOk<AllDocsBody>(`/${db}/_all_docs?keys=${q(['d', 'nope', 'c'])}`)).rows);
      const posted = await expectOk<AllDocsBody>(`/${db}/_all_docs`, {
        method: 'POST',
        body: { keys: ['d', 'nope', 'c'] },
      });
      expected(posted.rows);
      const withDocs = await expectOk<AllDocsBody>(`/${db}/_all_docs?include_docs=true`, {
        method: 'POST',
        body: { keys: ['c', 'a'] },
      });
      assert.equal(withDocs.rows[0].doc, null);
      assert.equal(withDocs.rows[1].doc?._id, 'a');
    });

    void it('_revs_diff', async () => {
      const unknown = `1-${hex32('unknown')}`;
      const future = `3-${hex32('future')}`;
      const res = await expectOk<Record<string, { missing: string[]; possible_ancestors?: string[] }>>(
        `/${db}/_revs_diff`,
        {
          method: 'POST',
          body: { a: [revs.get('a'), future], b: [revs.get('b')], zz: [unknown] },
        },
      );
      assert.deepEqual(res, {
        a: { missing: [future], possible_ancestors: [revs.get('a')] },
        zz: { missing: [unknown] },
      });
    });

    void it('_bulk_get', async () => {
      const missingRev = `9-${hex32('missing')}`;
      const res = await expectOk<{
        results: {
          id: string;
          docs: ({ ok: Doc } | { error: { id: string; rev: string; error: string; reason: string } })[];
        }[];
      }>(`/${db}/_bulk_get?revs=true`, {
        method: 'POST',
        body: {
          docs: [
            { id: 'a', rev: revs.get('a') },
            { id: 'b' },
            { id: 'a', rev: missingRev },
            { id: 'no-such-doc' },
          ],
        },
      });
      assert.equal(res.results.length, 4);
      const [first, second, third, fourth] = res.results;
      assert.equal(first.id, 'a');
      assert.ok('ok' in first.docs[0], "'ok' in first!.docs[0]!");
      assert.equal(first.docs[0].ok._rev, revs.get('a'));
      assert.deepEqual(first.docs[0].ok['_revisions'], { start: 1, ids: [revs.get('a')!.slice(2)] });
      assert.ok(
        'ok' in second.docs[0] && second.docs[0].ok._rev === revs.get('b'),
        "'ok' in second!.docs[0]! && second!.docs[0].ok._rev === revs.get('b')",
      );
      assert.ok('error' in third.docs[0], "'error' in third!.docs[0]!");
      assert.deepEqual(third.docs[0].error, {
        id: 'a',
        rev: missingRev,
        error: 'not_found',
        reason: 'missing',
      });
      assert.ok('error' in fourth.docs[0], "'error' in fourth!.docs[0]!");
      assert.equal(fourth.docs[0].error.error, 'not_found');
      assert.equal(fourth.docs[0].error.id, 'no-such-doc');
    });
  });

  void describe('_changes', () => {
    const db = 'feed';
    const revs = new Map<string, string>();

    before(async () => {
      await createDb(db);
      for (const id of ['f1', 'f2', 'f3', 'f4', 'f5'])
        revs.set(id, await putDoc(db, id, { type: id === 'f3' ? 'fruit' : 'veg', n: Number(id[1]) }));
      revs.set('f1', await putDoc(db, 'f1', { type: 'fruit', n: 11 }, `?rev=${revs.get('f1')}`));
      const del = await expectOk<WriteOk>(`/${db}/f2?rev=${revs.get('f2')}`, { method: 'DELETE' });
      revs.set('f2', del.rev);
      // f4: an edit here and a foreign branch from the same parent, so two leaves.
      const f4First = revs.get('f4')!;
      revs.set('f4', await putDoc(db, 'f4', { type: 'veg', n: 44 }, `?rev=${f4First}`));
      await expectOk(
        `/${db}/_bulk_docs`,
        {
          method: 'POST',
          body: {
            new_edits: false,
            docs: [
              {
                _id: 'f4',
                _rev: `2-${hex32('f4 branch')}`,
                _revisions: { start: 2, ids: [hex32('f4 branch'), f4First.slice(2)] },
                type: 'veg',
              },
            ],
          },
        },
        201,
      );
      await putDoc(db, '_design/filters', {
        filters: { bytype: 'function (doc, req) { return doc.type === req.query.type; }' },
      });
      await expectOk(`/${db}/_local/checkpoint`, { method: 'PUT', body: { seq: 1 } }, 201);
    });

    void it('lists every document once, in seq order, at its latest change', async () => {
      const feed = await expectOk<ChangesBody>(`/${db}/_changes`);
      assert.deepEqual(
        feed.results.map((r) => r.id),
        ['f3', 'f5', 'f1', 'f2', 'f4', '_design/filters'],
      );
      const seqs = feed.results.map((r) => r.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      const info = await dbInfo(db);
      assert.equal(feed.last_seq, info.update_seq);
      assert.equal(feed.pending, 0);
      const f2 = feed.results.find((r) => r.id === 'f2')!;
      assert.equal(f2.deleted, true);
      assert.deepEqual(f2.changes, [{ rev: revs.get('f2') }]);
      assert.equal(feed.results.find((r) => r.id === 'f1')!.deleted, undefined);
      assert.ok(
        !feed.results.some((r) => r.id.startsWith('_local')),
        '_local documents never appear in _changes',
      );
    });

    void it('since, since=now, limit, descending', async () => {
      const all = await expectOk<ChangesBody>(`/${db}/_changes`);
      const since = await expectOk<ChangesBody>(`/${db}/_changes?since=${all.results[2].seq}`);
      assert.deepEqual(
        since.results.map((r) => r.id),
        all.results.slice(3).map((r) => r.id),
      );
      const now = await expectOk<ChangesBody>(`/${db}/_changes?since=now`);
      assert.deepEqual(now.results, []);
      assert.equal(now.last_seq, all.last_seq);
      const limited = await expectOk<ChangesBody>(`/${db}/_changes?limit=2`);
      assert.deepEqual(
        limited.results.map((r) => r.id),
        ['f3', 'f5'],
      );
      assert.equal(limited.last_seq, all.results[1].seq);
      assert.equal(limited.pending, all.results.length - 2);
      const desc = await expectOk<ChangesBody>(`/${db}/_changes?descending=true`);
      assert.deepEqual(
        desc.results.map((r) => r.id),
        all.results.map((r) => r.id).reverse(),
      );
      const descLimited = await expectOk<ChangesBody>(`/${db}/_changes?descending=true&limit=1`);
      assert.deepEqual(
        descLimited.results.map((r) => r.id),
        ['_design/filters'],
      );
    });

    void it('include_docs, conflicts, style=all_docs|main_only', async () => {
      const withDocs = await expectOk<ChangesBody>(`/${db}/_changes?include_docs=true&conflicts=true`);
      const f1 = withDocs.results.find((r) => r.id === 'f1')!;
      assert.deepEqual(f1.doc, { _id: 'f1', _rev: revs.get('f1'), type: 'fruit', n: 11 });
      const f4 = withDocs.results.find((r) => r.id === 'f4')!;
      assert.equal((f4.doc!['_conflicts'] as string[]).length, 1);
      const f2 = withDocs.results.find((r) => r.id === 'f2')!;
      assert.deepEqual(f2.doc, { _id: 'f2', _rev: revs.get('f2'), _deleted: true });

      const mainOnly = await expectOk<ChangesBody>(`/${db}/_changes?style=main_only`);
      assert.equal(mainOnly.results.find((r) => r.id === 'f4')!.changes.length, 1);
      const allDocs = await expectOk<ChangesBody>(`/${db}/_changes?style=all_docs`);
      const f4Leaves = allDocs.results.find((r) => r.id === 'f4')!.changes.map((c) => c.rev);
      assert.deepEqual([...f4Leaves].sort(), [revs.get('f4'), `2-${hex32('f4 branch')}`].sort());
      assert.equal(
        f4Leaves[0],
        mainOnly.results.find((r) => r.id === 'f4')!.changes[0].rev,
        'the winner comes first',
      );
    });

    void it('filters: _doc_ids (GET and POST), _selector, _design, ddoc/name with query params', async () => {
      const ids = (body: ChangesBody): string[] => body.results.map((r) => r.id);
      assert.deepEqual(
        ids(await expectOk<ChangesBody>(`/${db}/_changes?filter=_doc_ids&doc_ids=${q(['f5', 'f1'])}`)),
        ['f5', 'f1'],
      );
      assert.deepEqual(
        ids(
          await expectOk<ChangesBody>(`/${db}/_changes?filter=_doc_ids`, {
            method: 'POST',
            body: { doc_ids: ['f1', 'f3'] },
          }),
        ),
        ['f3', 'f1'],
      );
      assert.deepEqual(
        ids(
          await expectOk<ChangesBody>(`/${db}/_changes?filter=_selector`, {
            method: 'POST',
            body: { selector: { type: 'fruit' } },
          }),
        ),
        ['f3', 'f1'],
      );
      assert.deepEqual(ids(await expectOk<ChangesBody>(`/${db}/_changes?filter=_design`)), [
        '_design/filters',
      ]);
      assert.deepEqual(ids(await expectOk<ChangesBody>(`/${db}/_changes?filter=filters/bytype&type=veg`)), [
        'f5',
        'f4',
      ]);
      assert.deepEqual(
        ids(await expectOk<ChangesBody>(`/${db}/_changes?filter=filters/bytype&type=fruit&limit=1`)),
        ['f3'],
      );
      assertError(await api(`/${db}/_changes?filter=nothere/bytype`), 404, 'not_found');
      assertError(await api(`/${db}/_changes?filter=filters/nothere`), 404, 'not_found');
    });

    void it('feed=longpoll waits for the next change', async () => {
      const { update_seq: since } = await dbInfo(db);
      let answered = false;
      const pending = api<ChangesBody>(`/${db}/_changes?feed=longpoll&since=${since}&timeout=15000`).then(
        (res) => {
          answered = true;
          return res;
        },
      );
      await sleep(300);
      assert.equal(answered, false, 'longpoll answered before any change');
      const rev = await putDoc(db, 'late', { type: 'late' });
      const res = await pending;
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.json.results.map((r) => [r.id, r.changes[0].rev]),
        [['late', rev]],
      );
      assert.equal(res.json.last_seq, since + 1);
      const timedOut = await expectOk<ChangesBody>(`/${db}/_changes?feed=longpoll&since=now&timeout=200`);
      assert.deepEqual(timedOut.results, []);
      // limit=0 can never return a row: it answers at once (it once spun the node forever).
      const none = await expectOk<ChangesBody>(
        `/${db}/_changes?feed=longpoll&since=0&limit=0&timeout=15000`,
        {
          signal: AbortSignal.timeout(5_000),
        },
      );
      assert.deepEqual(none.results, []);
    });

    void it('feed=continuous streams rows, heartbeats and new changes', async () => {
      const stream = await LineStream.open(
        `${node.url}/${db}/_changes?feed=continuous&since=0&heartbeat=100`,
        {
          authorization: node.adminAuthHeader,
        },
      );
      try {
        assert.equal(stream.status, 200);
        const first = JSON.parse(await stream.line()) as ChangeRow;
        assert.equal(first.id, 'f3');
        const { skipped } = await stream.until((line) => line === '', 5_000);
        assert.ok(
          skipped.every((l) => (JSON.parse(l) as ChangeRow).seq > 0),
          'rows before the first heartbeat',
        );
        const rev = await putDoc(db, 'streamed', { type: 'stream' });
        const { line } = await stream.until((l) => l !== '', 5_000);
        const row = JSON.parse(line) as ChangeRow;
        assert.equal(row.id, 'streamed');
        assert.deepEqual(row.changes, [{ rev }]);
      } finally {
        stream.close();
      }
      const ended = await LineStream.open(`${node.url}/${db}/_changes?feed=continuous&since=0&limit=2`, {
        authorization: node.adminAuthHeader,
      });
      const lines = (await ended.rest()).filter((l) => l !== '');
      assert.equal(lines.length, 3, lines.join('\n'));
      const last = JSON.parse(lines[2]) as { last_seq: number; pending: number };
      assert.equal(typeof last.last_seq, 'number');
      assert.ok(last.pending > 0, 'last.pending > 0');
    });

    void it('live feeds refuse descending', async () => {
      for (const feed of ['continuous', 'eventsource']) {
        assertError(await api(`/${db}/_changes?feed=${feed}&descending=true`), 400, 'bad_request');
      }
    });

    void it('feed=eventsource sends data/id events', async () => {
      const stream = await LineStream.open(`${node.url}/${db}/_changes?feed=eventsource&since=0`, {
        authorization: node.adminAuthHeader,
      });
      try {
        assert.equal(stream.status, 200);
        assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
        const data = await stream.line();
        assert.match(data, /^data: /);
        const row = JSON.parse(data.slice(6)) as ChangeRow;
        assert.equal(row.id, 'f3');
        assert.equal(await stream.line(), `id: ${row.seq}`);
        assert.equal(await stream.line(), '');
      } finally {
        stream.close();
      }
    });

    void it('_local documents: rev 0-N, not in _changes, _all_docs or the counters', async () => {
      const before = await dbInfo(db);
      const doc = await expectOk<{ _id: string; _rev: string; seq: number }>(`/${db}/_local/checkpoint`);
      assert.deepEqual(doc, { _id: '_local/checkpoint', _rev: '0-1', seq: 1 });
      assertError(
        await api(`/${db}/_local/checkpoint`, { method: 'PUT', body: { seq: 2 } }),
        409,
        'conflict',
      );
      const updated = await expectOk<WriteOk>(
        `/${db}/_local/checkpoint`,
        { method: 'PUT', body: { seq: 2, _rev: '0-1' } },
        201,
      );
      assert.deepEqual(updated, { ok: true, id: '_local/checkpoint', rev: '0-2' });
      const viaQuery = await expectOk<WriteOk>(
        `/${db}/_local/checkpoint?rev=0-2`,
        { method: 'PUT', body: { seq: 3 } },
        201,
      );
      assert.equal(viaQuery.rev, '0-3');
      const after = await dbInfo(db);
      assert.equal(after.update_seq, before.update_seq, 'a _local write does not move update_seq');
      assert.equal(after.doc_count, before.doc_count);
      const all = await expectOk<AllDocsBody>(`/${db}/_all_docs`);
      assert.ok(
        !all.rows.some((r) => r.key.startsWith('_local')),
        "!all.rows.some((r) => r.key.startsWith('_local'))",
      );
      const changes = await expectOk<ChangesBody>(`/${db}/_changes?since=${before.update_seq}`);
      assert.deepEqual(changes.results, []);
      // Listed by _local_docs only, with null total_rows and offset (as CouchDB 2+).
      const locals = await expectOk<{ total_rows: null; offset: null; rows: unknown[] }>(
        `/${db}/_local_docs?include_docs=true&startkey=${encodeURIComponent('"_local/c"')}`,
      );
      assert.deepEqual(locals, {
        total_rows: null,
        offset: null,
        rows: [
          {
            id: '_local/checkpoint',
            key: '_local/checkpoint',
            value: { rev: '0-3' },
            doc: { _id: '_local/checkpoint', _rev: '0-3', seq: 3 },
          },
        ],
      });
      const byKeys = await expectOk<{ rows: unknown[] }>(`/${db}/_local_docs`, {
        method: 'POST',
        body: { keys: ['_local/none'] },
      });
      assert.deepEqual(byKeys.rows, [{ key: '_local/none', error: 'not_found' }]);
      const del = await expectOk<{ ok: boolean }>(`/${db}/_local/checkpoint?rev=0-3`, { method: 'DELETE' });
      assert.equal(del.ok, true);
      assertError(await api(`/${db}/_local/checkpoint`), 404, 'not_found');
    });

    void it('_local ids may also come with an encoded slash, as _design ids do', async () => {
      const put = await api<WriteOk>(`/${db}/_local%2Fencoded`, { method: 'PUT', body: { v: 1 } });
      assert.equal(put.status, 201, `PUT /${db}/_local%2Fencoded: ${put.text}`);
      assert.deepEqual(put.json, { ok: true, id: '_local/encoded', rev: '0-1' });
      const viaSlash = await expectOk<{ _id: string; v: number }>(`/${db}/_local/encoded`);
      assert.deepEqual(viaSlash, { _id: '_local/encoded', _rev: '0-1', v: 1 });
      const viaEncoded = await expectOk<{ _id: string; v: number }>(`/${db}/_local%2Fencoded`);
      assert.deepEqual(viaEncoded, viaSlash);
    });

    void it('_ensure_full_commit', async () => {
      const res = await api<{ ok: boolean; instance_start_time: string }>(`/${db}/_ensure_full_commit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(res.json, { ok: true, instance_start_time: '0' });
    });
  });

  void describe('_db_updates', () => {
    void it('normal, longpoll and continuous', async () => {
      const normal = await expectOk<DbUpdates>('/_db_updates');
      // One row per database, its latest update.
      assert.ok(
        normal.results.some((r) => r.db_name === '_replicator' && r.type === 'created'),
        JSON.stringify(normal),
      );
      const names = normal.results.map((r) => r.db_name);
      assert.equal(new Set(names).size, names.length, 'one row per database');
      for (const row of normal.results)
        assert.ok(
          ['created', 'updated', 'deleted'].includes(row.type),
          "['created', 'updated', 'deleted'].includes(row.type)",
        );
      const since = normal.last_seq;

      let answered = false;
      const longpoll = api<DbUpdates>(`/_db_updates?feed=longpoll&since=${since}&timeout=15000`).then(
        (res) => {
          answered = true;
          return res;
        },
      );
      await sleep(300);
      assert.equal(answered, false, 'longpoll answered before any update');
      await createDb('updates-a');
      const lp = await longpoll;
      assert.equal(lp.status, 200, lp.text);
      assert.deepEqual(
        lp.json.results.map((r) => [r.db_name, r.type]),
        [['updates-a', 'created']],
      );

      const stream = await LineStream.open(
        `${node.url}/_db_updates?feed=continuous&since=now&heartbeat=100`,
        {
          authorization: node.adminAuthHeader,
        },
      );
      try {
        assert.equal(stream.status, 200);
        await putDoc('updates-a', 'doc', { v: 1 });
        const { line } = await stream.until((l) => l !== '', 5_000);
        const row = JSON.parse(line) as { db_name: string; type: string };
        assert.deepEqual([row.db_name, row.type], ['updates-a', 'updated']);
        await expectOk('/updates-a', { method: 'DELETE' });
        const { line: deleted } = await stream.until((l) => l !== '', 5_000);
        const drow = JSON.parse(deleted) as { db_name: string; type: string };
        assert.deepEqual([drow.db_name, drow.type], ['updates-a', 'deleted']);
      } finally {
        stream.close();
      }
      assertError(await fetchJson(`${node.url}/_db_updates`), 401, 'unauthorized');
    });
  });

  void describe('_find', () => {
    const db = 'mango';
    before(async () => {
      await createDb(db);
      const people = [
        { _id: 'p1', name: 'Ann', age: 31, city: 'Oslo', tags: ['a', 'b'] },
        { _id: 'p2', name: 'Bob', age: 25, city: 'Rome', tags: ['b'] },
        { _id: 'p3', name: 'Cid', age: 42, city: 'Oslo', tags: [] },
        { _id: 'p4', name: 'Dee', age: 37, city: 'Lima' },
        { _id: 'p5', name: 'Eve', age: 19, city: 'Rome', tags: ['c'] },
      ];
      await expectOk(`/${db}/_bulk_docs`, { method: 'POST', body: { docs: people } }, 201);
      await putDoc(db, '_design/ignored', { age: 99 });
    });

    const find = (
      body: unknown,
    ): Promise<{ docs: Record<string, unknown>[]; bookmark?: string; warning?: string }> =>
      expectOk(`/${db}/_find`, { method: 'POST', body });

    void it('a catastrophically backtracking $regex answers at once (linear fallback)', async () => {
      await putDoc(db, 'redos', { k: `${'a'.repeat(40)}b` });
      // With a backtracking engine alone this pattern needs about 2^40 steps on that value.
      const res = await api<{ docs: unknown[] }>(`/${db}/_find`, {
        method: 'POST',
        body: { selector: { k: { $regex: '^(a|a)*$' } }, fields: ['_id'] },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.docs, []);
      const rev = (await expectOk<{ _rev: string }>(`/${db}/redos`))._rev;
      await expectOk(`/${db}/redos?rev=${rev}`, { method: 'DELETE' });
    });

    void it('operators, fields, sort, limit, skip', async () => {
      const older = await find({
        selector: { age: { $gt: 30 } },
        fields: ['_id', 'name'],
        sort: [{ age: 'asc' }],
      });
      assert.deepEqual(older.docs, [
        { _id: 'p1', name: 'Ann' },
        { _id: 'p4', name: 'Dee' },
        { _id: 'p3', name: 'Cid' },
      ]);
      assert.equal(typeof older.bookmark, 'string');
      const desc = await find({
        selector: { age: { $gte: 0 } },
        fields: ['name'],
        sort: [{ age: 'desc' }],
        limit: 2,
        skip: 1,
      });
      assert.deepEqual(desc.docs, [{ name: 'Dee' }, { name: 'Ann' }]);
      const inCities = await find({
        selector: { city: { $in: ['Rome', 'Lima'] }, age: { $lt: 30 } },
        fields: ['_id'],
      });
      assert.deepEqual(inCities.docs, [{ _id: 'p2' }, { _id: 'p5' }]);
      const or = await find({
        selector: { $or: [{ name: 'Ann' }, { tags: { $elemMatch: { $eq: 'c' } } }] },
        fields: ['_id'],
      });
      assert.deepEqual(or.docs, [{ _id: 'p1' }, { _id: 'p5' }]);
      const notExists = await find({ selector: { tags: { $exists: false } }, fields: ['_id'] });
      assert.deepEqual(notExists.docs, [{ _id: 'p4' }]);
      const regex = await find({ selector: { name: { $regex: '^[A-C]' } }, fields: ['_id'], limit: 2 });
      assert.deepEqual(regex.docs, [{ _id: 'p1' }, { _id: 'p2' }]);
      const whole = await find({ selector: { _id: 'p2' } });
      assert.equal(whole.docs.length, 1);
      assert.equal(whole.docs[0]['name'], 'Bob');
      assert.match(String(whole.docs[0]['_rev']), /^1-/);
      const bad = await api(`/${db}/_find`, { method: 'POST', body: { selector: { age: { $bogus: 1 } } } });
      assertError(bad, 400);
      assertError(await api(`/${db}/_find`, { method: 'POST', body: { limit: 1 } }), 400);
    });
  });

  void describe('_compact and _revs_limit', () => {
    const db = 'maint';
    before(async () => {
      await createDb(db);
    });

    void it('_compact drops old revision bodies; the tree still lists them as missing', async () => {
      const r1 = await putDoc(db, 'c', { v: 1 });
      const r2 = await putDoc(db, 'c', { v: 2, _rev: r1 });
      const r3 = await putDoc(db, 'c', { v: 3, _rev: r2 });
      assert.equal((await getDoc(db, 'c', `?rev=${r1}`))['v'], 1);
      const res = await api<{ ok: boolean }>(`/${db}/_compact`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 202, res.text);
      assert.deepEqual(res.json, { ok: true });
      const deadline = Date.now() + 10_000;
      while ((await api(`/${db}/c?rev=${r1}`)).status !== 404) {
        assert.ok(Date.now() < deadline, 'old revision still readable 10 s after _compact');
        await sleep(100);
      }
      assertError(await api(`/${db}/c?rev=${r2}`), 404, 'not_found');
      const current = await getDoc<Doc & { _revs_info: RevsInfo[] }>(db, 'c', '?revs_info=true');
      assert.equal(current['v'], 3);
      assert.deepEqual(current._revs_info, [
        { rev: r3, status: 'available' },
        { rev: r2, status: 'missing' },
        { rev: r1, status: 'missing' },
      ]);
      const revs = await getDoc<Doc & { _revisions: { start: number; ids: string[] } }>(
        db,
        'c',
        '?revs=true',
      );
      assert.equal(revs._revisions.ids.length, 3);
    });

    void it('_revs_limit: GET, PUT, and stemming of new revisions', async () => {
      const initial = await expectOk<number>(`/${db}/_revs_limit`);
      assert.equal(initial, 1000);
      const put = await api<{ ok: boolean }>(`/${db}/_revs_limit`, { method: 'PUT', body: 3 });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.json, { ok: true });
      assert.equal(await expectOk<number>(`/${db}/_revs_limit`), 3);
      await writesNothing(db, async () => {
        assertError(await api(`/${db}/_revs_limit`, { method: 'PUT', body: 'abc' }), 400);
        assertError(await api(`/${db}/_revs_limit`, { method: 'PUT', body: 0 }), 400);
      });
      let rev = await putDoc(db, 'stemmed', { n: 0 });
      for (let n = 1; n < 6; n++) rev = await putDoc(db, 'stemmed', { n, _rev: rev });
      const doc = await getDoc<Doc & { _revisions: { start: number; ids: string[] } }>(
        db,
        'stemmed',
        '?revs=true',
      );
      assert.equal(doc._revisions.start, 6);
      assert.equal(doc._revisions.ids.length, 3, 'only _revs_limit revisions are kept');
    });
  });

  void describe('bad input', () => {
    const db = 'strict';
    let rev = '';
    before(async () => {
      await createDb(db);
      rev = await putDoc(db, 'doc', { v: 1 });
    });

    const raw = (path: string, method: string, body: string): Promise<JsonResponse<unknown>> =>
      api(path, { method, body, headers: { 'content-type': 'application/json' } });

    void it('malformed JSON is 400 bad_request', async () => {
      await writesNothing(db, async () => {
        assertError(await raw(`/${db}/new`, 'PUT', '{"a": '), 400, 'bad_request', 'PUT doc');
        assertError(await raw(`/${db}`, 'POST', '{oops}'), 400, 'bad_request', 'POST db');
        assertError(await raw(`/${db}/_bulk_docs`, 'POST', '{"docs": [}'), 400, 'bad_request', '_bulk_docs');
        assertError(await raw(`/${db}/_all_docs`, 'POST', 'keys'), 400, 'bad_request', '_all_docs');
        assertError(await raw(`/${db}/_revs_diff`, 'POST', '['), 400, 'bad_request', '_revs_diff');
        assertError(await raw(`/${db}/_find`, 'POST', '{'), 400, 'bad_request', '_find');
        assertError(await raw(`/${db}/new`, 'PUT', ''), 400, 'bad_request', 'empty body');
      });
    });

    void it('POST bodies not labelled JSON are 415 (a web page could send them with the browser credentials)', async () => {
      const form = (path: string, body: unknown, type: string): Promise<JsonResponse<unknown>> =>
        api(path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': type } });
      await writesNothing(db, async () => {
        for (const type of [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
        ]) {
          assertError(
            await form(`/${db}`, { _id: 'csrf' }, type),
            415,
            'bad_content_type',
            `POST db as ${type}`,
          );
          assertError(
            await form(`/${db}/_bulk_docs`, { docs: [{ _id: 'csrf' }] }, type),
            415,
            'bad_content_type',
            `_bulk_docs as ${type}`,
          );
        }
      });
      assertError(
        await form('/_replicate', { source: db, target: `${db}-csrf`, create_target: true }, 'text/plain'),
        415,
        'bad_content_type',
        '_replicate',
      );
      assert.equal((await api(`/${db}-csrf`)).status, 404, 'no replication ran');
    });

    void it('documents that are not objects, or carry bad members, are 400', async () => {
      await writesNothing(db, async () => {
        assertError(await raw(`/${db}/new`, 'PUT', '[1,2]'), 400, undefined, 'array doc');
        assertError(await raw(`/${db}/new`, 'PUT', '"text"'), 400, undefined, 'string doc');
        assertError(
          await api(`/${db}/new`, { method: 'PUT', body: { _bogus: 1 } }),
          400,
          'doc_validation',
          '_bogus member',
        );
        assertError(
          await api(`/${db}/_bulk_docs`, { method: 'POST', body: { docs: 'no' } }),
          400,
          'bad_request',
          'docs not a list',
        );
        assertError(
          await api(`/${db}/_bulk_docs`, { method: 'POST', body: {} }),
          400,
          'bad_request',
          'no docs',
        );
        assertError(
          await api(`/${db}/new`, { method: 'PUT', body: { _id: 'other' } }),
          400,
          undefined,
          'id mismatch',
        );
      });
    });

    void it('ids with a reserved leading underscore are 400', async () => {
      await writesNothing(db, async () => {
        assertError(
          await api(`/${db}`, { method: 'POST', body: { _id: '_reserved' } }),
          400,
          'illegal_docid',
          'POST',
        );
        assertError(
          await api(`/${db}/_bulk_docs`, { method: 'POST', body: { docs: [{ _id: '_reserved' }] } }),
          400,
          'illegal_docid',
          '_bulk_docs',
        );
        assertError(
          await api(`/${db}/_design/`, { method: 'PUT', body: {} }),
          400,
          undefined,
          'empty design id',
        );
      });
    });

    void it('bad revs are 400', async () => {
      await writesNothing(db, async () => {
        assertError(
          await api(`/${db}/doc`, { method: 'PUT', body: { _rev: 'abc', v: 2 } }),
          400,
          'bad_request',
          'PUT _rev',
        );
        assertError(
          await api(`/${db}/doc?rev=abc`, { method: 'PUT', body: { v: 2 } }),
          400,
          'bad_request',
          'PUT ?rev',
        );
        assertError(await api(`/${db}/doc?rev=abc`, { method: 'DELETE' }), 400, 'bad_request', 'DELETE ?rev');
        assertError(
          await api(`/${db}/_bulk_docs`, { method: 'POST', body: { docs: [{ _id: 'doc', _rev: '1-' }] } }),
          400,
          undefined,
          '_bulk_docs _rev',
        );
      });
    });

    void it('a malformed ?rev= on a read is 400, as CouchDB parses it (not 404)', async () => {
      assertError(await api(`/${db}/doc?rev=abc`), 400, 'bad_request', 'GET ?rev');
      assertError(await api(`/${db}/doc?rev=abc&revs=true`), 400, 'bad_request', 'GET ?rev&revs');
    });

    void it('?rev= and a different body _rev are refused with 400 (CouchDB), writing nothing', async () => {
      await writesNothing(db, async () => {
        const other = await api(`/${db}/doc?rev=${rev}`, {
          method: 'PUT',
          body: { _rev: `1-${hex32('x')}`, v: 2 },
        });
        assertError(other, 400, 'bad_request', 'PUT ?rev vs body _rev');
      });
    });

    void it('bad query parameters are 400 query_parse_error', async () => {
      await writesNothing(db, async () => {
        assertError(await api(`/${db}/_all_docs?limit=abc`), 400, 'query_parse_error', '_all_docs limit');
        assertError(await api(`/${db}/_all_docs?skip=-1`), 400, 'query_parse_error', '_all_docs skip');
        assertError(
          await api(`/${db}/_all_docs?descending=maybe`),
          400,
          'query_parse_error',
          '_all_docs descending',
        );
        assertError(
          await api(`/${db}/_all_docs?startkey=notjson`),
          400,
          'query_parse_error',
          '_all_docs startkey',
        );
        assertError(await api(`/${db}/_changes?limit=abc`), 400, 'query_parse_error', '_changes limit');
        assertError(
          await api(`/${db}/_changes?include_docs=yes`),
          400,
          'query_parse_error',
          '_changes include_docs',
        );
        assertError(await api(`/${db}/doc?revs=perhaps`), 400, 'query_parse_error', 'GET revs');
        assertError(await api(`/${db}/doc?open_revs=[bad`), 400, undefined, 'open_revs');
        assertError(await api(`/${db}/_changes?feed=sideways`), 400, 'bad_request', 'feed');
        assertError(await api(`/${db}/_changes?since=yesterday`), 400, 'bad_request', 'since');
      });
    });

    void it('conflicts are 409', async () => {
      await writesNothing(db, async () => {
        assertError(await api(`/${db}/doc`, { method: 'PUT', body: { v: 9 } }), 409, 'conflict');
        assertError(await api(`/${db}/doc?rev=1-${hex32('stale')}`, { method: 'DELETE' }), 409, 'conflict');
      });
    });

    void it('unknown databases are 404 not_found', async () => {
      assertError(await api('/no-such-db'), 404, 'not_found');
      assertError(await api('/no-such-db/doc'), 404, 'not_found');
      assertError(await api('/no-such-db/doc', { method: 'PUT', body: { v: 1 } }), 404, 'not_found');
      assertError(await api('/no-such-db/_all_docs'), 404, 'not_found');
      assertError(await api('/no-such-db/_changes'), 404, 'not_found');
      assertError(
        await api('/no-such-db/_bulk_docs', { method: 'POST', body: { docs: [{ v: 1 }] } }),
        404,
        'not_found',
      );
      assertError(await api('/no-such-db/_local/x', { method: 'PUT', body: {} }), 404, 'not_found');
      assert.ok(!(await expectOk<string[]>('/_all_dbs')).includes('no-such-db'), 'no database was created');
    });

    void it('anonymous writes are 401 and write nothing', async () => {
      await writesNothing(db, async () => {
        const res = await fetchJson(`${node.url}/${db}/_bulk_docs`, {
          method: 'POST',
          body: { docs: [{ v: 1 }] },
        });
        assertError(res, 401, 'unauthorized');
        assert.deepEqual(res.json, { error: 'unauthorized', reason: (res.json as ErrorBody).reason });
      });
    });
  });
});

void describe('CORS and body limits (a second node)', () => {
  let limited: DoppelProcess;
  const origin = 'http://example.test';

  before(async () => {
    limited = await DoppelProcess.start({ args: ['--cors-origins', origin, '--max-body-bytes', '4096'] });
    const res = await limited.request('/small', { method: 'PUT' });
    assert.equal(res.status, 201, res.text);
  });

  after(async () => {
    const status = await limited?.stop();
    assert.equal(status?.code, 0, `graceful stop (SIGTERM) exit status ${JSON.stringify(status)}`);
  });

  void it('answers a preflight from an allowed origin', async () => {
    const res = await fetch(`${limited.url}/small/doc`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'content-type, authorization',
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}`);
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /PUT/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  });

  void it('adds CORS headers to responses for allowed origins only, errors included', async () => {
    const ok = await fetch(`${limited.url}/small`, {
      headers: { origin, authorization: limited.adminAuthHeader },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), origin);
    const unauthorized = await fetch(`${limited.url}/small`, { headers: { origin } });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), origin);
    const other = await fetch(`${limited.url}/small`, {
      headers: { origin: 'http://evil.test', authorization: limited.adminAuthHeader },
    });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const preflight = await fetch(`${limited.url}/small`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.test', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });

  void it('refuses bodies over --max-body-bytes with 413 and writes nothing', async () => {
    const before = await limited.request<DbInfo>('/small');
    const big = { text: 'x'.repeat(10_000) };
    const put = await limited.request('/small/big', { method: 'PUT', body: big });
    assertError(put, 413, 'too_large', 'PUT');
    const bulk = await limited.request('/small/_bulk_docs', { method: 'POST', body: { docs: [big] } });
    assertError(bulk, 413, 'too_large', '_bulk_docs');
    const att = await limited.request('/small/att/file.bin', {
      method: 'PUT',
      body: Buffer.alloc(10_000, 7),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assertError(att, 413, 'too_large', 'attachment');
    const after = await limited.request<DbInfo>('/small');
    assert.equal(after.json.update_seq, before.json.update_seq);
    // Just under the limit is fine, on the same node.
    const fits = await limited.request('/small/fits', { method: 'PUT', body: { text: 'x'.repeat(3000) } });
    assert.equal(fits.status, 201, fits.text);
  });
});

void describe('data directory', () => {
  void it('a node starts on a data directory whose name contains a dot', async () => {
    const parent = makeTempDir('doppel-dotted-');
    const dir = join(parent, 'node.data');
    try {
      const dotted = await DoppelProcess.start({ dataDir: dir, startTimeoutMs: 15_000 });
      try {
        assert.equal((await dotted.request<{ status: string }>('/_up')).json.status, 'ok');
        assert.equal((await dotted.request('/dotted', { method: 'PUT' })).status, 201);
      } finally {
        await dotted.stop();
      }
    } finally {
      await removeTempDir(parent);
    }
  });
});
