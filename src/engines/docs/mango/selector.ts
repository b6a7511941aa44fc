/**
 * Mango selectors: validation, normalisation and compilation to a matcher.
 *
 * Semantics follow CouchDB's `mango_selector`: a selector is first normalised (implicit `$eq`/`$and`
 * made explicit, nested field objects flattened into paths, `$not`/`$nor` pushed down to the leaves
 * with De Morgan and operator complements), then matched. Consequences worth knowing:
 *   - a condition on a missing field is false, whatever the operator, except `$exists: false`;
 *     so `{$not: {a: 1}}` becomes `{a: {$ne: 1}}` and does not match docs without `a`;
 *   - a path through a scalar or an out-of-range array index is false even for `$exists: false`;
 *   - comparisons use view collation across types (`{$gt: 5}` matches strings), except on `_id`,
 *     which compares in raw (code point) order like `_all_docs`;
 *   - `$and: []`, `$or: []` and `$nin: []` match everything; `$in: []` and `$all: []` nothing;
 *   - `{a: {}}` means `a` equals `{}`, but an empty top-level selector matches every doc.
 * CouchDB does not push negations into `$elemMatch`/`$allMatch`/`$keyMapMatch` sub-selectors (its
 * normaliser never reaches them, and an inner `$nor` then fails to match anything); here
 * sub-selectors are normalised like top-level ones, so they mean the same thing in both places.
 */
import { collate, collateRaw, collateStrings } from '../collate.js';
import { badRequest } from '../../../errors.js';

export type Matcher = (doc: Record<string, unknown>) => boolean;

// ---------------------------------------------------------------------------------------------
// Field paths

/**
 * Splits a field name on unescaped dots, then drops backslashes (`a\.b` is the single key `a.b`),
 * as CouchDB's `mango_util:parse_field` does. Empty segments are rejected.
 */
export function parseFieldPath(field: string): string[] {
  const parts = field.includes('\\') ? field.split(/(?<!\\)\./) : field.split('.');
  if (parts.some((p) => p === '')) throw badRequest(`Invalid field name: ${field}`, 'invalid_field_name');
  return field.includes('\\') ? parts.map((p) => p.replaceAll('\\', '')) : parts;
}

/** The inverse of `parseFieldPath` for paths it produced. */
export function joinFieldPath(path: readonly string[]): string {
  return path.map((p) => p.replaceAll('.', '\\.')).join('.');
}

const MISSING = Symbol('missing');
const BAD_PATH = Symbol('bad path');

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// A segment indexes an array when it reads as an integer, as with Erlang's binary_to_integer.
const arrayIndex = (seg: string): number => (/^[+-]?\d+$/.test(seg) ? Number(seg) : -1);

function lookup(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (isObject(cur)) {
      if (!Object.hasOwn(cur, seg)) return MISSING;
      cur = cur[seg];
    } else if (Array.isArray(cur)) {
      const i = arrayIndex(seg);
      if (i < 0 || i >= cur.length) return BAD_PATH;
      cur = cur[i];
    } else {
      return BAD_PATH;
    }
  }
  return cur;
}

/** The value at `path` inside `doc`, or undefined when there is none (missing key or bad path). */
export function fieldValue(doc: unknown, path: readonly string[]): unknown {
  const v = lookup(doc, path);
  return v === MISSING || v === BAD_PATH ? undefined : v;
}

// ---------------------------------------------------------------------------------------------
// Selector tree

type CompareOp = '$eq' | '$ne' | '$gt' | '$gte' | '$lt' | '$lte';
type SubOp = '$elemMatch' | '$allMatch' | '$keyMapMatch';
const JSON_TYPES = ['null', 'boolean', 'number', 'string', 'array', 'object'] as const;
type JsonType = (typeof JSON_TYPES)[number];

type Cond =
  | { readonly op: CompareOp; readonly arg: unknown }
  | { readonly op: '$in' | '$nin' | '$all'; readonly arg: readonly unknown[] }
  | { readonly op: '$exists'; readonly arg: boolean }
  | { readonly op: '$type'; readonly arg: JsonType }
  | { readonly op: '$size'; readonly arg: number }
  | { readonly op: '$mod'; readonly arg: readonly [number, number] }
  | { readonly op: '$regex'; readonly arg: string; readonly re: RegExp }
  | { readonly op: '$beginsWith'; readonly arg: string }
  | { readonly op: SubOp; readonly arg: Node }
  | { readonly op: '$not'; readonly arg: Cond };

type Node =
  | { readonly kind: 'and' | 'or' | 'nor'; readonly args: readonly Node[] }
  | { readonly kind: 'not'; readonly arg: Node }
  | { readonly kind: 'field'; readonly path: readonly string[]; readonly cond: Cond };

// Deep enough for any real query, shallow enough that recursion cannot overflow the stack.
const MAX_DEPTH = 200;

const NOT_SUPPORTED = new Set(['$where', '$geoWithin', '$geoIntersects', '$near', '$nearSphere', '$text']);

const show = (v: unknown): string => {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

const badArg = (op: string, arg: unknown) =>
  badRequest(`Bad argument for operator ${op}: ${show(arg)}`, 'bad_arg');

const field = (path: readonly string[], cond: Cond): Node => ({ kind: 'field', path, cond });

/** Parses a selector (or sub-selector) whose conditions apply at `path`. */
function parse(sel: unknown, path: readonly string[], depth: number): Node {
  if (depth > MAX_DEPTH) throw badRequest('Selector is nested too deeply.', 'invalid_selector');
  if (!isObject(sel)) return field(path, { op: '$eq', arg: sel });
  const keys = Object.keys(sel);
  if (keys.length === 0) return field(path, { op: '$eq', arg: sel });
  if (keys.length === 1) {
    const key = keys[0];
    return parseEntry(key, sel[key], path, depth);
  }
  return { kind: 'and', args: keys.map((k) => parseEntry(k, sel[k], path, depth)) };
}

function parseList(op: string, arg: unknown, path: readonly string[], depth: number): Node[] {
  if (!Array.isArray(arg)) throw badArg(op, arg);
  return arg.map((a) => parse(a, path, depth + 1));
}

function parseEntry(key: string, arg: unknown, path: readonly string[], depth: number): Node {
  if (!key.startsWith('$')) return parse(arg, [...path, ...parseFieldPath(key)], depth + 1);
  switch (key) {
    case '$and':
    case '$or':
    case '$nor':
      return {
        kind: key === '$and' ? 'and' : key === '$or' ? 'or' : 'nor',
        args: parseList(key, arg, path, depth),
      };
    case '$not':
      if (!isObject(arg)) throw badArg(key, arg);
      return { kind: 'not', arg: parse(arg, path, depth + 1) };
    case '$elemMatch':
    case '$allMatch':
    case '$keyMapMatch':
      if (!isObject(arg)) throw badArg(key, arg);
      return field(path, { op: key, arg: parse(arg, [], depth + 1) });
    case '$eq':
    case '$ne':
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return field(path, { op: key, arg });
    case '$in':
    case '$nin':
    case '$all':
      if (!Array.isArray(arg)) throw badArg(key, arg);
      return field(path, { op: key, arg: arg as unknown[] });
    case '$exists':
      if (typeof arg !== 'boolean') throw badArg(key, arg);
      return field(path, { op: key, arg });
    case '$type':
      if (!JSON_TYPES.includes(arg as JsonType)) throw badArg(key, arg);
      return field(path, { op: key, arg: arg as JsonType });
    case '$size':
      if (!Number.isInteger(arg) || (arg as number) < 0) throw badArg(key, arg);
      return field(path, { op: key, arg: arg as number });
    case '$mod': {
      if (!Array.isArray(arg) || arg.length !== 2) throw badArg(key, arg);
      const [d, r] = arg as unknown[];
      if (!Number.isInteger(d) || !Number.isInteger(r) || d === 0) throw badArg(key, arg);
      return field(path, { op: key, arg: [d as number, r as number] });
    }
    case '$regex':
      if (typeof arg !== 'string') throw badArg(key, arg);
      return field(path, { op: key, arg, re: compileRegex(arg) });
    case '$beginsWith':
      if (typeof arg !== 'string') throw badArg(key, arg);
      return field(path, { op: key, arg });
    default:
      if (NOT_SUPPORTED.has(key)) throw badRequest(`Unsupported operator: ${key}`, 'not_supported');
      throw badRequest(`Invalid operator: ${key}`, 'invalid_operator');
  }
}

/**
 * CouchDB runs PCRE; JS has no inline flags, yet `(?i)` prefixes are the usual way Mango users ask
 * for case-insensitive matching, so a leading group of flags JS knows becomes RegExp flags.
 */
function compileRegex(source: string): RegExp {
  const inline = /^\(\?([ims]+)\)/.exec(source);
  try {
    return inline ? new RegExp(source.slice(inline[0].length), inline[1]) : new RegExp(source);
  } catch {
    throw badArg('$regex', source);
  }
}

// ---------------------------------------------------------------------------------------------
// Negation push-down and canonical simplification

const COMPLEMENT: Readonly<Record<string, CompareOp | '$in' | '$nin'>> = {
  $eq: '$ne',
  $ne: '$eq',
  $gt: '$lte',
  $lte: '$gt',
  $lt: '$gte',
  $gte: '$lt',
  $in: '$nin',
  $nin: '$in',
};

function normalize(n: Node): Node {
  switch (n.kind) {
    case 'and':
    case 'or':
      return simplify(n.kind, n.args.map(normalize));
    case 'nor':
      return simplify('and', n.args.map(negate));
    case 'not':
      return negate(n.arg);
    case 'field':
      return field(n.path, normalizeCond(n.cond));
  }
}

function negate(n: Node): Node {
  switch (n.kind) {
    case 'not':
      return normalize(n.arg);
    case 'nor':
      return simplify('or', n.args.map(normalize));
    case 'and':
      return simplify('or', n.args.map(negate));
    case 'or':
      return simplify('and', n.args.map(negate));
    case 'field':
      return field(n.path, negateCond(normalizeCond(n.cond)));
  }
}

function normalizeCond(c: Cond): Cond {
  switch (c.op) {
    case '$elemMatch':
    case '$allMatch':
    case '$keyMapMatch':
      return { op: c.op, arg: normalize(c.arg) };
    case '$not':
      return { op: '$not', arg: normalizeCond(c.arg) };
    default:
      return c;
  }
}

function negateCond(c: Cond): Cond {
  switch (c.op) {
    case '$exists':
      return { op: '$exists', arg: !c.arg };
    case '$not':
      return c.arg;
    case '$in':
    case '$nin':
      return { op: c.op === '$in' ? '$nin' : '$in', arg: c.arg };
    case '$eq':
    case '$ne':
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return { op: COMPLEMENT[c.op] as CompareOp, arg: c.arg };
    default:
      return { op: '$not', arg: c };
  }
}

/**
 * Flattens nested same-kind groups, drops duplicates and orders children canonically; all of these
 * preserve meaning (an empty `$or` is true, so it is never flattened into a parent `$or`).
 */
function simplify(kind: 'and' | 'or', args: readonly Node[]): Node {
  const flat: Node[] = [];
  for (const a of args) {
    if (a.kind === kind && (kind === 'and' || a.args.length > 0)) flat.push(...a.args);
    else flat.push(a);
  }
  const byKey = new Map<string, Node>();
  for (const a of flat) byKey.set(JSON.stringify(nodeToJson(a)), a);
  const sorted = [...byKey.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, a]) => a);
  if (sorted.length === 1) return sorted[0];
  return { kind, args: sorted };
}

function nodeToJson(n: Node): Record<string, unknown> {
  switch (n.kind) {
    case 'and':
    case 'or':
    case 'nor':
      return { [`$${n.kind}`]: n.args.map(nodeToJson) };
    case 'not':
      return { $not: nodeToJson(n.arg) };
    case 'field':
      return n.path.length === 0 ? condToJson(n.cond) : { [joinFieldPath(n.path)]: condToJson(n.cond) };
  }
}

function condToJson(c: Cond): Record<string, unknown> {
  switch (c.op) {
    case '$not':
      return { $not: condToJson(c.arg) };
    case '$elemMatch':
    case '$allMatch':
    case '$keyMapMatch':
      return { [c.op]: nodeToJson(c.arg) };
    default:
      return { [c.op]: c.arg };
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

interface Prepared {
  readonly root: Node | undefined; // undefined: the empty selector, which matches everything
}

function prepare(selector: unknown): Prepared {
  if (!isObject(selector)) {
    throw badRequest(`Selector must be a JSON object, not: ${show(selector)}`, 'invalid_selector_json');
  }
  if (Object.keys(selector).length === 0) return { root: undefined };
  const root = normalize(parse(selector, [], 0));
  requireFieldNames(root);
  return { root };
}

/**
 * Outside a sub-selector, a condition without a field would test the whole document. CouchDB
 * rejects that only when it is the sole condition (`{$gt: 1}`) and otherwise evaluates it against
 * the document (`{$and: [{$gt: 1}]}` matches every doc); here it is rejected wherever it appears.
 */
function requireFieldNames(n: Node): void {
  if (n.kind === 'field') {
    if (n.path.length === 0) {
      throw badRequest('One or more conditions is missing a field name.', 'invalid_selector');
    }
  } else if (n.kind === 'and' || n.kind === 'or') {
    n.args.forEach(requireFieldNames);
  }
}

/**
 * The selector in canonical form: every operator explicit, field paths dotted (literal dots
 * escaped), negations pushed to the leaves, `$and`/`$or` children flattened and sorted. Equivalent
 * selectors written differently (key order, implicit vs explicit `$and`, `$not` vs `$ne`) come out
 * identical, so the JSON can be hashed; argument values are kept verbatim because object key
 * order matters to collation. The result is itself a valid selector with the same meaning.
 */
export function normalizeSelector(selector: unknown): Record<string, unknown> {
  const { root } = prepare(selector);
  return root === undefined ? {} : nodeToJson(root);
}

/** Validates and compiles a selector; throws a bad_request DoppelError when it is malformed. */
export function compileSelector(selector: unknown): Matcher {
  const { root } = prepare(selector);
  if (root === undefined) return () => true;
  return compileNode(root);
}

// ---------------------------------------------------------------------------------------------
// Compilation

type Pred = (v: unknown) => boolean;

function compileNode(n: Node): Pred {
  switch (n.kind) {
    case 'and':
    case 'or': {
      const preds = n.args.map(compileNode);
      if (preds.length === 0) return () => true;
      if (preds.length === 1) return preds[0];
      if (preds.length === 2) {
        const [p, q] = preds as [Pred, Pred];
        return n.kind === 'and' ? (v) => p(v) && q(v) : (v) => p(v) || q(v);
      }
      return n.kind === 'and' ? (v) => preds.every((p) => p(v)) : (v) => preds.some((p) => p(v));
    }
    case 'nor':
    case 'not':
      // normalize() leaves neither behind.
      throw new Error(`unnormalized selector node ${n.kind}`);
    case 'field':
      return compileField(n.path, n.cond);
  }
}

function compileField(path: readonly string[], cond: Cond): Pred {
  const raw = path.length === 1 && path[0] === '_id';
  const test = compileCond(cond, raw);
  if (path.length === 0) return test;
  const onMissing = cond.op === '$exists' && !cond.arg;
  if (path.length === 1) {
    const key = path[0];
    return (v) => {
      if (isObject(v)) return Object.hasOwn(v, key) ? test(v[key]) : onMissing;
      if (!Array.isArray(v)) return false;
      const x = lookup(v, path);
      return x === BAD_PATH ? false : test(x);
    };
  }
  return (v) => {
    const x = lookup(v, path);
    if (x === MISSING) return onMissing;
    if (x === BAD_PATH) return false;
    return test(x);
  };
}

function compileCond(c: Cond, raw: boolean): Pred {
  const cmp = raw ? collateRaw : collate;
  switch (c.op) {
    case '$eq': {
      const a = c.arg;
      return (v) => v === a || cmp(v, a) === 0;
    }
    case '$ne': {
      const a = c.arg;
      return (v) => v !== a && cmp(v, a) !== 0;
    }
    case '$gt': {
      const a = c.arg;
      return (v) => cmp(v, a) > 0;
    }
    case '$gte': {
      const a = c.arg;
      return (v) => cmp(v, a) >= 0;
    }
    case '$lt': {
      const a = c.arg;
      return (v) => cmp(v, a) < 0;
    }
    case '$lte': {
      const a = c.arg;
      return (v) => cmp(v, a) <= 0;
    }
    case '$in':
      return inPredicate(c.arg, raw);
    case '$nin': {
      const in_ = inPredicate(c.arg, raw);
      return (v) => !in_(v);
    }
    case '$all':
      return allPredicate(c.arg);
    case '$exists':
      // A missing field never reaches here (see compileField), so the value exists.
      return c.arg ? () => true : () => false;
    case '$type': {
      const t = c.arg;
      return (v) => jsonType(v) === t;
    }
    case '$size': {
      const n = c.arg;
      return (v) => Array.isArray(v) && v.length === n;
    }
    case '$mod': {
      const [d, r] = c.arg;
      return (v) => Number.isInteger(v) && (v as number) % d === r;
    }
    case '$regex': {
      const re = c.re;
      return (v) => typeof v === 'string' && re.test(v);
    }
    case '$beginsWith': {
      const prefix = c.arg;
      return (v) => typeof v === 'string' && v.startsWith(prefix);
    }
    case '$elemMatch': {
      const p = compileNode(c.arg);
      return (v) => Array.isArray(v) && v.some(p);
    }
    case '$allMatch': {
      const p = compileNode(c.arg);
      return (v) => Array.isArray(v) && v.length > 0 && v.every(p);
    }
    case '$keyMapMatch': {
      const p = compileNode(c.arg);
      return (v) => isObject(v) && Object.keys(v).some(p);
    }
    case '$not': {
      const p = compileCond(c.arg, raw);
      return (v) => !p(v);
    }
  }
}

// An array value is "in" when any of its elements equals an argument (never the array as a whole).
function inPredicate(args: readonly unknown[], raw: boolean): Pred {
  const one = equalsAny(args, raw);
  return (v) => (Array.isArray(v) ? v.some(one) : one(v));
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Equality with any of `args` under collation, without a collator call per argument: scalars other
 * than strings are equal only when identical, and two distinct printable-ASCII strings are never
 * equal at tertiary strength (no ignorables, no contractions), so only strings that could hide
 * ignorable or composed characters need the collator. Raw order (`_id`) equality is identity.
 */
function equalsAny(args: readonly unknown[], raw: boolean): Pred {
  const exact = new Set(args.filter((a) => typeof a !== 'object' || a === null));
  const structured = args.filter((a) => typeof a === 'object' && a !== null);
  const strings = args.filter((a): a is string => typeof a === 'string');
  const unusual = strings.filter((s) => !PRINTABLE_ASCII.test(s));
  const cmp = raw ? collateRaw : collate;
  return (x) => {
    if (exact.has(x)) return true;
    if (typeof x === 'string') {
      if (raw) return false;
      const candidates = PRINTABLE_ASCII.test(x) ? unusual : strings;
      return candidates.some((s) => collateStrings(x, s) === 0);
    }
    if (typeof x !== 'object' || x === null) return false;
    return structured.some((a) => cmp(x, a) === 0);
  };
}

// `$all` uses exact equality, not collation; `{$all: [[1, 2]]}` also matches the array [1, 2] itself.
function allPredicate(args: readonly unknown[]): Pred {
  if (args.length === 0) return () => false;
  const whole = args.length === 1 && Array.isArray(args[0]) ? args[0] : undefined;
  return (v) => {
    if (!Array.isArray(v)) return false;
    if (args.every((a) => v.some((x) => jsonEqual(x, a)))) return true;
    return whole !== undefined && jsonEqual(v, whole);
  };
}

function jsonType(v: unknown): JsonType | undefined {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    case 'string':
      return 'string';
    case 'object':
      return Array.isArray(v) ? 'array' : 'object';
    default:
      return undefined;
  }
}

/** Structural equality; object keys must match in order, as Erlang compares decoded objects. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k, i) => k === kb[i] && jsonEqual(ra[k], rb[k]));
}
