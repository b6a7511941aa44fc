import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DoppelError } from '../../../errors.js';
import { collate, compareCodePoints } from '../collate.js';
import { NO_INDEX_WARNING, parseFindRequest, runFind } from './find.js';
import type { FindRequest } from './find.js';

type Doc = Record<string, unknown>;

function rejects(body: unknown, errorName: string): void {
  assert.throws(
    () => parseFindRequest(body),
    (err: unknown) => err instanceof DoppelError && err.kind === 'bad_request' && err.errorName === errorName,
    JSON.stringify(body),
  );
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

const find = (docs: Doc[], body: Doc) => runFind(docs, parseFindRequest(body));
const ids = (docs: Doc[]) => docs.map((d) => d['_id']);

void describe('parseFindRequest', () => {
  void it('applies CouchDB defaults', () => {
    const req = parseFindRequest({ selector: {} });
    assert.equal(req.limit, 25);
    assert.equal(req.skip, 0);
    assert.deepEqual(req.sort, []);
    assert.equal(req.fields, undefined);
    assert.deepEqual(req.use_index, []);
    assert.equal(req.conflicts, false);
    assert.equal(req.r, 1);
    assert.equal(req.bookmark, undefined);
    assert.equal(req.update, true);
    assert.equal(req.stable, false);
    assert.equal(req.stale, false);
    assert.equal(req.execution_stats, false);
    assert.equal(req.allow_fallback, true);
    assert.equal(req.partition, undefined);
  });

  void it('reads every option', () => {
    const req = parseFindRequest({
      selector: { a: 1 },
      limit: 0,
      skip: 3,
      sort: ['a', { 'b.c': 'asc' }],
      fields: ['_id', 'a.b'],
      use_index: '_design/ddoc/name',
      conflicts: true,
      r: 2,
      bookmark: 'nil',
      update: false,
      stable: true,
      stale: 'ok',
      execution_stats: true,
      allow_fallback: false,
      partition: 'p1',
    });
    assert.equal(req.limit, 0);
    assert.equal(req.skip, 3);
    assert.deepEqual(
      req.sort.map((s) => [s.field, s.path, s.direction]),
      [
        ['a', ['a'], 'asc'],
        ['b.c', ['b', 'c'], 'asc'],
      ],
    );
    assert.deepEqual(req.fields, [
      { field: '_id', path: ['_id'] },
      { field: 'a.b', path: ['a', 'b'] },
    ]);
    assert.deepEqual(req.use_index, ['ddoc', 'name']);
    assert.equal(req.bookmark, undefined);
    assert.equal(req.stale, 'ok');
    assert.equal(req.partition, 'p1');
    assert.equal(req.match({ a: 1 }), true);
  });

  void it('normalises use_index forms', () => {
    assert.deepEqual(parseFindRequest({ selector: {}, use_index: 'ddoc' }).use_index, ['ddoc']);
    assert.deepEqual(parseFindRequest({ selector: {}, use_index: '_design/ddoc' }).use_index, ['ddoc']);
    assert.deepEqual(parseFindRequest({ selector: {}, use_index: ['_design/d', 'n'] }).use_index, ['d', 'n']);
    assert.deepEqual(parseFindRequest({ selector: {}, use_index: null }).use_index, []);
    assert.deepEqual(parseFindRequest({ selector: {}, use_index: [] }).use_index, []);
  });

  void it('rejects malformed bodies', () => {
    rejects(null, 'bad_request');
    rejects([], 'bad_request');
    rejects({}, 'missing_required_key');
    rejects({ selector: 'x' }, 'invalid_selector_json');
    rejects({ selector: { a: { $foo: 1 } } }, 'invalid_operator');
    rejects({ selector: {}, nope: 1 }, 'invalid_key');
    for (const v of [-1, 1.5, '5', null]) {
      rejects({ selector: {}, limit: v }, 'invalid_non_neg_integer');
      rejects({ selector: {}, skip: v }, 'invalid_non_neg_integer');
    }
    rejects({ selector: {}, r: 0 }, 'invalid_pos_integer');
    for (const key of ['conflicts', 'update', 'stable', 'execution_stats', 'allow_fallback']) {
      rejects({ selector: {}, [key]: 'true' }, 'invalid_boolean');
    }
    rejects({ selector: {}, sort: 'a' }, 'invalid_sort_json');
    rejects({ selector: {}, sort: [1] }, 'invalid_sort_field');
    rejects({ selector: {}, sort: [''] }, 'invalid_sort_field');
    rejects({ selector: {}, sort: [{ a: 'asc', b: 'asc' }] }, 'invalid_sort_field');
    rejects({ selector: {}, sort: [{ a: 'up' }] }, 'invalid_sort_dir');
    rejects({ selector: {}, sort: [{ a: 'asc' }, { b: 'desc' }] }, 'unsupported_mixed_sort');
    rejects({ selector: {}, sort: ['a..b'] }, 'invalid_field_name');
    rejects({ selector: {}, fields: 'a' }, 'invalid_fields');
    rejects({ selector: {}, fields: [1] }, 'invalid_field');
    rejects({ selector: {}, fields: ['a..b'] }, 'invalid_field_name');
    rejects({ selector: {}, use_index: 'a/b/c' }, 'invalid_index_name');
    rejects({ selector: {}, use_index: [1] }, 'invalid_index_name');
    rejects({ selector: {}, use_index: ['a', 'b', 'c'] }, 'invalid_index_name');
    rejects({ selector: {}, bookmark: 5 }, 'invalid_bookmark');
    rejects({ selector: {}, bookmark: 'not a bookmark' }, 'invalid_bookmark');
    rejects({ selector: {}, stale: 'yes' }, 'invalid_value');
    rejects({ selector: {}, partition: '_p' }, 'illegal_partition');
    rejects({ selector: {}, partition: 'a:b' }, 'illegal_partition');
    rejects({ selector: {}, partition: 1 }, 'illegal_partition');
  });
});

const DOCS: Doc[] = deepFreeze([
  { _id: 'c', _rev: '1-c', n: 3, name: 'b', tags: ['x'] },
  { _id: 'a', _rev: '1-a', n: 1, name: 'B', nested: { x: 1, y: 2 } },
  { _id: 'B', _rev: '1-B', n: 2, name: 'a' },
  { _id: '_design/x', _rev: '1-d', n: 0 },
  { _id: 'd', _rev: '2-d', _deleted: true, n: 4 },
  { _id: 'e', _rev: '1-e', n: 5 },
  { _id: 'f', _rev: '1-f', n: 5, name: 'A' },
]);

void describe('runFind', () => {
  void it('returns matching docs in raw _id order, skipping design and deleted docs', () => {
    const res = find(DOCS, { selector: {} });
    assert.deepEqual(ids(res.docs), ['B', 'a', 'c', 'e', 'f']);
    assert.equal(res.warning, NO_INDEX_WARNING);
    assert.equal(res.execution_stats, undefined);
    assert.equal(find(DOCS, { selector: { n: { $gte: 3 } } }).docs.length, 3);
  });

  void it('applies skip and limit', () => {
    assert.deepEqual(ids(find(DOCS, { selector: {}, skip: 1, limit: 2 }).docs), ['a', 'c']);
    assert.deepEqual(ids(find(DOCS, { selector: {}, limit: 0 }).docs), []);
    assert.deepEqual(ids(find(DOCS, { selector: {}, skip: 10 }).docs), []);
  });

  void it('sorts with collation, leaves out docs without the sort field, breaks ties by _id', () => {
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: ['name'] }).docs), ['B', 'f', 'c', 'a']);
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: [{ name: 'desc' }] }).docs), ['a', 'c', 'f', 'B']);
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: ['n'] }).docs), ['a', 'B', 'c', 'e', 'f']);
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: [{ n: 'desc' }] }).docs), [
      'f',
      'e',
      'c',
      'B',
      'a',
    ]);
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: [{ _id: 'desc' }] }).docs), [
      'f',
      'e',
      'c',
      'a',
      'B',
    ]);
    assert.deepEqual(ids(find(DOCS, { selector: {}, sort: ['n'], skip: 1, limit: 2 }).docs), ['B', 'c']);
  });

  void it('projects fields, nesting dotted paths and never touching the source', () => {
    const res = find(DOCS, {
      selector: { _id: 'a' },
      fields: ['nested.y', 'name', 'missing', 'name.deeper'],
    });
    assert.deepEqual(res.docs, [{ nested: { y: 2 }, name: 'B' }]);
    const both = find(DOCS, { selector: { _id: 'a' }, fields: ['nested', 'nested.y', '_id'] });
    assert.deepEqual(both.docs, [{ nested: { x: 1, y: 2 }, _id: 'a' }]);
    const arr = find([{ _id: 'x', l: [{ a: 1, b: 2 }, 5] }], { selector: {}, fields: ['l.0.b', 'l.1'] });
    assert.deepEqual(arr.docs, [{ l: { 0: { b: 2 }, 1: 5 } }]);
  });

  void it('projects a field named __proto__ as data', () => {
    const doc = JSON.parse('{"_id":"p","__proto__":{"x":1}}') as Doc;
    const [out] = find([doc], { selector: {}, fields: ['__proto__.x'] }).docs;
    assert.ok(out);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { x: 1 });
  });

  void it('reports execution stats, stopping the _id-order scan at the limit', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ _id: `doc${String(i).padStart(3, '0')}`, i }));
    const res = find(many, { selector: { i: { $gte: 10 } }, limit: 5, execution_stats: true });
    assert.deepEqual(ids(res.docs), ['doc010', 'doc011', 'doc012', 'doc013', 'doc014']);
    const stats = res.execution_stats;
    assert.ok(stats);
    assert.equal(stats.total_docs_examined, 15);
    assert.equal(stats.total_keys_examined, 15);
    assert.equal(stats.total_quorum_docs_examined, 0);
    assert.equal(stats.results_returned, 5);
    assert.ok(stats.execution_time_ms >= 0);
    assert.equal(res.warning, NO_INDEX_WARNING);

    const sparse = find(many, { selector: { i: 99 }, execution_stats: true });
    assert.equal(sparse.execution_stats?.total_docs_examined, 100);
    assert.match(sparse.warning ?? '', /examined is high in proportion/);
  });

  for (const sort of [[], ['n'], [{ n: 'desc' }], [{ _id: 'desc' }]]) {
    void it(`pages with bookmarks, sort ${JSON.stringify(sort)}`, () => {
      const docs = Array.from({ length: 23 }, (_, i) => ({ _id: `id${(i * 7) % 23}`, n: i % 4 }));
      const all = find(docs, { selector: {}, sort, limit: 100 }).docs;
      assert.equal(all.length, 23);
      const seen: Doc[] = [];
      let bookmark: string | undefined;
      for (let page = 0; page < 10; page++) {
        const res = find(docs, {
          selector: {},
          sort,
          limit: 5,
          ...(bookmark === undefined ? {} : { bookmark }),
        });
        if (res.docs.length === 0) {
          assert.equal(res.bookmark, bookmark);
          break;
        }
        seen.push(...res.docs);
        bookmark = res.bookmark;
      }
      assert.deepEqual(ids(seen), ids(all));
    });
  }

  void it('returns "nil" as the bookmark when nothing matched', () => {
    assert.equal(find(DOCS, { selector: { n: 99 } }).bookmark, 'nil');
  });

  void it('rejects a bookmark from a differently sorted query', () => {
    const { bookmark } = find(DOCS, { selector: {}, sort: ['n'], limit: 1 });
    assert.throws(
      () => find(DOCS, { selector: {}, bookmark }),
      (err: unknown) => err instanceof DoppelError && err.errorName === 'invalid_bookmark',
    );
  });

  void it('warns about an unusable use_index, or refuses without fallback', () => {
    const res = find(DOCS, { selector: {}, use_index: 'foo' });
    assert.equal(
      res.warning,
      `_design/foo was not used because it does not contain a valid index for this query.\n${NO_INDEX_WARNING}`,
    );
    const named = find(DOCS, { selector: {}, use_index: ['foo', 'bar'] });
    assert.match(named.warning ?? '', /^_design\/foo, bar was not used because it is not a valid index/);
    const invalidIndex = (err: unknown) => err instanceof DoppelError && err.errorName === 'invalid_index';
    assert.throws(() => find(DOCS, { selector: {}, use_index: 'foo', allow_fallback: false }), invalidIndex);
    assert.throws(() => find(DOCS, { selector: {}, allow_fallback: false }), invalidIndex);
  });

  void it('restricts to a partition', () => {
    const docs = [{ _id: 'p1:a' }, { _id: 'p2:b' }, { _id: 'p1:c' }];
    assert.deepEqual(ids(find(docs, { selector: {}, partition: 'p1' }).docs), ['p1:a', 'p1:c']);
  });

  void it('stops pulling documents once the page is full when they arrive in _id order', () => {
    let pulled = 0;
    function* stream() {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield { _id: `k${String(i).padStart(4, '0')}`, i };
      }
    }
    const req = parseFindRequest({ selector: { i: { $mod: [2, 1] } }, limit: 3, skip: 1 });
    assert.deepEqual(ids(runFind(stream(), req, { inIdOrder: true }).docs), ['k0003', 'k0005', 'k0007']);
    assert.equal(pulled, 8);
    const desc = parseFindRequest({ selector: {}, sort: [{ _id: 'desc' }], limit: 2 });
    assert.deepEqual(ids(runFind(stream(), desc, { inIdOrder: true }).docs), ['k0999', 'k0998']);
  });

  void it('agrees with a naive filter-sort-slice on random data', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const values = [null, true, 1, 2, 2.5, 'a', 'A', 'b', [1], { x: 1 }];
    const docs: Doc[] = Array.from({ length: 300 }, (_, i) => {
      const d: Doc = { _id: `d${rand(1000)}-${i}` };
      if (rand(4) > 0) d['k'] = values[rand(values.length)];
      if (rand(4) > 0) d['j'] = values[rand(values.length)];
      return d;
    });
    for (let round = 0; round < 60; round++) {
      const desc = rand(2) === 1;
      const fields = [['k'], ['k', 'j'], ['j']][rand(3)];
      const sort = fields.map((f) => (desc ? { [f]: 'desc' } : f));
      const skip = rand(5) * rand(20);
      const limit = rand(4) === 0 ? 1000 : rand(30);
      const selector = rand(2) === 1 ? {} : { k: { $gte: 2 } };
      const match = parseFindRequest({ selector }).match;
      const expected = docs
        .filter((d) => match(d) && fields.every((f) => f in d))
        .sort((a, b) => {
          for (const f of fields) {
            const c = collate(a[f], b[f]);
            if (c !== 0) return desc ? -c : c;
          }
          const c = compareCodePoints(a['_id'] as string, b['_id'] as string);
          return desc ? -c : c;
        })
        .slice(skip, skip + limit);
      const actual = find(docs, { selector, sort, skip, limit }).docs;
      assert.deepEqual(ids(actual), ids(expected), JSON.stringify({ sort, skip, limit, selector }));
    }
  });

  void it('accepts any iterable', () => {
    function* gen() {
      yield* DOCS;
    }
    const req: FindRequest = parseFindRequest({ selector: { n: { $lt: 3 } }, sort: ['n'] });
    assert.deepEqual(ids(runFind(gen(), req).docs), ['a', 'B']);
  });
});
