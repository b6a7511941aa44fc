import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DoppelError } from '../../../errors.js';
import { collate } from '../collate.js';
import { compileSelector, fieldValue, normalizeSelector, parseFieldPath } from './selector.js';
import { prng as rng } from '../../../../test/support/prng.js';

type Doc = Record<string, unknown>;

const matches = (selector: unknown, doc: Doc): boolean => compileSelector(selector)(doc);

function assertRejects(selector: unknown, errorName: string): void {
  assert.throws(
    () => compileSelector(selector),
    (err: unknown) => err instanceof DoppelError && err.kind === 'bad_request' && err.errorName === errorName,
    JSON.stringify(selector),
  );
}

void describe('field paths', () => {
  void it('splits on unescaped dots and unescapes', () => {
    assert.deepEqual(parseFieldPath('a.b.c'), ['a', 'b', 'c']);
    assert.deepEqual(parseFieldPath('a\\.b'), ['a.b']);
    assert.deepEqual(parseFieldPath('a.b\\.c'), ['a', 'b.c']);
    assert.throws(() => parseFieldPath('a..b'), DoppelError);
    assert.throws(() => parseFieldPath(''), DoppelError);
  });

  void it('reads nested values and array indexes', () => {
    const doc = { a: { b: [10, { c: 'x' }] } };
    assert.equal(fieldValue(doc, ['a', 'b', '1', 'c']), 'x');
    assert.equal(fieldValue(doc, ['a', 'b', '5']), undefined);
    assert.equal(fieldValue(doc, ['a', 'zz']), undefined);
    assert.equal(fieldValue({ toString: 1 }, ['toString']), 1);
    assert.equal(fieldValue({}, ['toString']), undefined);
  });
});

void describe('compileSelector: structure', () => {
  void it('matches everything with the empty selector', () => {
    assert.equal(matches({}, {}), true);
  });

  void it('treats bare values as $eq and several keys as $and', () => {
    assert.equal(matches({ a: 1, b: 'x' }, { a: 1, b: 'x' }), true);
    assert.equal(matches({ a: 1, b: 'x' }, { a: 1, b: 'y' }), false);
  });

  void it('treats nested objects as field paths, and {} as equality with {}', () => {
    assert.equal(matches({ a: { b: { c: 1 } } }, { a: { b: { c: 1, d: 2 } } }), true);
    assert.equal(matches({ a: {} }, { a: {} }), true);
    assert.equal(matches({ a: {} }, { a: { b: 1 } }), false);
  });

  void it('follows dot paths, escaped dots and array indexes', () => {
    const doc = { 'a.b': 1, a: { b: 2 }, list: ['w', 'x'] };
    assert.equal(matches({ 'a\\.b': 1 }, doc), true);
    assert.equal(matches({ 'a.b': 2 }, doc), true);
    assert.equal(matches({ 'list.1': 'x' }, doc), true);
    assert.equal(matches({ a: { $and: [{ b: { $gt: 1 } }, { b: { $lt: 3 } }] } }, doc), true);
  });

  void it('fails every condition on a missing field except $exists: false', () => {
    const doc = { b: 1 };
    for (const cond of [
      { $ne: 1 },
      { $nin: [1] },
      { $lt: 1 },
      { $gt: null },
      { $not: { $eq: 1 } },
      { $not: { $regex: 'x' } },
      { $exists: true },
    ]) {
      assert.equal(matches({ a: cond }, doc), false, JSON.stringify(cond));
    }
    assert.equal(matches({ a: { $exists: false } }, doc), true);
    assert.equal(matches({ a: { $not: { $exists: true } } }, doc), true);
    assert.equal(matches({ $not: { a: 1 } }, doc), false);
  });

  void it('fails even $exists: false on a path through a scalar or past an array', () => {
    assert.equal(matches({ 'a.b': { $exists: false } }, { a: 'str' }), false);
    assert.equal(matches({ 'a.5': { $exists: false } }, { a: [1] }), false);
    assert.equal(matches({ 'a.b': { $exists: false } }, { a: {} }), true);
  });

  void it('implements $and, $or, $nor and $not', () => {
    const doc = { a: 1, b: 2 };
    assert.equal(matches({ $and: [{ a: 1 }, { b: 2 }] }, doc), true);
    assert.equal(matches({ $or: [{ a: 2 }, { b: 2 }] }, doc), true);
    assert.equal(matches({ $or: [{ a: 2 }, { b: 3 }] }, doc), false);
    assert.equal(matches({ $nor: [{ a: 2 }, { b: 3 }] }, doc), true);
    assert.equal(matches({ $nor: [{ a: 1 }, { b: 3 }] }, doc), false);
    assert.equal(matches({ $not: { a: 2 } }, doc), true);
    assert.equal(matches({ a: { $not: { $gt: 0 } } }, doc), false);
    assert.equal(matches({ $not: { $not: { a: 1 } } }, doc), true);
  });

  void it('matches everything with empty $and, $or and $nor, as CouchDB does', () => {
    assert.equal(matches({ $and: [] }, {}), true);
    assert.equal(matches({ $or: [] }, {}), true);
    assert.equal(matches({ $nor: [] }, {}), true);
    assert.equal(matches({ a: 1, $or: [] }, { a: 2 }), false);
  });
});

void describe('compileSelector: operators', () => {
  void it('compares in collation order across types', () => {
    for (const v of ['str', [], {}, 6]) assert.equal(matches({ a: { $gt: 5 } }, { a: v }), true);
    for (const v of [null, true, 4, 5]) assert.equal(matches({ a: { $gt: 5 } }, { a: v }), false);
    assert.equal(matches({ a: { $gte: 5, $lte: 5 } }, { a: 5 }), true);
    assert.equal(matches({ a: { $lt: 'b' } }, { a: 'A' }), true);
    assert.equal(matches({ a: 'é' }, { a: 'e\u0301' }), true);
    assert.equal(matches({ a: { $eq: { x: 1, y: 2 } } }, { a: { y: 2, x: 1 } }), false);
  });

  void it('compares arrays as whole values with $eq', () => {
    assert.equal(matches({ a: 1 }, { a: [1] }), false);
    assert.equal(matches({ a: [1, 2] }, { a: [1, 2] }), true);
    assert.equal(matches({ a: { $ne: 1 } }, { a: [1] }), true);
  });

  void it('compares _id in raw order like _all_docs', () => {
    assert.equal(matches({ _id: { $gt: 'a' } }, { _id: 'B' }), false);
    assert.equal(matches({ name: { $gt: 'a' } }, { name: 'B' }), true);
    assert.equal(matches({ _id: { $in: ['b'] } }, { _id: 'B' }), false);
    assert.equal(matches({ _id: 'e\u0301' }, { _id: 'é' }), false);
  });

  void it('implements $in and $nin, element-wise on arrays', () => {
    assert.equal(matches({ a: { $in: [1, 2] } }, { a: 2 }), true);
    assert.equal(matches({ a: { $in: [1, 2] } }, { a: [5, 2] }), true);
    assert.equal(matches({ a: { $in: [[1, 2]] } }, { a: [1, 2] }), false);
    assert.equal(matches({ a: { $in: [[1, 2]] } }, { a: [[1, 2]] }), true);
    assert.equal(matches({ a: { $in: ['é'] } }, { a: 'e\u0301' }), true);
    assert.equal(matches({ a: { $in: ['a\u0001'] } }, { a: 'a' }), true);
    assert.equal(matches({ a: { $in: [] } }, { a: 1 }), false);
    assert.equal(matches({ a: { $nin: [1, 2] } }, { a: [5, 2] }), false);
    assert.equal(matches({ a: { $nin: [1, 2] } }, { a: 3 }), true);
    assert.equal(matches({ a: { $nin: [] } }, { a: 3 }), true);
  });

  void it('implements $all with exact equality', () => {
    assert.equal(matches({ a: { $all: [1, 2] } }, { a: [2, 3, 1] }), true);
    assert.equal(matches({ a: { $all: [1, 4] } }, { a: [2, 3, 1] }), false);
    assert.equal(matches({ a: { $all: ['é'] } }, { a: ['e\u0301'] }), false);
    assert.equal(matches({ a: { $all: [[1, 2]] } }, { a: [1, 2] }), true);
    assert.equal(matches({ a: { $all: [[1, 2]] } }, { a: [[1, 2], 3] }), true);
    assert.equal(matches({ a: { $all: [] } }, { a: [] }), false);
    assert.equal(matches({ a: { $all: [1] } }, { a: 1 }), false);
  });

  void it('implements $size, $mod, $type and $exists', () => {
    assert.equal(matches({ a: { $size: 2 } }, { a: [1, 2] }), true);
    assert.equal(matches({ a: { $size: 2 } }, { a: 'ab' }), false);
    assert.equal(matches({ a: { $mod: [3, 1] } }, { a: 7 }), true);
    assert.equal(matches({ a: { $mod: [3, -2] } }, { a: -5 }), true);
    assert.equal(matches({ a: { $mod: [3, 1] } }, { a: 7.5 }), false);
    assert.equal(matches({ a: { $mod: [3, 1] } }, { a: '7' }), false);
    const typed: [string, unknown][] = [
      ['null', null],
      ['boolean', false],
      ['number', 1.5],
      ['string', ''],
      ['array', []],
      ['object', {}],
    ];
    for (const [type, value] of typed) {
      for (const [other] of typed) {
        assert.equal(matches({ a: { $type: other } }, { a: value }), type === other);
      }
    }
    assert.equal(matches({ a: { $exists: true } }, { a: null }), true);
    assert.equal(matches({ a: { $exists: false } }, { a: null }), false);
  });

  void it('implements $regex on strings only, with leading inline flags', () => {
    assert.equal(matches({ a: { $regex: '^ab' } }, { a: 'abc' }), true);
    assert.equal(matches({ a: { $regex: 'b' } }, { a: 'abc' }), true);
    assert.equal(matches({ a: { $regex: '^AB' } }, { a: 'abc' }), false);
    assert.equal(matches({ a: { $regex: '(?i)^AB' } }, { a: 'abc' }), true);
    assert.equal(matches({ a: { $regex: '1' } }, { a: 1 }), false);
    assert.equal(matches({ a: { $regex: 'a' } }, { a: ['a'] }), false);
  });

  void it('implements $beginsWith', () => {
    assert.equal(matches({ a: { $beginsWith: 'ab' } }, { a: 'abc' }), true);
    assert.equal(matches({ a: { $beginsWith: 'ab' } }, { a: 'Abc' }), false);
    assert.equal(matches({ a: { $beginsWith: '' } }, { a: 'x' }), true);
    assert.equal(matches({ a: { $beginsWith: '1' } }, { a: 12 }), false);
  });

  void it('implements $elemMatch, $allMatch and $keyMapMatch', () => {
    const doc = { nums: [1, 5, 9], people: [{ n: 'x', age: 3 }, { n: 'y' }], map: { k1: 1, k2: 2 } };
    assert.equal(matches({ nums: { $elemMatch: { $gt: 4, $lt: 6 } } }, doc), true);
    assert.equal(matches({ nums: { $elemMatch: { $gt: 9 } } }, doc), false);
    assert.equal(matches({ people: { $elemMatch: { n: 'y' } } }, doc), true);
    assert.equal(matches({ people: { $elemMatch: { n: 'y', age: { $exists: true } } } }, doc), false);
    assert.equal(matches({ nums: { $allMatch: { $gt: 0 } } }, doc), true);
    assert.equal(matches({ nums: { $allMatch: { $gt: 1 } } }, doc), false);
    assert.equal(matches({ nums: { $allMatch: { $gt: 1 } } }, { nums: [] }), false);
    assert.equal(matches({ map: { $keyMapMatch: { $eq: 'k2' } } }, doc), true);
    assert.equal(matches({ map: { $keyMapMatch: { $regex: '^z' } } }, doc), false);
    assert.equal(matches({ nums: { $keyMapMatch: { $eq: '0' } } }, doc), false);
    assert.equal(matches({ map: { $elemMatch: { $eq: 1 } } }, doc), false);
  });

  void it('pushes negation into sub-selectors too', () => {
    const doc = { people: [{ n: 'x' }, { m: 1 }] };
    assert.equal(matches({ people: { $elemMatch: { $not: { n: 'x' } } } }, doc), false);
    assert.equal(matches({ people: { $elemMatch: { $nor: [{ n: 'z' }] } } }, doc), true);
  });
});

void describe('compileSelector: validation', () => {
  void it('rejects non-object selectors', () => {
    for (const s of [null, 1, 'a', [], [{}], true]) assertRejects(s, 'invalid_selector_json');
  });

  void it('rejects unknown and unsupported operators', () => {
    assertRejects({ a: { $foo: 1 } }, 'invalid_operator');
    assertRejects({ $foo: [] }, 'invalid_operator');
    assertRejects({ $where: 'x' }, 'not_supported');
    assertRejects({ $text: 'x' }, 'not_supported');
  });

  void it('rejects conditions without a field', () => {
    assertRejects({ $gt: 1 }, 'invalid_selector');
    assertRejects({ $not: { $gt: 1 } }, 'invalid_selector');
    assertRejects({ $and: [{ $gt: 1 }, { a: 1 }] }, 'invalid_selector');
    assertRejects({ $or: [{}] }, 'invalid_selector');
  });

  void it('rejects bad field names', () => {
    assertRejects({ 'a..b': 1 }, 'invalid_field_name');
    assertRejects({ '': 1 }, 'invalid_field_name');
  });

  void it('rejects bad operator arguments', () => {
    const bad: Record<string, unknown>[] = [
      { $and: {} },
      { $or: 1 },
      { $nor: 'x' },
      { $not: [] },
      { $in: 1 },
      { $nin: {} },
      { $all: 'x' },
      { $exists: 'yes' },
      { $type: 'integer' },
      { $type: 1 },
      { $size: -1 },
      { $size: 1.5 },
      { $size: '1' },
      { $mod: [0, 1] },
      { $mod: [2.5, 1] },
      { $mod: [2, 0.5] },
      { $mod: [2] },
      { $mod: 2 },
      { $regex: '(' },
      { $regex: 1 },
      { $beginsWith: 1 },
      { $elemMatch: [] },
      { $allMatch: 1 },
      { $keyMapMatch: null },
    ];
    for (const cond of bad) assertRejects({ a: cond }, 'bad_arg');
  });

  void it('rejects absurdly deep selectors with a DoppelError', () => {
    let s: unknown = { a: 1 };
    for (let i = 0; i < 5000; i++) s = { $and: [s] };
    assert.throws(
      () => compileSelector(s),
      (err: unknown) => err instanceof DoppelError && err.errorName === 'invalid_selector',
    );
  });
});

void describe('normalizeSelector', () => {
  void it('makes implicit operators explicit and sorts', () => {
    assert.deepEqual(normalizeSelector({ b: 2, a: { c: 1 } }), {
      $and: [{ 'a.c': { $eq: 1 } }, { b: { $eq: 2 } }],
    });
    assert.deepEqual(normalizeSelector({ 'x\\.y': { $gt: 1 } }), { 'x\\.y': { $gt: 1 } });
    assert.deepEqual(normalizeSelector({}), {});
  });

  void it('gives equivalent spellings the same form', () => {
    const forms = [
      { a: 1, b: { $ne: 2 } },
      { b: { $not: { $eq: 2 } }, a: { $eq: 1 } },
      { $and: [{ $nor: [{ b: 2 }] }, { a: 1 }] },
      { $and: [{ a: 1 }, { $and: [{ $not: { b: 2 } }] }] },
    ];
    const expected = JSON.stringify(normalizeSelector(forms[0]));
    for (const f of forms) assert.equal(JSON.stringify(normalizeSelector(f)), expected, JSON.stringify(f));
  });

  void it('keeps argument objects verbatim', () => {
    assert.deepEqual(normalizeSelector({ a: { $eq: { y: 1, x: 2 } } }), { a: { $eq: { y: 1, x: 2 } } });
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests over random documents and selectors.

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  scalar(): unknown {
    return this.pick<unknown>([
      null,
      true,
      false,
      0,
      1,
      2,
      -1,
      2.5,
      'a',
      'A',
      'b',
      'ab',
      'é',
      'e\u0301',
      'x',
      '',
    ]);
  }
  value(depth = 0): unknown {
    const k = this.int(depth > 1 ? 4 : 6);
    if (k < 4) return this.scalar();
    if (k === 4) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    const o: Doc = {};
    for (let i = this.int(3); i > 0; i--) o[this.pick(['x', 'y', 'a'])] = this.value(depth + 1);
    return o;
  }
  doc(allFields: boolean): Doc {
    const d: Doc = { _id: this.pick(['a', 'B', 'c', 'é']) };
    for (const f of ['a', 'b', 'c']) if (allFields || this.r() < 0.6) d[f] = this.value();
    return d;
  }
  /** A condition on one value (what goes under a field name). */
  cond(depth: number): unknown {
    const ops = [
      () => this.scalar(),
      () => ({ [this.pick(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte'])]: this.value(1) }),
      () => ({ $exists: this.r() < 0.5 }),
      () => ({ $type: this.pick(['null', 'boolean', 'number', 'string', 'array', 'object']) }),
      () => ({
        [this.pick(['$in', '$nin', '$all'])]: Array.from({ length: this.int(3) }, () => this.value(1)),
      }),
      () => ({ $size: this.int(3) }),
      () => ({ $mod: [this.pick([2, 3, -2]), this.pick([0, 1, -1])] }),
      () => ({ $regex: this.pick(['^a', 'b', '(?i)^A', '^$', 'é']) }),
      () => ({ $beginsWith: this.pick(['a', 'A', '', 'e']) }),
      () => ({ $not: this.cond(depth + 1) }),
      () => ({ $gt: this.scalar(), $lt: this.scalar() }),
      () => ({ [this.pick(['$elemMatch', '$allMatch'])]: this.sub(depth + 1) }),
      () => ({ $keyMapMatch: { $in: ['x', 'y', 'q'].slice(this.int(3)) } }),
    ];
    return ops[this.int(depth > 2 ? 9 : ops.length)]();
  }
  /** A sub-selector applied to array elements: bare operators or element fields. */
  sub(depth: number): unknown {
    const c = this.cond(depth);
    if (this.r() < 0.5 && typeof c === 'object' && c !== null && !Array.isArray(c)) return c;
    return { [this.pick(['x', 'y'])]: c };
  }
  selector(depth = 0): Record<string, unknown> {
    const k = this.int(depth > 2 ? 2 : 6);
    const f = () => this.pick(['a', 'b', 'c']);
    switch (k) {
      case 0:
      case 1:
        return { [f()]: this.cond(depth + 1) };
      case 2:
        return { [f()]: this.cond(depth + 1), [f()]: this.cond(depth + 1) };
      case 3:
        return { [this.pick(['$and', '$or', '$nor'])]: [this.selector(depth + 1), this.selector(depth + 1)] };
      case 4:
        return { $not: this.selector(depth + 1) };
      default:
        return { [this.pick(['$and', '$or'])]: [this.selector(depth + 1)] };
    }
  }
}

/** A cond wrapped in `$not` must be an object; bare scalars are rewrapped as `$eq`. */
function fixNot(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fixNot);
  if (typeof v !== 'object' || v === null) return v;
  const out: Doc = {};
  for (const [k, x] of Object.entries(v as Doc)) {
    if (k === '$not' && (typeof x !== 'object' || x === null || Array.isArray(x))) out[k] = { $eq: x };
    else if (
      k.startsWith('$') &&
      !['$and', '$or', '$nor', '$not', '$elemMatch', '$allMatch', '$keyMapMatch'].includes(k)
    )
      out[k] = x;
    else out[k] = fixNot(x);
  }
  return out;
}

void describe('property tests', () => {
  const g = new Gen(rng(20240601));
  const fullDocs = Array.from({ length: 60 }, () => g.doc(true));
  const someDocs = Array.from({ length: 60 }, () => g.doc(false));
  const selectors = Array.from({ length: 300 }, () => fixNot(g.selector()) as Doc);

  void it('$not: S matches exactly when S does not, on docs with every field', () => {
    for (const s of selectors) {
      const m = compileSelector(s);
      const n = compileSelector({ $not: s });
      for (const d of fullDocs) assert.equal(n(d), !m(d), `${JSON.stringify(s)} on ${JSON.stringify(d)}`);
    }
  });

  void it('$and, $or and $nor combine like &&, || and !A && !B', () => {
    for (let i = 0; i + 1 < selectors.length; i += 2) {
      const [a, b] = [selectors[i], selectors[i + 1]];
      const [ma, mb] = [compileSelector(a), compileSelector(b)];
      const and = compileSelector({ $and: [a, b] });
      const or = compileSelector({ $or: [a, b] });
      const nor = compileSelector({ $nor: [a, b] });
      for (const d of someDocs) {
        assert.equal(and(d), ma(d) && mb(d));
        assert.equal(or(d), ma(d) || mb(d));
      }
      for (const d of fullDocs) assert.equal(nor(d), !ma(d) && !mb(d));
    }
  });

  void it('normalizeSelector is idempotent and means the same as its input', () => {
    for (const s of selectors) {
      const norm = normalizeSelector(s);
      assert.deepEqual(normalizeSelector(norm), norm, JSON.stringify(s));
      const [m, mn] = [compileSelector(s), compileSelector(norm)];
      for (const d of [...fullDocs, ...someDocs])
        assert.equal(mn(d), m(d), `${JSON.stringify(s)} on ${JSON.stringify(d)}`);
    }
  });

  void it('$in agrees with a brute-force collation scan', () => {
    const extra = ['a\u0001', 'A', '\u00e9', 'e\u0301', 'ab'];
    for (let i = 0; i < 300; i++) {
      const args = Array.from({ length: g.int(5) }, () => (g.r() < 0.3 ? g.pick(extra) : g.value(1)));
      const m = compileSelector({ a: { $in: args } });
      const one = (x: unknown) => args.some((a) => collate(x, a) === 0);
      for (const d of fullDocs) {
        const v = d['a'];
        assert.equal(
          m(d),
          Array.isArray(v) ? v.some(one) : one(v),
          `${JSON.stringify(args)} ${JSON.stringify(v)}`,
        );
      }
      for (const x of extra) assert.equal(m({ a: x }), one(x));
    }
  });

  void it('never throws anything but a DoppelError on junk, and compiled junk never throws', () => {
    const keys = [
      'a',
      'b.c',
      '$and',
      '$or',
      '$nor',
      '$not',
      '$eq',
      '$in',
      '$nin',
      '$all',
      '$size',
      '$mod',
      '$regex',
      '$type',
      '$exists',
      '$elemMatch',
      '$allMatch',
      '$keyMapMatch',
      '$beginsWith',
      '$gt',
      '$foo',
      '',
      'a..b',
      '\\.',
    ];
    const junk = (depth: number): unknown => {
      const k = g.int(depth > 3 ? 3 : 6);
      if (k === 0) return g.scalar();
      if (k === 1) return g.pick<unknown>(['(', '[a-', 'null', 'array', 1.5, -1, 0, [0, 1], [3, 1], [1]]);
      if (k === 2 || k === 3) {
        const o: Doc = {};
        for (let i = g.int(3); i > 0; i--) o[g.pick(keys)] = junk(depth + 1);
        return o;
      }
      return Array.from({ length: g.int(3) }, () => junk(depth + 1));
    };
    let compiled = 0;
    for (let i = 0; i < 3000; i++) {
      const s = junk(0);
      let m: ((d: Doc) => boolean) | undefined;
      try {
        m = compileSelector(s);
        normalizeSelector(s);
      } catch (err) {
        assert.ok(err instanceof DoppelError, `${String(err)} for ${JSON.stringify(s)}`);
        continue;
      }
      compiled++;
      for (const d of someDocs.slice(0, 10)) m(d);
    }
    assert.ok(compiled > 100, `only ${compiled} junk selectors compiled`);
  });
});
