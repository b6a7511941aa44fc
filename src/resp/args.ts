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
