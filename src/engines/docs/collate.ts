/**
 * CouchDB's two orderings of JSON values.
 *
 * `collate` is view collation: null < false < true < numbers < strings < arrays < objects, strings by
 * the Unicode Collation Algorithm at tertiary strength (CouchDB opens the ICU root collator with default
 * attributes, so "a" < "A" < "b" and strings that differ only in ignorable characters compare equal).
 *
 * `collateRaw` is the Erlang term order CouchDB uses for `_id` (the `_all_docs` order): strings by
 * code point, i.e. by UTF-8 bytes.
 */

// Created once: constructing a collator costs far more than a comparison.
const collator = new Intl.Collator('en', { sensitivity: 'variant' });

/** Rank by JSON type in collation order; non-JSON values (e.g. undefined) sort before null. */
function rank(v: unknown): number {
  if (v === null) return 1;
  switch (typeof v) {
    case 'boolean':
      return v ? 3 : 2;
    case 'number':
      return 4;
    case 'string':
      return 5;
    case 'object':
      return Array.isArray(v) ? 6 : 7;
    default:
      return 0;
  }
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Compares two strings the way CouchDB's ICU collator does. */
export function collateStrings(a: string, b: string): number {
  if (a === b) return 0;
  return sign(collator.compare(a, b));
}

/** CouchDB view collation; returns -1, 0 or 1. */
export function collate(a: unknown, b: unknown): number {
  if (a === b) return 0;
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 4:
      return sign((a as number) - (b as number));
    case 5:
      return sign(collator.compare(a as string, b as string));
    case 6:
      return collateArrays(a as unknown[], b as unknown[], collate);
    case 7:
      return collateObjects(
        a as Record<string, unknown>,
        b as Record<string, unknown>,
        collateStrings,
        collate,
      );
    default:
      return 0;
  }
}

function collateArrays(a: unknown[], b: unknown[], cmp: (x: unknown, y: unknown) => number): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = cmp(a[i], b[i]);
    if (c !== 0) return c;
  }
  return sign(a.length - b.length);
}

// Objects compare as their ordered lists of (key, value) pairs, so a prefix sorts first.
function collateObjects(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  keyCmp: (x: string, y: string) => number,
  cmp: (x: unknown, y: unknown) => number,
): number {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const keyA = ka[i];
    const keyB = kb[i];
    const kc = keyCmp(keyA, keyB);
    if (kc !== 0) return kc;
    const vc = cmp(a[keyA], b[keyB]);
    if (vc !== 0) return vc;
  }
  return sign(ka.length - kb.length);
}

/**
 * Compares strings by code point. JS `<` compares UTF-16 code units, which puts astral characters
 * (surrogates, 0xD800-0xDFFF) before U+E000-U+FFFF; shifting units restores code-point order.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca >= 0xd800) ca += ca < 0xe000 ? 0x2000 : -0x800;
    if (cb >= 0xd800) cb += cb < 0xe000 ? 0x2000 : -0x800;
    return ca < cb ? -1 : 1;
  }
  return sign(a.length - b.length);
}

// Erlang term order: number < atom (false < null < true, alphabetical) < tuple (object) < list < binary.
function rawRank(v: unknown): number {
  if (v === null) return 2;
  switch (typeof v) {
    case 'boolean':
      return v ? 3 : 1;
    case 'number':
      return 0;
    case 'string':
      return 6;
    case 'object':
      return Array.isArray(v) ? 5 : 4;
    default:
      return -1;
  }
}

/** Erlang term order over JSON values as CouchDB decodes them; strings by UTF-8 bytes. */
export function collateRaw(a: unknown, b: unknown): number {
  if (a === b) return 0;
  const ra = rawRank(a);
  const rb = rawRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return sign((a as number) - (b as number));
    case 6:
      return compareCodePoints(a as string, b as string);
    case 5:
      return collateArrays(a as unknown[], b as unknown[], collateRaw);
    case 4:
      return collateObjects(
        a as Record<string, unknown>,
        b as Record<string, unknown>,
        compareCodePoints,
        collateRaw,
      );
    default:
      return 0;
  }
}
