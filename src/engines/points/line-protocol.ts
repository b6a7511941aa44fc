/**
 * InfluxDB line protocol: `measurement[,tag=value…] field=value[,field=value…] [timestamp]`,
 * one point per line. The parser is lenient nowhere InfluxDB is strict: a bad line is
 * reported with its (1-based) line number and reason, and the other lines still parse.
 *
 * Escapes (as InfluxDB): in measurements `\,` and `\ `; in tag keys, tag values and field
 * keys also `\=`; in string field values `\"` and `\\`. A backslash before any other
 * character is literal.
 */

export type Precision = 'ns' | 'us' | 'ms' | 's';

export type FieldType = 'float' | 'integer' | 'unsigned' | 'string' | 'boolean';

export interface Field {
  readonly key: string;
  readonly type: FieldType;
  /** Integers and unsigned integers keep their decimal text (int64/uint64 exceed doubles). */
  readonly value: number | string | boolean;
}

export interface ParsedPoint {
  readonly measurement: string;
  /** Unescaped, sorted by key (byte order), as InfluxDB keys its series. */
  readonly tags: readonly (readonly [string, string])[];
  readonly fields: readonly Field[];
  /** Nanoseconds since the epoch, as decimal text. */
  readonly timestampNs: string;
  /** The point as a line at ns precision (no newline): what is queued and forwarded. */
  readonly line: string;
}

export interface LineError {
  /** 1-based, counting every line of the body (comments and blank lines too). */
  readonly line: number;
  readonly message: string;
}

export interface ParseResult {
  readonly points: ParsedPoint[];
  readonly errors: LineError[];
}

const ZEROS: Record<Precision, string> = { ns: '', us: '000', ms: '000000', s: '000000000' };
const MAX_INT64 = 9223372036854775807n;
const MIN_INT64 = -9223372036854775808n;
const MAX_UINT64 = 18446744073709551615n;
/** InfluxDB's accepted timestamp range (int64 minus its two sentinel values). */
const MAX_TIME = 9223372036854775806n;
const MIN_TIME = -9223372036854775806n;
// One way to match each input: `\d+\.?\d*` splits a digit run every possible way before failing
// (quadratic: 200,000 digits and a stray letter held the event loop for seconds).
const FLOAT = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const INTEGER = /^[-+]?\d+$/;
/** Canonical integers far inside int64: kept as written, no BigInt needed. */
const SHORT_INTEGER = /^(?:0|-?[1-9]\d{0,14})$/;
const UNSIGNED = /^\+?\d+$/;
const TIMESTAMP = /^-?\d+$/;
const TRUE_WORDS = new Set(['t', 'T', 'true', 'True', 'TRUE']);
const FALSE_WORDS = new Set(['f', 'F', 'false', 'False', 'FALSE']);

/** Accepts InfluxDB 2's names and 1.x's short forms (`n`, `u`, `ms`, `s`); undefined otherwise. */
export function parsePrecision(value: string | undefined): Precision | undefined {
  switch (value ?? 'ns') {
    case 'ns':
    case 'n':
      return 'ns';
    case 'us':
    case 'u':
      return 'us';
    case 'ms':
      return 'ms';
    case 's':
      return 's';
    default:
      return undefined;
  }
}

/** "Now" at `precision`, in ns, for lines without a timestamp (InfluxDB truncates it likewise). */
export function nowNs(precision: Precision, nowMs = Date.now()): string {
  const ms = BigInt(Math.floor(nowMs));
  const ns = ms * 1_000_000n;
  const unit = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n }[precision];
  return ((ns / unit) * unit).toString();
}

class LineSyntaxError extends Error {}

const fail = (message: string): never => {
  throw new LineSyntaxError(message);
};

/** Parses a whole request body. `defaultNs` stamps lines that carry no timestamp. */
export function parseLineProtocol(text: string, precision: Precision, defaultNs: string): ParseResult {
  const points: ParsedPoint[] = [];
  const errors: LineError[] = [];
  let start = 0;
  let lineNo = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    let stop = end;
    if (stop > start && text.charCodeAt(stop - 1) === 13) stop--;
    let first = start;
    while (first < stop && (text.charCodeAt(first) === 32 || text.charCodeAt(first) === 9)) first++;
    if (first < stop && text.charCodeAt(first) !== 35 /* # */) {
      const line = text.slice(first, stop);
      try {
        points.push(parseLine(line, precision, defaultNs));
      } catch (err) {
        if (!(err instanceof LineSyntaxError)) throw err;
        errors.push({ line: lineNo, message: `unable to parse '${line}': ${err.message}` });
      }
    }
    start = end + 1;
  }
  return { points, errors };
}

const COMMA = 1;
const SPACE = 2;
const EQUALS = 4;

/** The delimiter class of a character code (0 for ordinary characters). */
function charClass(code: number): number {
  return code === 44 ? COMMA : code === 32 ? SPACE : code === 61 ? EQUALS : 0;
}

/** Where the last `readKey` stopped (the delimiter's index): saves a tuple per key. */
let keyEnd = 0;

/**
 * Reads a key (measurement, tag key or value, field key) from `i` up to an unescaped
 * delimiter of `delimiters` (a set of classes); returns the unescaped text and leaves
 * the delimiter's index in `keyEnd`.
 */
function readKey(line: string, i: number, delimiters: number, escapable: number): string {
  let out = '';
  let runStart = i;
  const length = line.length;
  while (i < length) {
    const code = line.charCodeAt(i);
    if (code === 92 /* \ */ && i + 1 < length && (charClass(line.charCodeAt(i + 1)) & escapable) !== 0) {
      out += line.slice(runStart, i) + line[i + 1];
      i += 2;
      runStart = i;
      continue;
    }
    if ((charClass(code) & delimiters) !== 0) break;
    i++;
  }
  keyEnd = i;
  return out === '' ? line.slice(runStart, i) : out + line.slice(runStart, i);
}

function parseLine(line: string, precision: Precision, defaultNs: string): ParsedPoint {
  const measurement = readKey(line, 0, COMMA | SPACE, COMMA | SPACE);
  if (measurement === '') fail('missing measurement');
  let i = keyEnd;
  const length = line.length;
  const tags: [string, string][] = [];
  while (i < length && line.charCodeAt(i) === 44) {
    const key = readKey(line, i + 1, COMMA | EQUALS | SPACE, COMMA | EQUALS | SPACE);
    const afterKey = keyEnd;
    if (key === '') fail('missing tag key');
    if (line.charCodeAt(afterKey) !== 61) fail('missing tag value');
    const value = readKey(line, afterKey + 1, COMMA | EQUALS | SPACE, COMMA | EQUALS | SPACE);
    if (value === '') fail('missing tag value');
    if (line.charCodeAt(keyEnd) === 61) fail('invalid tag format');
    tags.push([key, value]);
    i = keyEnd;
  }
  const seriesEnd = i;
  if (i >= length) fail('missing fields');
  while (i < length && line.charCodeAt(i) === 32) i++;
  const fieldsStart = i;
  if (i >= length) fail('missing fields');
  const fields: Field[] = [];
  for (;;) {
    const key = readKey(line, i, COMMA | EQUALS | SPACE, COMMA | EQUALS | SPACE);
    if (key === '') fail('missing field key');
    if (line.charCodeAt(keyEnd) !== 61) fail('missing field value');
    i = keyEnd + 1;
    if (line.charCodeAt(i) === 34 /* " */) {
      let value = '';
      let runStart = ++i;
      for (;;) {
        if (i >= length) fail('unbalanced quotes');
        const code = line.charCodeAt(i);
        if (code === 92 && (line.charCodeAt(i + 1) === 34 || line.charCodeAt(i + 1) === 92)) {
          value += line.slice(runStart, i) + line[i + 1];
          i += 2;
          runStart = i;
        } else if (code === 34) break;
        else i++;
      }
      value += line.slice(runStart, i);
      i++;
      fields.push({ key, type: 'string', value });
    } else {
      let valueEnd = i;
      while (valueEnd < length) {
        const code = line.charCodeAt(valueEnd);
        if (code === 44 || code === 32) break;
        valueEnd++;
      }
      fields.push(parseFieldValue(key, line.slice(i, valueEnd)));
      i = valueEnd;
    }
    if (i >= length || line.charCodeAt(i) === 32) break;
    if (line.charCodeAt(i) !== 44) fail('invalid field format');
    i++;
  }
  const fieldsEnd = i;
  while (i < length && line.charCodeAt(i) === 32) i++;
  let timestampNs: string;
  if (i >= length) timestampNs = defaultNs;
  else {
    let tsEnd = i;
    while (tsEnd < length && line.charCodeAt(tsEnd) !== 32 && line.charCodeAt(tsEnd) !== 9) tsEnd++;
    const raw = line.slice(i, tsEnd);
    for (let j = tsEnd; j < length; j++) {
      const code = line.charCodeAt(j);
      if (code !== 32 && code !== 9 && code !== 13) fail('bad timestamp');
    }
    timestampNs = toNanoseconds(raw, precision);
  }
  if (tags.length > 1) tags.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  // Most lines need no rewriting: ns timestamps, single blanks.
  const normalized =
    fieldsStart === seriesEnd + 1 &&
    fieldsEnd + 1 < length &&
    line.endsWith(timestampNs) &&
    fieldsEnd + 1 + timestampNs.length === length
      ? line
      : `${line.slice(0, seriesEnd)} ${line.slice(fieldsStart, fieldsEnd)} ${timestampNs}`;
  return { measurement, tags, fields, timestampNs, line: normalized };
}

function parseFieldValue(key: string, raw: string): Field {
  if (raw === '') return fail('missing field value');
  const last = raw[raw.length - 1];
  if (last === 'i') {
    const digits = raw.slice(0, -1);
    if (SHORT_INTEGER.test(digits)) return { key, type: 'integer', value: digits };
    if (!INTEGER.test(digits)) fail(`invalid integer value for field '${key}'`);
    const value = BigInt(digits);
    if (value > MAX_INT64 || value < MIN_INT64) fail(`value out of range for integer field '${key}'`);
    return { key, type: 'integer', value: value.toString() };
  }
  if (last === 'u') {
    const digits = raw.slice(0, -1);
    if (!UNSIGNED.test(digits)) fail(`invalid unsigned value for field '${key}'`);
    const value = BigInt(digits);
    if (value > MAX_UINT64) fail(`value out of range for unsigned field '${key}'`);
    return { key, type: 'unsigned', value: value.toString() };
  }
  if (TRUE_WORDS.has(raw)) return { key, type: 'boolean', value: true };
  if (FALSE_WORDS.has(raw)) return { key, type: 'boolean', value: false };
  if (!FLOAT.test(raw)) return fail(`invalid field value '${raw}' for field '${key}'`);
  const value = Number(raw);
  if (!Number.isFinite(value)) fail(`invalid number for field '${key}'`);
  return { key, type: 'float', value };
}

/** Canonical decimal integers short enough to need no range check. */
const SHORT_CANONICAL = /^-?[1-9]\d{0,17}$/;
const LONG_CANONICAL = /^[1-9]\d{18}$/;
const MAX_TIME_TEXT = MAX_TIME.toString();

function toNanoseconds(raw: string, precision: Precision): string {
  const scaledText = raw + ZEROS[precision];
  // The common case: canonical and within 18 digits, so within int64 and already in ns text.
  if (SHORT_CANONICAL.test(scaledText)) return scaledText;
  // Today's ns timestamps have 19 digits: digit strings of one length compare as numbers.
  if (scaledText.length === 19 && LONG_CANONICAL.test(scaledText) && scaledText <= MAX_TIME_TEXT)
    return scaledText;
  if (!TIMESTAMP.test(raw)) fail('bad timestamp');
  // Appending zeros scales exactly; only long values need the range check in BigInt.
  const scaled = BigInt(raw + ZEROS[precision]);
  if (scaled > MAX_TIME || scaled < MIN_TIME) fail('timestamp out of range');
  return scaled.toString();
}

// ---- writing ---------------------------------------------------------------

export const escapeMeasurement = (s: string): string => s.replace(/[, ]/g, (c) => `\\${c}`);
export const escapeKey = (s: string): string => s.replace(/[,= ]/g, (c) => `\\${c}`);
export const escapeStringField = (s: string): string => s.replace(/["\\]/g, (c) => `\\${c}`);

/** `measurement,k=v,…` with tags in the given order, escaped. */
export function seriesKey(measurement: string, tags: readonly (readonly [string, string])[]): string {
  let out = escapeMeasurement(measurement);
  for (const [k, v] of tags) out += `,${escapeKey(k)}=${escapeKey(v)}`;
  return out;
}

export function formatFieldValue(field: Field): string {
  switch (field.type) {
    case 'float':
      return String(field.value);
    case 'integer':
      return `${String(field.value)}i`;
    case 'unsigned':
      return `${String(field.value)}u`;
    case 'boolean':
      return field.value === true ? 'true' : 'false';
    case 'string':
      return `"${escapeStringField(String(field.value))}"`;
  }
}

/** A point as one line of line protocol at ns precision. */
export function formatLine(
  measurement: string,
  tags: readonly (readonly [string, string])[],
  fields: readonly Field[],
  timestampNs: string,
): string {
  const fieldText = fields.map((f) => `${escapeKey(f.key)}=${formatFieldValue(f)}`).join(',');
  return `${seriesKey(measurement, tags)} ${fieldText} ${timestampNs}`;
}
