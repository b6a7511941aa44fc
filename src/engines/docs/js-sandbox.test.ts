import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DoppelError, ErrorKind } from '../../errors.js';
import { compileFilter, type FilterRequest } from './js-sandbox.js';

const req: FilterRequest = { query: {}, userCtx: { db: 'db', name: null, roles: [] } };
const opts = { timeoutMs: 1000, name: 'app/f' };

function functionError(errorName: string, reason?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof DoppelError, `expected a DoppelError, got ${String(err)}`);
    assert.equal(err.kind, ErrorKind.FunctionError);
    assert.equal(err.errorName, errorName);
    if (reason !== undefined) assert.match(err.reason, reason);
    return true;
  };
}

void describe('compileFilter: results', () => {
  void it('passes and fails docs in order', () => {
    const f = compileFilter("function(doc, req) { return doc.type === 'x'; }", opts);
    assert.deepEqual(f.run([{ type: 'x' }, { type: 'y' }, { type: 'x' }, {}], req), [
      true,
      false,
      true,
      false,
    ]);
  });

  void it("uses truthiness, as CouchDB's `(fun(doc, req) && true) || false`", () => {
    const f = compileFilter('function(doc) { return doc.bop; }', opts);
    const docs = [{ bop: 'foom' }, { bop: '' }, { bop: 0 }, { bop: 1 }, { bop: {} }, { bop: null }, {}];
    assert.deepEqual(f.run(docs, req), [true, false, false, true, true, false, false]);
  });

  void it('reads req.query and req.userCtx', () => {
    const f = compileFilter('function(doc, req) { return doc[req.query.field] === req.userCtx.name; }', opts);
    const r: FilterRequest = { query: { field: 'owner' }, userCtx: { db: 'db', name: 'bob', roles: [] } };
    assert.deepEqual(f.run([{ owner: 'bob' }, { owner: 'alice' }], r), [true, false]);
  });

  void it('returns [] for no docs', () => {
    assert.deepEqual(compileFilter('function() { return true; }', opts).run([], req), []);
  });

  void it('accepts arrow functions, named functions, whitespace and trailing semicolons', () => {
    for (const source of [
      '(doc) => doc.ok',
      'doc => !!doc.ok',
      'function named(doc) { return doc.ok; }',
      '\n  function(doc, req) { return doc.ok; } ;; \n',
      '// leading comment\nfunction(doc) { return doc.ok; } // trailing comment',
    ]) {
      assert.deepEqual(
        compileFilter(source, opts).run([{ ok: true }, { ok: false }], req),
        [true, false],
        source,
      );
    }
  });

  void it("provides CouchDB's helpers", () => {
    const f = compileFilter(
      `function(doc) {
        log('x'); emit(1, 2);
        return isArray(doc.a) && sum(doc.a) === 6 && toJSON(doc.a) === '[1,2,3]' &&
          JSON.parse('{"x":1}').x === 1 && Math.max(1, 2) === 2 && new Date(0).getTime() === 0;
      }`,
      opts,
    );
    assert.deepEqual(f.run([{ a: [1, 2, 3] }, { a: 'nope' }], req), [true, false]);
  });

  void it('does not let a filter change the docs the host holds', () => {
    const docs = [{ _id: 'a', n: 1 }];
    compileFilter('function(doc) { doc.n = 2; return true; }', opts).run(docs, req);
    assert.deepEqual(docs, [{ _id: 'a', n: 1 }]);
  });

  void it('keeps global state per compiled function, as a CouchDB query server process does', () => {
    const source = 'function(doc) { globalThis.seen = (globalThis.seen || 0) + 1; return seen > 1; }';
    const f = compileFilter(source, opts);
    const g = compileFilter(source, opts);
    assert.deepEqual(f.run([{}, {}], req), [false, true]);
    assert.deepEqual(f.run([{}], req), [true]);
    assert.deepEqual(g.run([{}], req), [false]);
  });
});

void describe('compileFilter: compilation errors', () => {
  void it('rejects a syntax error as compilation_error', () => {
    assert.throws(
      () => compileFilter('function(doc) { return doc.; }', opts),
      functionError('compilation_error', /^Filter app\/f: SyntaxError/),
    );
  });

  void it('rejects a source that is not a function', () => {
    for (const source of ['42', '"function"', '({ a: 1 })', 'null', 'undefined']) {
      assert.throws(
        () => compileFilter(source, opts),
        functionError('compilation_error', /does not eval to a function/),
        source,
      );
    }
  });

  void it('rejects an empty source', () => {
    assert.throws(() => compileFilter('  ;\n', opts), functionError('compilation_error', /empty/));
  });

  void it('rejects a source that throws while being evaluated', () => {
    assert.throws(
      () => compileFilter('(function() { throw new Error("no"); })()', opts),
      functionError('compilation_error', /threw Error: no/),
    );
  });

  void it('rejects a source that runs forever while being evaluated', () => {
    assert.throws(
      () => compileFilter('(function() { for (;;) {} })()', { timeoutMs: 50, name: 'app/slow' }),
      functionError('os_process_error', /app\/slow.*50 ms/),
    );
  });

  void it('refuses async functions and import(), which could reach the host', () => {
    for (const source of [
      'async function(doc) { return true; }',
      'function(doc) { (async () => { throw 1; })(); return true; }',
      'function(doc) { import("node:fs"); return true; }',
      'function(doc) { return [...import("x")]; }',
      'function(doc) { //.\nimport("x"); return true; }',
    ]) {
      assert.throws(
        () => compileFilter(source, opts),
        functionError('compilation_error', /not supported/),
        source,
      );
    }
  });

  void it('allows async and import as property names', () => {
    const f = compileFilter('function(doc) { return doc.async || doc .import || doc?.importance; }', opts);
    assert.deepEqual(f.run([{ async: 1 }, { import: 1 }, { importance: 1 }, {}], req), [
      true,
      true,
      true,
      false,
    ]);
  });
});

void describe('compileFilter: runtime errors', () => {
  void it('fails the whole call when the filter throws, as CouchDB does', () => {
    const f = compileFilter('function(doc) { return doc.a.b === 1; }', opts);
    assert.throws(
      () => f.run([{ _id: 'ok', a: { b: 1 } }, { _id: 'bad' }], req),
      functionError('TypeError', /^Filter app\/f threw TypeError for doc "bad": /),
    );
    assert.deepEqual(f.run([{ a: { b: 1 } }], req), [true], 'usable afterwards');
  });

  void it("reports CouchDB-style thrown values by the query server's rules", () => {
    const cases: [string, string, RegExp][] = [
      ['throw ["error", "my_error", "my reason"]', 'my_error', /my reason/],
      ['throw { error: "custom", reason: "because" }', 'custom', /because/],
      ['throw "plain"', 'unnamed_error', /plain/],
      ['throw { get name() { throw 1; } }', 'unnamed_error', /unprintable/],
    ];
    for (const [statement, errorName, reason] of cases) {
      const f = compileFilter(`function(doc) { ${statement}; }`, opts);
      assert.throws(() => f.run([{}], req), functionError(errorName, reason), statement);
    }
  });

  void it('times out an infinite loop within the limit and stays usable', () => {
    const f = compileFilter('function(doc) { while (doc.spin) {} return true; }', {
      timeoutMs: 100,
      name: 'app/spin',
    });
    const started = performance.now();
    assert.throws(
      () => f.run([{ spin: false }, { spin: true }], req),
      functionError('os_process_error', /app\/spin.*100 ms/),
    );
    assert.ok(performance.now() - started < 5000, 'the watchdog stopped the loop');
    assert.deepEqual(f.run([{ spin: false }], req), [true]);
  });

  void it('times out even when the filter booby-traps the error the watchdog creates', () => {
    const f = compileFilter(
      `function(doc) {
        try { Object.defineProperty(Object.prototype, 'code', { set: function () { for (;;) {} } }); } catch (e) {}
        try { Object.defineProperty(Error.prototype, 'code', { set: function () { for (;;) {} } }); } catch (e) {}
        for (;;) {}
      }`,
      { timeoutMs: 50, name: 'app/trap' },
    );
    assert.throws(() => f.run([{}], req), functionError('os_process_error'));
  });

  void it('ignores setters a filter plants on its input slots', () => {
    const f = compileFilter(
      `function(doc) {
        Object.defineProperty(globalThis, '__doppel_docs__', { set: function () { for (;;) {} }, configurable: true });
        return true;
      }`,
      opts,
    );
    assert.deepEqual(f.run([{}], req), [true]);
    assert.deepEqual(f.run([{}, {}], req), [true, true]);
  });
});

void describe('compileFilter: isolation', () => {
  void it('exposes no host globals', () => {
    const f = compileFilter(
      `function(doc) {
        return [typeof process, typeof require, typeof module, typeof setTimeout, typeof setImmediate,
          typeof queueMicrotask, typeof console, typeof Buffer, typeof fetch, typeof Promise,
          typeof FinalizationRegistry, typeof WebAssembly].every(function (t) { return t === 'undefined'; });
      }`,
      opts,
    );
    assert.deepEqual(f.run([{}], req), [true]);
  });

  void it('does not yield the host process through constructor chains', () => {
    const attempts = [
      "({}).constructor.constructor('return process')()",
      "this.constructor.constructor('return process')()",
      "doc.constructor.constructor('return process')()",
      "req.constructor.constructor('return process')()",
      "log.constructor('return process')()",
      "Object.getPrototypeOf(globalThis).constructor.constructor('return process')()",
    ];
    for (const attempt of attempts) {
      const f = compileFilter(
        `function(doc, req) {
          var p;
          try { p = ${attempt}; } catch (e) { p = undefined; }
          return !!(p && p.pid);
        }`,
        opts,
      );
      assert.deepEqual(f.run([{}], req), [false], attempt);
    }
  });

  void it('disables code generation from strings, so only the checked source ever runs', () => {
    for (const call of ['eval("1")', 'new Function("return 1")()', 'Function.prototype.constructor("")']) {
      const f = compileFilter(`function(doc) { return ${call}; }`, opts);
      assert.throws(() => f.run([{}], req), functionError('EvalError'), call);
    }
  });

  void it('does not reach host frames through Error.prepareStackTrace', () => {
    const f = compileFilter(
      `function(doc) {
        Error.prepareStackTrace = function (e, frames) { return frames; };
        var frames = new Error('x').stack;
        if (!Array.isArray(frames)) return false;
        return frames.some(function (fr) {
          var fn = fr.getFunction(), self = fr.getThis();
          var leaked = [fn && fn.constructor, self && self.constructor && self.constructor.constructor];
          return leaked.some(function (F) {
            try { var p = F('return process')(); return !!(p && p.pid); } catch (e) { return false; }
          });
        });
      }`,
      opts,
    );
    assert.deepEqual(f.run([{}], req), [false]);
  });

  void it("does not touch the host's prototypes", () => {
    const f = compileFilter(
      `function(doc) {
        Object.prototype.polluted = 1;
        Array.prototype.polluted = 1;
        doc.__proto__.polluted = 1;
        return true;
      }`,
      opts,
    );
    assert.deepEqual(f.run([{}], req), [true]);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(([] as unknown as Record<string, unknown>)['polluted'], undefined);
  });
});

void describe('compileFilter: speed', () => {
  void it('runs 10,000 small docs through a trivial filter', () => {
    const f = compileFilter("function(doc) { return doc.type === 'a'; }", opts);
    const docs = Array.from({ length: 10_000 }, (_, i) => ({
      _id: `doc${i}`,
      _rev: '1-abc',
      type: i % 2 ? 'a' : 'b',
    }));
    const started = performance.now();
    const passes = f.run(docs, req);
    const elapsed = performance.now() - started;
    assert.equal(passes.length, 10_000);
    assert.equal(passes.filter(Boolean).length, 5_000);
    console.log(`10,000 docs in ${elapsed.toFixed(1)} ms`);
  });
});
