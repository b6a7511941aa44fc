/**
 * CouchDB `_find`: request validation and execution as a full scan (there are no Mango indexes).
 *
 * Execution mirrors what CouchDB does when it falls back to `_all_docs`: documents are visited in
 * raw `_id` order, design documents are skipped, and the scan stops once `skip + limit` matches
 * are found, so `execution_stats` and the "too many documents examined" warning come out as
 * CouchDB would report them. Any other sort (CouchDB would demand an index) is done in memory.
 */
import { collate, collateRaw, compareCodePoints } from '../collate.js';
import { badRequest } from '../../../errors.js';
import type { DoppelError } from '../../../errors.js';
import { compileSelector, fieldValue, parseFieldPath } from './selector.js';
import type { Matcher } from './selector.js';

export { fieldValue, parseFieldPath } from './selector.js';

export const DEFAULT_LIMIT = 25;
export const NO_INDEX_WARNING = 'No matching index found, create an index to optimize query time.';
const SCAN_WARNING =
  'The number of documents examined is high in proportion to the number of results returned. ' +
  'Consider adding a more specific index to improve this.';
// CouchDB's default `[mango] index_scan_warning_threshold`.
const SCAN_WARNING_RATIO = 10;

export type SortDirection = 'asc' | 'desc';

export interface SortField {
  readonly field: string;
  readonly path: readonly string[];
  readonly direction: SortDirection;
}

/** A validated `_find` body. Property names follow the wire format. */
export interface FindRequest {
  /** The selector as sent; `match` is its compiled form. */
  readonly selector: Record<string, unknown>;
  readonly match: Matcher;
  readonly limit: number;
  readonly skip: number;
  readonly sort: readonly SortField[];
  /** Field names to project to, each with its parsed path; undefined returns whole documents. */
  readonly fields: readonly { readonly field: string; readonly path: readonly string[] }[] | undefined;
  /** `[]`, `[ddoc]` or `[ddoc, index]`; ddoc without its `_design/` prefix. */
  readonly use_index: readonly string[];
  /** Documents handed to `runFind` must already carry `_conflicts` when this is set. */
  readonly conflicts: boolean;
  readonly r: number;
  readonly bookmark: string | undefined;
  readonly update: boolean;
  readonly stable: boolean;
  readonly stale: 'ok' | false;
  readonly execution_stats: boolean;
  readonly allow_fallback: boolean;
  readonly partition: string | undefined;
}

export interface ExecutionStats {
  total_keys_examined: number;
  total_docs_examined: number;
  total_quorum_docs_examined: number;
  results_returned: number;
  execution_time_ms: number;
}

export interface FindResult {
  docs: Record<string, unknown>[];
  bookmark: string;
  execution_stats?: ExecutionStats;
  warning?: string;
}

// ---------------------------------------------------------------------------------------------
// Request validation

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((p) => typeof p === 'string');

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

const KNOWN_KEYS = new Set([
  'selector',
  'use_index',
  'bookmark',
  'limit',
  'skip',
  'sort',
  'fields',
  'partition',
  'r',
  'conflicts',
  'stale',
  'update',
  'stable',
  'execution_stats',
  'allow_fallback',
]);

function nonNegInteger(v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  throw badRequest(`${show(v)} is not an integer greater than or equal to zero`, 'invalid_non_neg_integer');
}

function posInteger(v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  throw badRequest(`${show(v)} is not an integer greater than zero`, 'invalid_pos_integer');
}

function bool(v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  throw badRequest(`Invalid boolean value: ${show(v)}`, 'invalid_boolean');
}

function parseSort(v: unknown): SortField[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    throw badRequest(`Sort must be an array of sort specs, not: ${show(v)}`, 'invalid_sort_json');
  }
  const sort = v.map((spec): SortField => {
    if (typeof spec === 'string' && spec !== '') {
      return { field: spec, path: parseFieldPath(spec), direction: 'asc' };
    }
    if (isObject(spec)) {
      const keys = Object.keys(spec);
      const field = keys[0];
      if (keys.length === 1 && field !== undefined && field !== '') {
        const direction = spec[field];
        if (direction !== 'asc' && direction !== 'desc') {
          throw badRequest(`Invalid sort direction: ${show(direction)}`, 'invalid_sort_dir');
        }
        return { field, path: parseFieldPath(field), direction };
      }
    }
    throw badRequest(`Invalid sort field: ${show(spec)}`, 'invalid_sort_field');
  });
  if (new Set(sort.map((s) => s.direction)).size > 1) {
    throw badRequest(
      'Sorts currently only support a single direction for all fields.',
      'unsupported_mixed_sort',
    );
  }
  return sort;
}

function parseFields(v: unknown): FindRequest['fields'] {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    throw badRequest(`Fields must be an array of strings, not: ${show(v)}`, 'invalid_fields');
  }
  if (v.length === 0) return undefined;
  return v.map((f) => {
    if (typeof f !== 'string') throw badRequest(`Invalid JSON for field spec: ${show(f)}`, 'invalid_field');
    return { field: f, path: parseFieldPath(f) };
  });
}

function parseUseIndex(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const bad = () => badRequest(`Invalid index name: ${show(v)}`, 'invalid_index_name');
  if (typeof v === 'string') {
    const parts = v.split('/');
    if (parts[0] === '_design') parts.shift();
    if (parts.length < 1 || parts.length > 2) throw bad();
    return parts;
  }
  if (isStringArray(v) && v.length <= 2) {
    return v.map((p, i) => (i === 0 && p.startsWith('_design/') ? p.slice('_design/'.length) : p));
  }
  throw bad();
}

function parseStale(v: unknown): 'ok' | false {
  if (v === undefined || v === false || v === 'false') return false;
  if (v === 'ok') return 'ok';
  throw badRequest(`Invalid value for stale: ${show(v)}`, 'invalid_value');
}

function parsePartition(v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined;
  const illegal = (reason: string): DoppelError => badRequest(reason, 'illegal_partition');
  if (typeof v !== 'string') throw illegal('Partition must be a string');
  if (v.startsWith('_')) throw illegal('Partition must not start with an underscore');
  if (v.includes(':')) throw illegal('Partition must not contain a colon');
  return v;
}

function parseBookmark(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '' || v === 'nil') return undefined;
  if (typeof v !== 'string') throw invalidBookmark(v);
  decodeBookmark(v);
  return v;
}

/** Validates a `_find` body as CouchDB's `mango_opts:validate_find` does, unknown keys included. */
export function parseFindRequest(body: unknown): FindRequest {
  if (!isObject(body)) throw badRequest('Request body must be a JSON object', 'bad_request');
  for (const key of Object.keys(body)) {
    if (!KNOWN_KEYS.has(key)) throw badRequest(`Invalid key ${key} for this request.`, 'invalid_key');
  }
  const selector = body['selector'];
  if (selector === undefined) throw badRequest('Missing required key: selector', 'missing_required_key');
  const match = compileSelector(selector);
  return {
    selector: selector as Record<string, unknown>,
    match,
    limit: nonNegInteger(body['limit'], DEFAULT_LIMIT),
    skip: nonNegInteger(body['skip'], 0),
    sort: parseSort(body['sort']),
    fields: parseFields(body['fields']),
    use_index: parseUseIndex(body['use_index']),
    conflicts: bool(body['conflicts'], false),
    r: posInteger(body['r'], 1),
    bookmark: parseBookmark(body['bookmark']),
    update: bool(body['update'], true),
    stable: bool(body['stable'], false),
    stale: parseStale(body['stale']),
    execution_stats: bool(body['execution_stats'], false),
    allow_fallback: bool(body['allow_fallback'], true),
    partition: parsePartition(body['partition']),
  };
}

// ---------------------------------------------------------------------------------------------
// Bookmarks: the sort key and `_id` of the last document returned, as base64url JSON. The next
// page starts strictly after that position, like CouchDB's startkey/startkey_docid bookmarks.

interface Position {
  readonly keys: readonly unknown[];
  readonly id: string;
}

const invalidBookmark = (v: unknown): DoppelError =>
  badRequest(`Invalid bookmark value: ${show(v)}`, 'invalid_bookmark');

function encodeBookmark(p: Position): string {
  return Buffer.from(JSON.stringify([p.keys, p.id])).toString('base64url');
}

function decodeBookmark(bookmark: string): Position {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(bookmark, 'base64url').toString('utf8'));
  } catch {
    throw invalidBookmark(bookmark);
  }
  if (!Array.isArray(decoded) || decoded.length !== 2) throw invalidBookmark(bookmark);
  const [keys, id] = decoded as unknown[];
  if (!Array.isArray(keys) || typeof id !== 'string') throw invalidBookmark(bookmark);
  return { keys, id };
}

// ---------------------------------------------------------------------------------------------
// Execution

const docId = (doc: Record<string, unknown>): string => {
  const id = doc['_id'];
  return typeof id === 'string' ? id : '';
};

const isIdPath = (path: readonly string[]): boolean => path.length === 1 && path[0] === '_id';

function positionComparator(sort: readonly SortField[]): (a: Position, b: Position) => number {
  const dir = sort[0]?.direction === 'desc' ? -1 : 1;
  const cmps = sort.map((s) => (isIdPath(s.path) ? collateRaw : collate));
  return (a, b) => {
    for (let i = 0; i < cmps.length; i++) {
      const c = cmps[i](a.keys[i], b.keys[i]);
      if (c !== 0) return dir * c;
    }
    // Ties fall back to `_id`, as view rows do, so pages have a total order to resume from.
    return dir * compareCodePoints(a.id, b.id);
  };
}

function indexWarnings(req: FindRequest): string[] {
  const [ddoc, name] = req.use_index;
  if (ddoc === undefined) {
    if (!req.allow_fallback) {
      throw badRequest('You must specify an index with the `use_index` parameter.', 'invalid_index');
    }
    return [];
  }
  const target = name === undefined ? `_design/${ddoc}` : `_design/${ddoc}, ${name}`;
  if (!req.allow_fallback) {
    throw badRequest(
      `${target} specified by \`use_index\` could not be found or it is not suitable.`,
      'invalid_index',
    );
  }
  return [
    name === undefined
      ? `${target} was not used because it does not contain a valid index for this query.`
      : `${target} was not used because it is not a valid index for this query.`,
  ];
}

interface Entry extends Position {
  readonly doc: Record<string, unknown>;
}

export interface RunFindOptions {
  /**
   * The documents arrive in raw `_id` order (as from a by-id store). An `_id`-ordered query then
   * streams them and stops pulling from the iterable once the page is full.
   */
  readonly inIdOrder?: boolean;
}

interface Scan {
  readonly page: Record<string, unknown>[];
  readonly last: Position | undefined;
  readonly examined: number;
}

/**
 * Runs a validated request over every live document of a database (winning revisions; `_deleted`
 * ones are ignored). Sorting on anything but `_id` happens in memory, and a document without a
 * value for every sort field is left out: CouchDB serves sorts from a JSON index, which holds only
 * documents that have all its fields, and refuses the query when the selector does not itself
 * require those fields, so it never returns such documents either.
 */
export function runFind(
  docs: Iterable<Record<string, unknown>>,
  req: FindRequest,
  opts: RunFindOptions = {},
): FindResult {
  const started = performance.now();
  const warnings = indexWarnings(req);
  const after = req.bookmark === undefined ? undefined : decodeBookmark(req.bookmark);
  if (after !== undefined && after.keys.length !== req.sort.length) throw invalidBookmark(req.bookmark);
  const prefix = req.partition === undefined ? undefined : `${req.partition}:`;
  const live = (doc: Record<string, unknown>): boolean =>
    doc['_deleted'] !== true && (prefix === undefined || docId(doc).startsWith(prefix));

  const { page, last, examined } = req.sort.every((s) => isIdPath(s.path))
    ? scanById(docs, req, after, live, opts.inIdOrder === true)
    : scanSorted(docs, req, after, live);

  const ratio = page.length === 0 ? examined : examined / page.length;
  warnings.push(NO_INDEX_WARNING);
  if (ratio > SCAN_WARNING_RATIO) warnings.push(SCAN_WARNING);

  const fields = req.fields;
  const result: FindResult = {
    docs: fields === undefined ? page : page.map((doc) => project(doc, fields)),
    bookmark: last === undefined ? (req.bookmark ?? 'nil') : encodeBookmark(last),
    warning: warnings.join('\n'),
  };
  if (req.execution_stats) {
    result.execution_stats = {
      total_keys_examined: examined,
      total_docs_examined: examined,
      total_quorum_docs_examined: 0,
      results_returned: page.length,
      execution_time_ms: performance.now() - started,
    };
  }
  return result;
}

// Design documents are in `_all_docs` but never in `_find` results.
const eligible = (doc: Record<string, unknown>, req: FindRequest): boolean =>
  !docId(doc).startsWith('_design/') && req.match(doc);

/** The `_all_docs` walk: in `_id` order, counting each document read, stopping at a full page. */
function scanById(
  docs: Iterable<Record<string, unknown>>,
  req: FindRequest,
  after: Position | undefined,
  live: (doc: Record<string, unknown>) => boolean,
  inIdOrder: boolean,
): Scan {
  const dir = req.sort[0]?.direction === 'desc' ? -1 : 1;
  let ordered: Iterable<Record<string, unknown>> = docs;
  if (!inIdOrder || dir < 0) {
    const all = Array.from(docs);
    if (inIdOrder) all.reverse();
    else all.sort((a, b) => dir * compareCodePoints(docId(a), docId(b)));
    ordered = all;
  }
  const page: Record<string, unknown>[] = [];
  let examined = 0;
  let toSkip = req.skip;
  for (const doc of req.limit > 0 ? ordered : []) {
    if (!live(doc)) continue;
    if (after !== undefined && dir * compareCodePoints(docId(doc), after.id) <= 0) continue;
    examined++;
    if (!eligible(doc, req)) continue;
    if (toSkip > 0) {
      toSkip--;
    } else if (page.push(doc) >= req.limit) {
      break;
    }
  }
  const lastDoc = page[page.length - 1];
  const last = lastDoc && { id: docId(lastDoc), keys: req.sort.map(() => docId(lastDoc)) };
  return { page, last, examined };
}

/** A full scan keeping the best `skip + limit` matches in a bounded heap, then ordering them. */
function scanSorted(
  docs: Iterable<Record<string, unknown>>,
  req: FindRequest,
  after: Position | undefined,
  live: (doc: Record<string, unknown>) => boolean,
): Scan {
  const compare = positionComparator(req.sort);
  const best = new BoundedHeap<Entry>(req.skip + req.limit, compare);
  let examined = 0;
  for (const doc of docs) {
    if (!live(doc)) continue;
    examined++;
    if (!eligible(doc, req)) continue;
    const keys = req.sort.map((s) => fieldValue(doc, s.path));
    if (keys.includes(undefined)) continue;
    const entry = { doc, id: docId(doc), keys };
    if (after === undefined || compare(entry, after) > 0) best.offer(entry);
  }
  const entries = best.sorted().slice(req.skip);
  return { page: entries.map((e) => e.doc), last: entries[entries.length - 1], examined };
}

/** Keeps the `capacity` smallest items offered; a max-heap so the worst kept item is at hand. */
class BoundedHeap<T> {
  private readonly items: T[] = [];
  constructor(
    private readonly capacity: number,
    private readonly compare: (a: T, b: T) => number,
  ) {}

  offer(item: T): void {
    const { items, compare } = this;
    if (items.length < this.capacity) {
      items.push(item);
      let i = items.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (compare(items[parent], items[i]) >= 0) break;
        [items[parent], items[i]] = [items[i], items[parent]];
        i = parent;
      }
    } else if (items.length > 0 && compare(item, items[0]) < 0) {
      items[0] = item;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let top = i;
        if (l < items.length && compare(items[l], items[top]) > 0) top = l;
        if (r < items.length && compare(items[r], items[top]) > 0) top = r;
        if (top === i) break;
        [items[top], items[i]] = [items[i], items[top]];
        i = top;
      }
    }
  }

  sorted(): T[] {
    return [...this.items].sort(this.compare);
  }
}

// ---------------------------------------------------------------------------------------------
// Projection

/**
 * Keeps only the listed fields, in the order listed; nested paths rebuild nested objects. Values
 * are shared with the source document but never modified: containers are copied before writing.
 */
export function project(
  doc: Record<string, unknown>,
  fields: readonly { readonly path: readonly string[] }[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { path } of fields) {
    const value = fieldValue(doc, path);
    const head = path[0];
    if (value === undefined || head === undefined) continue;
    define(
      out,
      head,
      Object.hasOwn(out, head) ? setIn(out[head], path.slice(1), value) : nest(path.slice(1), value),
    );
  }
  return out;
}

// Assignment would hit the `__proto__` setter for a field of that name; defining never does.
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function nest(path: readonly string[], value: unknown): unknown {
  let v = value;
  for (let i = path.length - 1; i >= 0; i--) {
    const o: Record<string, unknown> = {};
    define(o, path[i], v);
    v = o;
  }
  return v;
}

// Follows CouchDB's set_field: objects gain or replace the key, arrays accept in-range indexes,
// anything else is left as it is.
function setIn(target: unknown, path: readonly string[], value: unknown): unknown {
  const head = path[0];
  if (head === undefined) return value;
  const rest = path.slice(1);
  if (isObject(target)) {
    const copy = { ...target };
    define(copy, head, Object.hasOwn(target, head) ? setIn(target[head], rest, value) : nest(rest, value));
    return copy;
  }
  if (Array.isArray(target) && /^[+-]?\d+$/.test(head)) {
    const i = Number(head);
    if (i < 0 || i >= target.length) return target;
    const copy = target.slice();
    copy[i] = setIn(target[i], rest, value);
    return copy;
  }
  return target;
}
