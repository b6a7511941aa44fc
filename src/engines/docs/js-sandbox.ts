/**
 * Runs design-document JavaScript (for now `filters`) in a `node:vm` context with a time limit.
 *
 * Behaviour follows CouchDB's query server (share/server/filter.js, util.js, loop.js):
 * - a filter's result is truthiness: CouchDB pushes `(fun(doc, req) && true) || false`;
 * - a filter that throws fails the whole call, not just that doc: filter.js has no per-doc try/catch,
 *   loop.js answers `["error", e.name, …]`, couch_os_process throws `{error, {Name, Reason}}` and
 *   nothing in couch_query_servers:filter_docs or couch_changes catches it, so the `_changes` request
 *   (and a replication reading it) fails with a 500. We throw a `function_error` DoppelError whose
 *   errorName is that same name (e.g. `TypeError`);
 * - a source that fails to compile, or does not evaluate to a function, is a `compilation_error`;
 * - running past the limit is `os_process_error` (CouchDB's os_process_timeout, "OS process timed out.").
 *
 * Isolation rests on three rules. Only JSON text and primitive strings cross the boundary: docs and req
 * are serialized here and parsed inside, and the sandbox answers with one string, so host code never
 * touches a sandbox object (whose getters or proxy traps would run outside the watchdog) and sandbox
 * code never sees a host object (whose `constructor.constructor` is the host's `Function`). Nothing may
 * run sandbox code after `runInContext` returns: promise jobs reach Node's process-wide unhandled-
 * rejection handling (a crash by default) and finalizer callbacks run as host tasks, so those
 * facilities are removed. And `import()` must never be evaluated, since Node rejects it with a
 * host-realm error; sources naming `import` or `async` are refused and string code generation (`eval`,
 * `Function`) is off, so no other source can reach the compiler.
 *
 * Not guarded: memory. A filter that allocates without bound can exhaust the process heap; only a
 * worker thread with resource limits would contain that.
 */
import vm from 'node:vm';
import { types } from 'node:util';
import { DoppelError, ErrorKind } from '../../errors.js';

export interface FilterRequest {
  query: Record<string, string>;
  userCtx: { db: string; name: string | null; roles: string[] };
  info?: Record<string, unknown>;
  method?: string;
  path?: string[];
  headers?: Record<string, string>;
  body?: string;
}

export interface CompiledFilter {
  /** One boolean per doc, in order. Throws a `function_error` DoppelError if the filter throws or times out. */
  run(docs: readonly unknown[], req: FilterRequest): boolean[];
}

const DOCS_KEY = '__doppel_docs__';
const REQ_KEY = '__doppel_req__';
const RUNTIME = '__doppel_sandbox__';
/** Longest error name or reason carried out of the sandbox. */
const MAX_TEXT = 1000;

/**
 * Installed in every context before any user code runs, so it captures pristine builtins. Its results
 * are always primitive strings:
 *   install: 'OK' | 'N' + typeof value | 'E' + errorInfo
 *   run:     'P' + one '1'/'0' per doc | 'E' + docIndex + ':' + errorInfo
 *   errorInfo = name.length + ':' + name + reason
 * It is a top-level `const`, so sandbox code can neither rebind nor shadow it.
 */
const RUNTIME_SOURCE = `'use strict';
const ${RUNTIME} = (function (G) {
  var S = String;
  var parse = JSON.parse;
  var stringify = JSON.stringify;
  var isArr = Array.isArray;
  var freeze = Object.freeze;
  var apply = Reflect.apply;
  var slice = String.prototype.slice;
  var fn;
  var installed = false;

  // Node sets \`code\` on the timeout error it creates in this realm; an accessor planted on the
  // prototype chain would run user code outside the watchdog, so the chain is pinned.
  Object.defineProperty(Error.prototype, 'code', { value: undefined, writable: true, configurable: false });
  Object.preventExtensions(Error.prototype);

  // Each of these can schedule sandbox code to run after runInContext returns (see the module comment).
  delete G.Promise;
  delete G.FinalizationRegistry;
  delete G.WebAssembly;
  delete G.console;
  if (G.Atomics) delete G.Atomics.waitAsync;
  delete Array.fromAsync;

  function text(v) {
    try {
      var s = typeof v === 'string' ? v : v !== null && typeof v === 'object' ? stringify(v) : S(v);
      s = S(s);
      return s.length > ${MAX_TEXT} ? apply(slice, s, [0, ${MAX_TEXT}]) : s;
    } catch (_) {
      return '[unprintable value]';
    }
  }

  // The same precedence as CouchDB's loop.js handleError: ["error", name, reason] arrays, then
  // {error, reason} objects, then anything with a name.
  function errorInfo(e) {
    var name = 'unnamed_error';
    var reason;
    try {
      if (isArr(e) && (e[0] === 'error' || e[0] === 'fatal')) {
        name = text(e[1]);
        reason = text(e[2]);
      } else if (e !== null && typeof e === 'object' && e.error && e.reason) {
        name = text(e.error);
        reason = text(e.reason);
      } else if (e !== null && (typeof e === 'object' || typeof e === 'function') && e.name) {
        name = text(e.name);
        reason = e.message === undefined ? '' : text(e.message);
      } else {
        reason = text(e);
      }
    } catch (_) {
      reason = '[unprintable error]';
    }
    return name.length + ':' + name + reason;
  }

  function install(thunk) {
    if (installed) return 'X';
    var f;
    try {
      f = thunk();
    } catch (e) {
      return 'E' + errorInfo(e);
    }
    if (typeof f !== 'function') return 'N' + (f === null ? 'null' : typeof f);
    fn = f;
    installed = true;
    return 'OK';
  }

  function run() {
    if (!installed) return 'X';
    var docs = parse(G.${DOCS_KEY});
    var req = parse(G.${REQ_KEY});
    var out = 'P';
    for (var i = 0; i < docs.length; i++) {
      var passed;
      try {
        passed = fn(docs[i], req);
      } catch (e) {
        return 'E' + i + ':' + errorInfo(e);
      }
      out += passed ? '1' : '0';
    }
    return out;
  }

  // What CouchDB's create_sandbox provides besides the language builtins (render helpers such as
  // send/start/getRow and ddoc require() are not available to filters here).
  function log(_message) {}
  function emit(_key, _value) {}
  function toJSON(value) {
    return stringify(value);
  }
  function isArray(value) {
    return isArr(value);
  }
  function sum(values) {
    var total = 0;
    for (var i = 0; i < values.length; i++) total += values[i];
    return total;
  }
  G.log = freeze(log);
  G.emit = freeze(emit);
  G.toJSON = freeze(toJSON);
  G.isArray = freeze(isArray);
  G.sum = freeze(sum);
  freeze(JSON);

  return freeze({ install: install, run: run });
})(globalThis);
`;

// Scripts are context-independent; compiling these once saves a parse per filter and per batch.
let runtimeScript: vm.Script | undefined;
let runScript: vm.Script | undefined;

/**
 * `async` and `import` as words, except as a property name after a single `.` on the same line.
 * Deliberately lexically naive, so comments and strings cannot hide a real token from it: a match
 * inside a string or comment is a false positive (the filter is refused), never a miss. The keywords
 * cannot be spelled with escapes, and a word glued to identifier characters is a different identifier.
 */
const FORBIDDEN_WORD = /(?<![A-Za-z0-9_$])(?<!(?:^|[^.])\.[ \t]*)(async|import)(?![A-Za-z0-9_$])/;

export function compileFilter(source: string, options: { timeoutMs: number; name: string }): CompiledFilter {
  const { name } = options;
  const timeout = Math.ceil(options.timeoutMs);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new RangeError(`compileFilter: timeoutMs must be a positive number, got ${options.timeoutMs}`);
  }

  const body = stripTrailingSemicolons(source);
  if (body === '') throw compilationError(name, 'the function source is empty', source);
  const forbidden = FORBIDDEN_WORD.exec(body);
  if (forbidden !== null) {
    throw compilationError(
      name,
      `'${forbidden[1]}' is not supported in design document functions (they run synchronously and ` +
        'cannot load modules); the word is refused anywhere in the source, including strings and comments',
      source,
    );
  }

  let userScript: vm.Script;
  try {
    // The source becomes an expression inside a thunk, so `function (doc) {…}` (a statement CouchDB's
    // rewriter also turns into an expression), named functions and arrow functions all work, and
    // anything it throws while being evaluated is caught inside the sandbox.
    userScript = new vm.Script(`${RUNTIME}.install(function () {\nreturn (\n${body}\n);\n});`, {
      filename: `filter ${name}`,
      lineOffset: -2,
    });
  } catch (err) {
    // Compiling happens in the host realm, so the SyntaxError is ours to read.
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw compilationError(name, detail, source);
  }

  const globals = Object.create(null) as Record<string, unknown>;
  const context = vm.createContext(globals, {
    name: `filter ${name}`,
    codeGeneration: { strings: false, wasm: false },
    // Promise jobs are gone, but should one appear it then runs under the watchdog, not on the host queue.
    microtaskMode: 'afterEvaluate',
  });
  runtimeScript ??= new vm.Script(RUNTIME_SOURCE, { filename: 'doppel-sandbox-runtime' });
  runtimeScript.runInContext(context);

  const installed = runGuarded(() => userScript.runInContext(context, { timeout }), name, timeout);
  if (installed !== 'OK') {
    if (typeof installed === 'string' && installed.startsWith('N')) {
      throw compilationError(
        name,
        `Expression does not eval to a function (it is ${installed.slice(1)})`,
        source,
      );
    }
    if (typeof installed === 'string' && installed.startsWith('E')) {
      const info = parseErrorInfo(installed, 1);
      if (info !== undefined) {
        throw compilationError(name, `evaluating the source threw ${info.name}: ${info.reason}`, source);
      }
    }
    throw compilationError(name, 'the source does not evaluate to a single function expression', source);
  }

  runScript ??= new vm.Script(`${RUNTIME}.run();`, { filename: 'doppel-sandbox-run' });
  const batchScript = runScript;

  return {
    run(docs: readonly unknown[], req: FilterRequest): boolean[] {
      if (docs.length === 0) return [];
      const docsJson = JSON.stringify(docs);
      const reqJson = JSON.stringify(req);
      let out: unknown;
      try {
        setInput(globals, DOCS_KEY, docsJson, name);
        setInput(globals, REQ_KEY, reqJson, name);
        out = runGuarded(() => batchScript.runInContext(context, { timeout }), name, timeout);
      } finally {
        // Plain deletes on a host object: no sandbox code runs. Frees the batch's JSON early.
        delete globals[DOCS_KEY];
        delete globals[REQ_KEY];
      }
      return decodeRun(out, docs, name);
    },
  };
}

function stripTrailingSemicolons(source: string): string {
  let end = source.length;
  for (;;) {
    while (end > 0 && /\s/.test(source[end - 1] ?? '')) end--;
    if (end > 0 && source[end - 1] === ';') end--;
    else break;
  }
  return source.slice(0, end).trimStart();
}

/**
 * `defineProperty`, not assignment: sandbox code may have planted a setter under this name, and
 * assignment would call it outside the watchdog. Redefining a configurable accessor runs nothing.
 */
function setInput(globals: Record<string, unknown>, key: string, value: string, name: string): void {
  try {
    Object.defineProperty(globals, key, { value, writable: true, configurable: true, enumerable: false });
  } catch {
    throw new DoppelError(ErrorKind.FunctionError, `Filter ${name} has tampered with its sandbox (${key}).`, {
      errorName: 'os_process_error',
    });
  }
}

/**
 * Every exception the filter raises is caught inside the sandbox, so anything escaping `runInContext`
 * is the watchdog's timeout or a sandbox broken beyond use. The thrown value may be a sandbox object, so
 * it is inspected without running its code (no getters, no proxy traps); elapsed time backs that up.
 */
function runGuarded(call: () => unknown, name: string, timeoutMs: number): unknown {
  const started = performance.now();
  try {
    return call();
  } catch (err) {
    const elapsed = performance.now() - started;
    if (isWatchdogTimeout(err) || elapsed >= timeoutMs) {
      throw new DoppelError(
        ErrorKind.FunctionError,
        `Filter ${name} exceeded its time limit of ${timeoutMs} ms (OS process timed out.)`,
        { errorName: 'os_process_error' },
      );
    }
    throw new DoppelError(ErrorKind.FunctionError, `Filter ${name} failed outside its function body.`, {
      errorName: 'os_process_error',
    });
  }
}

function isWatchdogTimeout(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || types.isProxy(err) || !types.isNativeError(err))
    return false;
  const code = Object.getOwnPropertyDescriptor(err, 'code');
  return code !== undefined && 'value' in code && code.value === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

function decodeRun(out: unknown, docs: readonly unknown[], name: string): boolean[] {
  if (typeof out === 'string') {
    if (out.startsWith('P') && out.length === docs.length + 1) {
      const passes = new Array<boolean>(docs.length);
      for (let i = 0; i < docs.length; i++) {
        const c = out.charCodeAt(i + 1);
        if (c !== 0x31 && c !== 0x30) return malformed(name);
        passes[i] = c === 0x31;
      }
      return passes;
    }
    if (out.startsWith('E')) {
      const colon = out.indexOf(':', 1);
      const index = Number(out.slice(1, colon));
      const info = colon > 1 ? parseErrorInfo(out, colon + 1) : undefined;
      if (info !== undefined && Number.isInteger(index) && index >= 0 && index < docs.length) {
        throw new DoppelError(
          ErrorKind.FunctionError,
          `Filter ${name} threw ${info.name} for ${describeDoc(docs[index])}: ${info.reason}`,
          { errorName: info.name === '' ? 'unnamed_error' : info.name },
        );
      }
    }
  }
  return malformed(name);
}

function malformed(name: string): never {
  throw new DoppelError(
    ErrorKind.FunctionError,
    `Filter ${name} has tampered with its sandbox (bad result).`,
    {
      errorName: 'os_process_error',
    },
  );
}

/** Reads `name.length + ':' + name + reason` starting at `from`. */
function parseErrorInfo(text: string, from: number): { name: string; reason: string } | undefined {
  const colon = text.indexOf(':', from);
  if (colon <= from) return undefined;
  const length = Number(text.slice(from, colon));
  if (!Number.isInteger(length) || length < 0 || colon + 1 + length > text.length) return undefined;
  return { name: text.slice(colon + 1, colon + 1 + length), reason: text.slice(colon + 1 + length) };
}

function describeDoc(doc: unknown): string {
  if (typeof doc === 'object' && doc !== null && '_id' in doc && typeof doc._id === 'string') {
    return `doc ${JSON.stringify(doc._id)}`;
  }
  return 'a doc';
}

function compilationError(name: string, detail: string, source: string): DoppelError {
  const shown = source.length > 200 ? `${source.slice(0, 200)}…` : source;
  return new DoppelError(ErrorKind.FunctionError, `Filter ${name}: ${detail} (${shown})`, {
    errorName: 'compilation_error',
  });
}
