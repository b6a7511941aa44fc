import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DoppelError, ErrorKind } from '../../errors.js';
import { md5Digest, newRevision, parseDocEdit, validateDocId, type DocEdit } from './doc-input.js';
import { parseRev } from './rev-tree.js';
import { prng, type Rng, int, pick } from '../../../test/support/prng.js';

const edits = { newEdits: true } as const;
const replicated = { newEdits: false } as const;

/** Asserts that `fn` throws a DoppelError of kind bad_request (with `errorName` when given). */
function throwsBadRequest(fn: () => unknown, errorName?: string, reason?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DoppelError, `expected a DoppelError, got ${String(err)}`);
    assert.equal(err.kind, ErrorKind.BadRequest);
    if (errorName !== undefined) assert.equal(err.errorName ?? 'bad_request', errorName);
    if (reason !== undefined) assert.match(err.reason, reason);
    return true;
  });
}

const md5b64 = (s: string | Buffer): string => `md5-${createHash('md5').update(s).digest('base64')}`;

// ---- parseDocEdit ------------------------------------------------------------

void describe('parseDocEdit: shape and ids', () => {
  void it('refuses anything but a JSON object', () => {
    for (const raw of [null, undefined, 1, 'doc', true, [], [{ _id: 'a' }]]) {
      throwsBadRequest(() => parseDocEdit(raw, edits), 'bad_request');
    }
  });

  void it('splits a plain document: id, no rev, user members as JSON text in order', () => {
    const e = parseDocEdit({ _id: 'a', z: 1, a: [1, { b: null }], s: 'é😀' }, edits);
    assert.equal(e.id, 'a');
    assert.equal(e.rev, undefined);
    assert.equal(e.deleted, false);
    assert.equal(e.path, undefined);
    assert.equal(e.attachments, undefined);
    assert.equal(e.body, '{"z":1,"a":[1,{"b":null}],"s":"é😀"}');
  });

  void it('refuses ids that are not strings or are empty, with illegal_docid', () => {
    for (const id of [undefined, 1, null, {}, ['a'], '']) {
      throwsBadRequest(() => parseDocEdit({ _id: id }, edits), 'illegal_docid');
    }
  });

  void it('refuses reserved ids starting with _ except _design/x', () => {
    for (const id of ['_foo', '_design', '_design/', '_Design/x', '_all_docs', '_']) {
      throwsBadRequest(() => parseDocEdit({ _id: id }, edits), 'illegal_docid', /reserved|underscore/i);
    }
    assert.equal(parseDocEdit({ _id: '_design/x' }, edits).id, '_design/x');
    assert.equal(parseDocEdit({ _id: '_design/a/b' }, edits).id, '_design/a/b');
    // Underscores elsewhere are fine.
    assert.equal(parseDocEdit({ _id: 'a_b_' }, edits).id, 'a_b_');
  });

  void it('validateDocId refuses design ids when not allowed', () => {
    throwsBadRequest(() => validateDocId('_design/x', { allowDesign: false }), 'illegal_docid');
    assert.equal(validateDocId('_design/x', { allowDesign: true }), '_design/x');
  });

  void it('takes the id from the options (URL) and refuses a different body _id', () => {
    assert.equal(parseDocEdit({ a: 1 }, { newEdits: true, id: 'u' }).id, 'u');
    assert.equal(parseDocEdit({ _id: 'u' }, { newEdits: true, id: 'u' }).id, 'u');
    throwsBadRequest(() => parseDocEdit({ _id: 'v' }, { newEdits: true, id: 'u' }), 'bad_request');
  });

  void it('accepts the special members CouchDB ignores and keeps them out of the body', () => {
    const e = parseDocEdit(
      {
        _id: 'a',
        x: 1,
        _revs_info: [{ rev: '1-a', status: 'available' }],
        _conflicts: ['1-b'],
        _deleted_conflicts: ['1-c'],
        _local_seq: 5,
      },
      edits,
    );
    assert.equal(e.body, '{"x":1}');
  });

  void it('refuses any other _ member with doc_validation', () => {
    for (const key of ['_foo', '_ID', '_', '__x', '_revs', '_attachment']) {
      throwsBadRequest(
        () => parseDocEdit({ _id: 'a', [key]: 1 }, edits),
        'doc_validation',
        /Bad special document member/,
      );
    }
  });

  // couch_doc:transfer_fields keeps these in the body (replicator state, per-doc access).
  void it('keeps _replication_* and _access members in the body, as CouchDB does', () => {
    const doc = {
      _id: 'r',
      source: 'a',
      _replication_state: 'completed',
      _replication_state_time: '2024-01-01T00:00:00Z',
      _replication_state_reason: 'x',
      _replication_id: 'abc',
      _replication_stats: { docs_written: 1 },
      _access: ['bob'],
    };
    const e = parseDocEdit(doc, edits);
    assert.deepEqual(Object.keys(JSON.parse(e.body) as object).sort(), [
      '_access',
      '_replication_id',
      '_replication_state',
      '_replication_state_reason',
      '_replication_state_time',
      '_replication_stats',
      'source',
    ]);
  });

  void it('refuses a top-level "__proto__" (it starts with _) and keeps nested ones intact', () => {
    throwsBadRequest(
      () => parseDocEdit(JSON.parse('{"_id":"p","__proto__":{"polluted":true}}'), edits),
      'doc_validation',
      /__proto__/,
    );
    const raw = JSON.parse('{"_id":"p","a":{"__proto__":{"x":1},"constructor":2}}') as unknown;
    const e = parseDocEdit(raw, edits);
    assert.equal(e.body, '{"a":{"__proto__":{"x":1},"constructor":2}}');
    assert.equal(({} as Record<string, unknown>)['x'], undefined, 'no global pollution');
  });

  void it('reads _deleted as a boolean and refuses other types with doc_validation', () => {
    assert.equal(parseDocEdit({ _id: 'a', _deleted: true }, edits).deleted, true);
    assert.equal(parseDocEdit({ _id: 'a', _deleted: false }, edits).deleted, false);
    for (const v of ['true', 1, null, {}, []]) {
      throwsBadRequest(() => parseDocEdit({ _id: 'a', _deleted: v }, edits), 'doc_validation');
    }
  });
});

void describe('parseDocEdit: maximum size', () => {
  void it('accepts a body at the limit', () => {
    const body = { a: 'x'.repeat(10) }; // {"a":"xxxxxxxxxx"} = 18 bytes
    assert.equal(parseDocEdit({ _id: 'a', ...body }, { newEdits: true, maxBytes: 18 }).body.length, 18);
  });

  // couch_doc:from_json_obj_validate throws {request_entity_too_large, DocId} → 413 document_too_large.
  void it('refuses a larger body with 413 document_too_large', () => {
    assert.throws(
      () => parseDocEdit({ _id: 'big', a: 'x'.repeat(11) }, { newEdits: true, maxBytes: 18 }),
      (err: unknown) => {
        assert.ok(err instanceof DoppelError);
        assert.equal(err.errorName, 'document_too_large');
        assert.equal(err.kind, ErrorKind.TooLarge, 'CouchDB answers 413, not 400');
        return true;
      },
    );
  });

  // CouchDB measures the encoded JSON size in bytes (couch_ejson_size:encoded_size), not UTF-16 units.
  void it('measures the size in UTF-8 bytes', () => {
    const doc = { _id: 'u', a: 'é'.repeat(10) }; // {"a":"éééééééééé"}: 18 chars, 28 bytes
    assert.throws(
      () => parseDocEdit(doc, { newEdits: true, maxBytes: 20 }),
      (err: unknown) => err instanceof DoppelError && err.errorName === 'document_too_large',
    );
  });
});

void describe('parseDocEdit: _rev and _revisions', () => {
  void it('keeps a well-formed _rev as the parent of an edit', () => {
    const e = parseDocEdit({ _id: 'a', _rev: '3-abc' }, edits);
    assert.equal(e.rev, '3-abc');
    assert.equal(e.path, undefined);
  });

  void it('refuses a malformed _rev with bad_request "Invalid rev format"', () => {
    for (const rev of ['abc', '0-abc', '1-', '-1', 1, null, {}, ['1-a'], true, '']) {
      throwsBadRequest(
        () => parseDocEdit({ _id: 'a', _rev: rev }, edits),
        'bad_request',
        /Invalid rev format/,
      );
      throwsBadRequest(() => parseDocEdit({ _id: 'a', _rev: rev }, replicated), 'bad_request');
    }
  });

  void it('new_edits=false: _revisions gives the path, newest first, as full revs', () => {
    const e = parseDocEdit({ _id: 'a', _revisions: { start: 3, ids: ['c', 'b', 'a'] } }, replicated);
    assert.deepEqual(e.path, ['3-c', '2-b', '1-a']);
    assert.equal(e.rev, '3-c');
    const withRev = parseDocEdit(
      { _id: 'a', _rev: '3-c', _revisions: { start: 3, ids: ['c', 'b'] } },
      replicated,
    );
    assert.deepEqual(withRev.path, ['3-c', '2-b']);
    assert.equal(withRev.rev, '3-c');
  });

  void it('new_edits=false: a path cut short by revs_limit is fine', () => {
    const e = parseDocEdit({ _id: 'a', _revisions: { start: 1000, ids: ['z'] } }, replicated);
    assert.deepEqual(e.path, ['1000-z']);
  });

  void it('new_edits=false: _rev alone is a path of one', () => {
    const e = parseDocEdit({ _id: 'a', _rev: '7-x' }, replicated);
    assert.deepEqual(e.path, ['7-x']);
    assert.equal(e.rev, '7-x');
  });

  void it('new_edits=false: needs _rev or _revisions', () => {
    throwsBadRequest(() => parseDocEdit({ _id: 'a' }, replicated), 'bad_request');
  });

  void it('new_edits=false: malformed _revisions are refused with doc_validation', () => {
    const bad: unknown[] = [
      null,
      'x',
      [],
      {},
      { start: 1 },
      { ids: ['a'] },
      { start: '2', ids: ['a'] },
      { start: 0, ids: ['a'] },
      { start: -1, ids: ['a'] },
      { start: 1.5, ids: ['a'] },
      { start: 2 ** 60, ids: ['a'] },
      { start: 2, ids: [] },
      { start: 2, ids: 'ab' },
      { start: 1, ids: ['a', 'b'] }, // generation would reach 0
      { start: 2, ids: ['a', 1] },
      { start: 2, ids: ['a', null] },
      { start: 2, ids: ['a', 'b c'] },
      { start: 2, ids: ['a', ''] },
    ];
    for (const revisions of bad) {
      throwsBadRequest(
        () => parseDocEdit({ _id: 'a', _revisions: revisions }, replicated),
        'doc_validation',
        undefined,
      );
    }
  });

  void it('new_edits=false: an id that is an object with a broken toString is refused, not a crash', () => {
    const raw = JSON.parse('{"_id":"a","_revisions":{"start":2,"ids":["b",{"toString":1}]}}') as unknown;
    throwsBadRequest(() => parseDocEdit(raw, replicated), 'doc_validation');
  });

  void it('new_edits=false: _rev must match the newest entry of _revisions', () => {
    throwsBadRequest(
      () => parseDocEdit({ _id: 'a', _rev: '3-x', _revisions: { start: 3, ids: ['c', 'b'] } }, replicated),
      'doc_validation',
      /_rev/,
    );
    throwsBadRequest(
      () => parseDocEdit({ _id: 'a', _rev: '2-c', _revisions: { start: 3, ids: ['c'] } }, replicated),
      'doc_validation',
    );
  });

  void it('new_edits=true ignores _revisions for the path', () => {
    const e = parseDocEdit({ _id: 'a', _rev: '3-c', _revisions: { start: 3, ids: ['c', 'b'] } }, edits);
    assert.equal(e.path, undefined);
    assert.equal(e.rev, '3-c');
  });
});

void describe('parseDocEdit: attachments', () => {
  void it('decodes inline data and digests it as md5-<base64>', () => {
    const e = parseDocEdit(
      {
        _id: 'a',
        _attachments: {
          'hello.txt': { content_type: 'text/plain', data: Buffer.from('hello').toString('base64') },
          'empty.bin': { data: '' },
        },
      },
      edits,
    );
    const hello = e.attachments!.get('hello.txt')!;
    assert.equal(hello.kind, 'data');
    if (hello.kind !== 'data') return;
    assert.equal(hello.bytes.toString(), 'hello');
    assert.equal(hello.contentType, 'text/plain');
    assert.equal(hello.digest, 'md5-XUFAKrxLKna5cZ2REBfFkg==');
    assert.equal(hello.digest, md5b64('hello'));
    const empty = e.attachments!.get('empty.bin')!;
    assert.ok(empty.kind === 'data');
    if (empty.kind !== 'data') return;
    assert.equal(empty.bytes.length, 0);
    assert.equal(empty.contentType, 'application/octet-stream');
    assert.equal(empty.digest, md5b64(''));
    // Attachments are not part of the body.
    assert.equal(e.body, '{}');
  });

  void it('md5Digest digests raw bytes', () => {
    const bytes = Buffer.from([0, 255, 1, 254]);
    assert.equal(md5Digest(bytes), md5b64(bytes));
  });

  void it('accepts base64 split over lines', () => {
    const data = Buffer.from('x'.repeat(100)).toString('base64');
    const wrapped = `${data.slice(0, 76)}\r\n${data.slice(76)}\n`;
    const e = parseDocEdit({ _id: 'a', _attachments: { f: { data: wrapped } } }, edits);
    const f = e.attachments!.get('f')!;
    assert.ok(f.kind === 'data' && f.bytes.toString() === 'x'.repeat(100));
  });

  void it('reads stubs with their digest and revpos', () => {
    const e = parseDocEdit(
      {
        _id: 'a',
        _attachments: {
          s: { stub: true, digest: 'md5-abc', revpos: 2, length: 5, content_type: 'text/plain' },
          t: { stub: true },
        },
      },
      edits,
    );
    assert.deepEqual(e.attachments!.get('s'), { kind: 'stub', digest: 'md5-abc', revpos: 2 });
    assert.deepEqual(e.attachments!.get('t'), { kind: 'stub', digest: undefined, revpos: undefined });
  });

  void it('refuses invalid base64', () => {
    for (const data of ['!!!!', 'aGVsbG8=x', 'a b', '====a', 'aGVs bG8=', 'é']) {
      throwsBadRequest(() => parseDocEdit({ _id: 'a', _attachments: { f: { data } } }, edits), 'bad_request');
    }
  });

  void it('refuses "follows" (needs multipart)', () => {
    throwsBadRequest(
      () => parseDocEdit({ _id: 'a', _attachments: { f: { follows: true, length: 3 } } }, edits),
      'bad_request',
      /follows/,
    );
  });

  void it('refuses attachments without data or stub, and non-object entries', () => {
    for (const att of [{}, { data: 5 }, { stub: 'true' }, null, 'x', 3]) {
      throwsBadRequest(() => parseDocEdit({ _id: 'a', _attachments: { f: att } }, edits), 'bad_request');
    }
  });

  void it('refuses attachment names that are empty or start with _', () => {
    for (const name of ['', '_x', '_']) {
      throwsBadRequest(
        () => parseDocEdit({ _id: 'a', _attachments: { [name]: { data: '' } } }, edits),
        'bad_request',
      );
    }
  });

  void it('refuses an _attachments member that is not an object with doc_validation', () => {
    for (const v of [null, [], 'x', 1, true]) {
      throwsBadRequest(() => parseDocEdit({ _id: 'a', _attachments: v }, edits), 'doc_validation');
    }
  });
});

// ---- newRevision ---------------------------------------------------------------

void describe('newRevision', () => {
  const edit = (doc: Record<string, unknown>): DocEdit => parseDocEdit({ _id: 'd', ...doc }, edits);

  void it('the first revision is generation 1 with a 32-hex hash', () => {
    const rev = newRevision(null, edit({ a: 1 }), []);
    assert.match(rev, /^1-[0-9a-f]{32}$/);
    assert.ok(parseRev(rev) !== null);
  });

  void it('a child is one generation above its parent', () => {
    assert.match(newRevision('41-abc', edit({ a: 1 }), []), /^42-[0-9a-f]{32}$/);
  });

  void it('is deterministic: same parent, same body, same attachments → same rev', () => {
    for (const parent of [null, '1-a', '7-ffff']) {
      const a = newRevision(parent, edit({ a: 1, b: [2] }), ['f:md5-x']);
      const b = newRevision(parent, edit({ a: 1, b: [2] }), ['f:md5-x']);
      assert.equal(a, b);
    }
    // The id is not part of the hash (CouchDB hashes body, parent, deletion, attachments).
    assert.equal(
      newRevision('1-a', parseDocEdit({ _id: 'x', v: 1 }, edits), []),
      newRevision('1-a', parseDocEdit({ _id: 'y', v: 1 }, edits), []),
    );
  });

  void it('differs when the body, the parent, the deletion or the attachments differ', () => {
    const base = newRevision('1-a', edit({ a: 1 }), []);
    const variants = [
      newRevision('1-a', edit({ a: 2 }), []),
      newRevision('1-b', edit({ a: 1 }), []),
      newRevision('1-aa', edit({ a: 1 }), []),
      newRevision('1-a', edit({ a: 1, _deleted: true }), []),
      newRevision('1-a', edit({ a: 1 }), ['f:md5-x']),
      newRevision('1-a', edit({ a: 1 }), ['f:md5-y']),
      newRevision('1-a', edit({ a: 1 }), ['f:md5-x', 'g:md5-x']),
    ];
    for (const v of variants) assert.notEqual(v, base);
    assert.equal(new Set(variants).size, variants.length);
  });

  void it('stubs vs inline data do not matter: only the digests passed in do', () => {
    const withData = parseDocEdit({ _id: 'd', a: 1, _attachments: { f: { data: 'aGk=' } } }, edits);
    const withStub = parseDocEdit({ _id: 'd', a: 1, _attachments: { f: { stub: true } } }, edits);
    assert.equal(newRevision('1-a', withData, ['f:md5-x']), newRevision('1-a', withStub, ['f:md5-x']));
  });
});

// ---- fuzz ------------------------------------------------------------------------

const TRICKY_KEYS = [
  'a',
  'b',
  '',
  ' ',
  'é',
  '😀',
  '\u0000',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'toJSON',
  'hasOwnProperty',
  'data',
  'stub',
  'follows',
  'digest',
  'revpos',
  'start',
  'ids',
  'content_type',
  'length',
];
const TRICKY_STRINGS = [
  '',
  'a',
  '1-a',
  '0-a',
  '2-ab',
  '1-',
  '-1',
  '_design/x',
  '_design/',
  '_local/x',
  '_x',
  'aGVsbG8=',
  '!!!',
  '====',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '😀',
  'x'.repeat(200),
  `1-${'a'.repeat(200)}`,
  'true',
  'null',
  '{"a":1}',
];
const TRICKY_NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '1.5',
  '1e308',
  '-1e308',
  '1e400',
  '-1e400',
  '9007199254740993',
  '123456789012345678901234567890',
  '5e-324',
  '2',
  '3',
];

/** Random JSON text; objects may repeat keys and use prototype-ish names. */
function randomJson(rng: Rng, depth: number): string {
  const r = rng();
  if (depth <= 0 || r < 0.35) {
    const s = rng();
    if (s < 0.1) return 'null';
    if (s < 0.2) return rng() < 0.5 ? 'true' : 'false';
    if (s < 0.5) return pick(rng, TRICKY_NUMBERS);
    return JSON.stringify(pick(rng, TRICKY_STRINGS));
  }
  if (r < 0.6) {
    const n = int(rng, 4);
    const items: string[] = [];
    for (let i = 0; i < n; i++) items.push(randomJson(rng, depth - 1));
    return `[${items.join(',')}]`;
  }
  const n = int(rng, 5);
  const members: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = rng() < 0.8 ? pick(rng, TRICKY_KEYS) : pick(rng, TRICKY_STRINGS);
    members.push(`${JSON.stringify(key)}:${randomJson(rng, depth - 1)}`);
  }
  return `{${members.join(',')}}`;
}

function maybe(rng: Rng, good: () => string, depth = 2): string {
  return rng() < 0.6 ? good() : randomJson(rng, depth);
}

/** A near-valid document as JSON text: special members well formed or junk, in random order. */
function fuzzDocText(rng: Rng): string {
  if (rng() < 0.05) return randomJson(rng, 3);
  const members: string[] = [];
  const add = (key: string, value: string): void => {
    members.push(`${JSON.stringify(key)}:${value}`);
  };
  if (rng() < 0.9)
    add(
      '_id',
      maybe(rng, () => JSON.stringify(pick(rng, ['a', 'doc', '_design/d', 'é😀', 'x y']))),
    );
  const start = 1 + int(rng, 4);
  const hashes = Array.from({ length: 1 + int(rng, start) }, () => pick(rng, ['a', 'b', 'ff', 'abc']));
  if (rng() < 0.5)
    add(
      '_rev',
      maybe(rng, () => JSON.stringify(rng() < 0.8 ? `${start}-${hashes[0]}` : '2-zz')),
    );
  if (rng() < 0.5) {
    add(
      '_revisions',
      maybe(rng, () => {
        const ids = hashes.map((h) => (rng() < 0.9 ? JSON.stringify(h) : randomJson(rng, 1)));
        const s = rng() < 0.9 ? String(start) : pick(rng, TRICKY_NUMBERS);
        return `{"start":${s},"ids":[${ids.join(',')}]}`;
      }),
    );
  }
  if (rng() < 0.3)
    add(
      '_deleted',
      maybe(rng, () => (rng() < 0.5 ? 'true' : 'false')),
    );
  if (rng() < 0.4) {
    add(
      '_attachments',
      maybe(rng, () => {
        const atts: string[] = [];
        for (let i = int(rng, 3); i >= 0; i--) {
          const name = JSON.stringify(pick(rng, ['f', 'g.txt', '_bad', '', '__proto__', 'é']));
          const body = maybe(rng, () =>
            rng() < 0.5
              ? `{"content_type":${maybe(rng, () => '"text/plain"', 1)},"data":${maybe(rng, () => JSON.stringify(pick(rng, ['aGVsbG8=', '', 'AAEC', 'YQ==\\n'])), 1)}}`
              : `{"stub":true,"digest":${maybe(rng, () => '"md5-x"', 1)},"revpos":${maybe(rng, () => '1', 1)}}`,
          );
          atts.push(`${name}:${body}`);
        }
        return `{${atts.join(',')}}`;
      }),
    );
  }
  for (let i = int(rng, 4); i > 0; i--) add(pick(rng, TRICKY_KEYS), randomJson(rng, 3));
  if (rng() < 0.1)
    add(pick(rng, ['_x', '_conflicts', '_revs_info', '_local_seq', '_access']), randomJson(rng, 1));
  for (let i = members.length - 1; i > 0; i--) {
    const j = int(rng, i + 1);
    [members[i], members[j]] = [members[j], members[i]];
  }
  return `{${members.join(',')}}`;
}

/** The user members of a parsed JSON object (own keys not starting with _), as JSON text of the last value. */
function userMembers(raw: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (typeof raw !== 'object' || raw === null) return out;
  for (const key of Object.keys(raw)) {
    if (!key.startsWith('_')) {
      out[key] = JSON.stringify((raw as Record<string, unknown>)[key]);
    }
  }
  return out;
}

void describe('parseDocEdit fuzz', () => {
  void it('returns a DocEdit or throws a bad_request DoppelError, never anything else', () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 4000; seed++) {
      const rng = prng(seed);
      const text = fuzzDocText(rng);
      const raw = JSON.parse(text) as unknown;
      for (const options of [
        edits,
        replicated,
        { newEdits: true, id: 'url-id' },
        { newEdits: false, maxBytes: 64 },
      ]) {
        let edit: DocEdit;
        try {
          edit = parseDocEdit(raw, options);
        } catch (err) {
          if (
            !(err instanceof DoppelError) ||
            (err.kind !== ErrorKind.BadRequest && err.errorName !== 'document_too_large')
          ) {
            failures.push(`seed ${seed} ${JSON.stringify(options)}: ${text} threw ${String(err)}`);
          }
          continue;
        }
        // Accepted edits are self-consistent.
        assert.equal(typeof edit.id, 'string');
        assert.ok(edit.id.length > 0);
        const body = JSON.parse(edit.body) as unknown;
        assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body));
        for (const k of Object.keys(body)) {
          assert.ok(
            !k.startsWith('_') || k.startsWith('_replication_') || k === '_access',
            `seed ${seed}: ${k}`,
          );
        }
        if (edit.rev !== undefined) assert.ok(parseRev(edit.rev) !== null, `seed ${seed}: rev ${edit.rev}`);
        if (!options.newEdits) {
          assert.ok(edit.path !== undefined && edit.path.length > 0);
          assert.equal(edit.path[0], edit.rev);
          edit.path.forEach((r, i) => {
            assert.ok(parseRev(r) !== null);
            if (i > 0) assert.equal(Number(r.split('-')[0]), Number(edit.path![i - 1].split('-')[0]) - 1);
          });
        } else {
          assert.equal(edit.path, undefined);
        }
        if (edit.attachments !== undefined) {
          for (const [name, att] of edit.attachments) {
            assert.ok(name !== '' && !name.startsWith('_'));
            if (att.kind === 'data') assert.equal(att.digest, md5Digest(att.bytes));
          }
        }
      }
    }
    assert.equal(failures.length, 0, `${failures.length} inputs threw something else; first: ${failures[0]}`);
  });

  void it('an accepted document keeps every user member, with its value', () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 3000; seed++) {
      const rng = prng(100_000 + seed);
      const text = fuzzDocText(rng);
      const raw = JSON.parse(text) as unknown;
      let edit: DocEdit;
      try {
        edit = parseDocEdit(raw, edits);
      } catch {
        continue;
      }
      const expected = userMembers(raw);
      const actual = userMembers(JSON.parse(edit.body));
      if (JSON.stringify(Object.entries(actual).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
        failures.push(`seed ${100_000 + seed}: ${text} stored as ${edit.body}`);
      }
    }
    assert.equal(failures.length, 0, `${failures.length} documents lost members; first: ${failures[0]}`);
  });
});
