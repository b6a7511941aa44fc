/** Parsing of command arguments with Redis' rules and error texts. */
import { parseDouble, parseInt64 } from '../engines/kv/numbers.js';
import type { ScoreBound } from '../engines/kv/zsets.js';
import { notFloatError, notIntegerError, respError, syntaxError } from './errors.js';

/** An integer argument as a number (int64 values beyond 2^53 lose precision, which only indexes see). */
export function int(arg: Buffer): number {
  const n = parseInt64(arg);
  if (n === undefined) throw notIntegerError();
  return Number(n);
}

/** An exact int64 argument (INCRBY deltas). */
export function int64(arg: Buffer): number | bigint {
  const n = parseInt64(arg);
  if (n === undefined) throw notIntegerError();
  return n;
}

export function float(arg: Buffer): number {
  const n = parseDouble(arg);
  if (n === undefined) throw notFloatError();
  return n;
}

/** An option keyword, upper-cased. */
export function word(arg: Buffer): string {
  return arg.length > 32 ? '' : arg.toString('latin1').toUpperCase();
}

/**
 * The keys of a `numkeys key [key …]` command (LMPOP, ZMPOP, SINTERCARD …) and
 * where its options start, with Redis' errors.
 */
export function numberedKeys(argv: Buffer[], at: number, tooMany?: string): { keys: Buffer[]; next: number } {
  let count: number;
  try {
    count = int(argv[at]);
  } catch {
    count = 0;
  }
  if (count <= 0) throw respError('numkeys should be greater than 0');
  if (count > argv.length - at - 1) throw tooMany === undefined ? syntaxError() : respError(tooMany);
  return { keys: argv.slice(at + 1, at + 1 + count), next: at + 1 + count };
}

/**
 * LMPOP's and ZMPOP's arguments after the keys: the end to pop from (one of
 * `ends`, upper case) and `[COUNT count]` (1 when absent), with Redis' errors.
 */
export function popTail<End extends string>(
  argv: Buffer[],
  at: number,
  ends: readonly End[],
): { end: End; count: number } {
  const end = ends.find((candidate) => argv[at] !== undefined && word(argv[at]) === candidate);
  if (end === undefined) throw syntaxError();
  if (at + 1 === argv.length) return { end, count: 1 };
  if (word(argv[at + 1]) !== 'COUNT' || at + 3 !== argv.length) throw syntaxError();
  let count: number;
  try {
    count = int(argv[at + 2]);
  } catch {
    count = 0;
  }
  if (count <= 0) throw respError('count should be greater than 0');
  return { end, count };
}

/** What SINTERCARD and ZINTERCARD answer to more keys than arguments. */
export const TOO_MANY_KEYS = "Number of keys can't be greater than number of args";

/** SINTERCARD's and ZINTERCARD's `[LIMIT limit]` at `at` (0 when absent: no limit). */
export function cardinalityLimit(argv: Buffer[], at: number): number {
  if (at === argv.length) return 0;
  if (word(argv[at]) !== 'LIMIT' || at + 2 !== argv.length) throw syntaxError();
  let limit: number;
  try {
    limit = int(argv[at + 1]);
  } catch {
    limit = -1;
  }
  if (limit < 0) throw respError("LIMIT can't be negative");
  return limit;
}

export function text(arg: Buffer): string {
  return arg.toString('utf8');
}

/** A SCAN cursor: an unsigned integer. */
export function cursor(arg: Buffer): number {
  const n = parseInt64(arg);
  if (n === undefined || n < 0) throw respError('invalid cursor');
  return Number(n);
}

export interface ScanOptions {
  count: number;
  match?: Buffer;
  type?: string;
}

/** `[MATCH pattern] [COUNT n] [TYPE t]` from `argv[from]` on. */
export function scanOptions(argv: Buffer[], from: number, allowType: boolean): ScanOptions {
  const options: ScanOptions = { count: 10 };
  for (let i = from; i < argv.length; i += 2) {
    const option = word(argv[i]);
    const value = argv[i + 1];
    if (value === undefined) throw syntaxError();
    if (option === 'COUNT') {
      options.count = int(value);
      if (options.count < 1) throw syntaxError();
    } else if (option === 'MATCH') {
      options.match = value;
    } else if (option === 'TYPE' && allowType) {
      options.type = value.toString('latin1').toLowerCase();
    } else throw syntaxError();
  }
  return options;
}

/** A ZRANGEBYSCORE bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`. */
export function scoreBound(arg: Buffer): ScoreBound {
  const exclusive = arg[0] === 0x28; /* ( */
  const value = parseDouble(exclusive ? arg.subarray(1) : arg);
  if (value === undefined) throw respError('min or max is not a float');
  return { value, exclusive };
}

/**
 * An expire time argument (`EX 10`, `PXAT …`) as an absolute ms time.
 * `unit` is 's' or 'ms'; `absolute` for *AT forms. Throws Redis' "invalid
 * expire time in '<command>' command" for non-positive or overflowing values.
 */
export function expireTime(arg: Buffer, unit: 's' | 'ms', absolute: boolean, commandName: string): number {
  const n = int(arg);
  const ms = unit === 's' ? n * 1000 : n;
  const at = absolute ? ms : Date.now() + ms;
  // The error is built only when thrown: building one captures a stack, costly on every SET … EX.
  if (n <= 0 || !Number.isSafeInteger(ms) || !Number.isSafeInteger(at))
    throw respError(`invalid expire time in '${commandName}' command`);
  return at;
}

/**
 * Repeating picks one HRANDFIELD / ZRANDMEMBER / SRANDMEMBER may ask for
 * (a negative count). Redis accepts up to 2^63; one reply that large would
 * exhaust the node's memory, so larger counts are out of range here.
 */
const MAX_REPEATED_PICKS = 10_000_000;
const INT64_MIN = -(2n ** 63n);

/**
 * HRANDFIELD's and ZRANDMEMBER's `[count [WITH…]]` from argv[2] on, in
 * Redis' order of checks: the count, then the option (`withPairs`, e.g.
 * WITHVALUES), then the range a paired reply allows.
 */
export function randomCount(argv: Buffer[], withPairs: string): { count?: number; pairs: boolean } {
  if (argv.length < 3) return { pairs: false };
  const exact = int64(argv[2]);
  // Redis reads the count as a long in [-LONG_MAX, LONG_MAX].
  if (exact === INT64_MIN) {
    throw respError('value is out of range, value must between -9223372036854775807 and 9223372036854775807');
  }
  const count = Number(exact);
  if (argv.length > 4 || (argv.length === 4 && word(argv[3]) !== withPairs)) throw syntaxError();
  const pairs = argv.length === 4;
  if ((pairs && Math.abs(count) > Number.MAX_SAFE_INTEGER / 2) || count < -MAX_REPEATED_PICKS) {
    throw respError('value is out of range');
  }
  return { count, pairs };
}
