/**
 * Redis' number rules, byte for byte: integers are strict decimal int64
 * (no sign on zero, no leading zeros, no spaces), floats are what strtod
 * accepts minus leading spaces and NaN; replies format doubles the way
 * Redis 7 does.
 */

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** A strict int64 (`string2ll`): a number when it is a safe integer, a bigint beyond that; undefined when invalid. */
export function parseInt64(bytes: Uint8Array): number | bigint | undefined {
  const len = bytes.length;
  if (len === 0 || len > 20) return undefined;
  let i = 0;
  let negative = false;
  if (bytes[0] === 0x2d) {
    negative = true;
    i = 1;
    if (len === 1) return undefined;
  }
  const first = bytes[i];
  if (first === 0x30) return len === 1 ? 0 : undefined;
  if (first < 0x31 || first > 0x39) return undefined;
  if (len - i <= 15) {
    let n = 0;
    for (; i < len; i++) {
      const c = bytes[i] - 0x30;
      if (c < 0 || c > 9) return undefined;
      n = n * 10 + c;
    }
    return negative ? -n : n;
  }
  let big = 0n;
  for (; i < len; i++) {
    const c = bytes[i] - 0x30;
    if (c < 0 || c > 9) return undefined;
    big = big * 10n + BigInt(c);
  }
  if (negative) big = -big;
  if (big < INT64_MIN || big > INT64_MAX) return undefined;
  return Number.isSafeInteger(Number(big)) ? Number(big) : big;
}

/** `a + b` within int64, or undefined on overflow. */
export function addInt64(a: number | bigint, b: number | bigint): number | bigint | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  const sum = BigInt(a) + BigInt(b);
  if (sum < INT64_MIN || sum > INT64_MAX) return undefined;
  return Number.isSafeInteger(Number(sum)) ? Number(sum) : sum;
}

const FLOAT_RE = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)$/i;

/** A float as Redis accepts it (`strtod`, no leading space, no NaN); undefined when invalid. */
export function parseDouble(bytes: Uint8Array): number | undefined {
  if (bytes.length === 0 || bytes.length > 256) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  if (!FLOAT_RE.test(text)) return undefined;
  const lower = text.toLowerCase();
  if (lower.endsWith('inf') || lower.endsWith('infinity')) return text.startsWith('-') ? -Infinity : Infinity;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

/** A double in a reply (RESP2 bulk, RESP3 `,`): shortest round-trip digits, `inf`/`-inf`. */
export function formatDouble(value: number): string {
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Number.isNaN(value)) return 'nan';
  return String(value);
}

/** INCRBYFLOAT's "human friendly" form: plain decimal, no exponent, no trailing zeros. */
export function formatHumanDouble(value: number): string {
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  const text = String(value);
  if (!/e/i.test(text)) return text === '-0' ? '0' : text;
  // Exponent form: expand it into plain digits.
  const abs = Math.abs(value);
  let digits: string;
  if (abs >= 1) digits = BigInt(Math.round(abs)).toString();
  else {
    digits = abs.toFixed(20);
    if (/^0\.0+$/.test(digits)) return '0';
    digits = digits.replace(/0+$/, '');
  }
  return value < 0 ? `-${digits}` : digits;
}
