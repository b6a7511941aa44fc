/**
 * An incremental parser of client requests: RESP multibulk arrays of bulk
 * strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands
 * (`GET k\r\n`). It reports the exact number of bytes each command took, so
 * a replica can keep Redis' replication offset, and it rejects malformed or
 * oversized frames with Redis' own `Protocol error: …` text.
 *
 * Arguments are views of the received chunks, which are never written to
 * after they arrive: a command's arguments stay valid as long as it is held.
 */

export interface RespLimits {
  /** Largest bulk string (Redis' proto-max-bulk-len, 512 MB). */
  readonly maxBulkBytes: number;
  /** Most elements of one multibulk request. */
  readonly maxMultibulkLength: number;
  /** Longest inline command or `*`/`$` header line without a newline. */
  readonly maxInlineBytes: number;
}

export const DEFAULT_LIMITS: RespLimits = {
  maxBulkBytes: 512 * 1024 * 1024,
  maxMultibulkLength: 1024 * 1024,
  maxInlineBytes: 64 * 1024,
};

/** Redis' stricter limits for clients that have not authenticated yet. */
const UNAUTHENTICATED_MULTIBULK = 10;
const UNAUTHENTICATED_BULK = 16384;

/** Bulk strings at least this long are assembled in their own buffer as chunks arrive. */
const BIG_ARG = 32 * 1024;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export interface ParsedCommand {
  /** The arguments; empty for an empty line or `*0`/`*-1` (Redis ignores those). */
  readonly argv: Buffer[];
  /** Bytes of input this command took, including its framing. */
  readonly bytes: number;
}

const EMPTY = Buffer.alloc(0);
const CR = 0x0d;
const LF = 0x0a;

export class RespParser {
  readonly limits: RespLimits;
  /** Until set, Redis' unauthenticated limits apply (10 elements, 16 KB bulks). */
  authenticated: boolean;
  #buf: Buffer = EMPTY;
  #pos = 0;
  /** Elements still expected in the current multibulk; -1 between commands. */
  #argc = -1;
  #argv: Buffer[] = [];
  /** Length of the bulk being read; -1 while its `$` header is awaited. */
  #bulkLen = -1;
  /** Bytes taken so far by the current command. */
  #bytes = 0;
  /** A big bulk (+ CRLF) assembled across chunks. */
  #big: Buffer | null = null;
  #bigFilled = 0;
  #error: ProtocolError | null = null;

  constructor(options: { limits?: RespLimits; authenticated?: boolean } = {}) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.authenticated = options.authenticated ?? true;
  }

  /** Bytes received but not yet part of a returned command. */
  get buffered(): number {
    return this.#buf.length - this.#pos + this.#bigFilled;
  }

  feed(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
      this.#pos = 0;
    } else {
      this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
      this.#pos = 0;
    }
  }

  /** The next complete command, or undefined until more input arrives. Throws ProtocolError. */
  next(): ParsedCommand | undefined {
    if (this.#error !== null) throw this.#error;
    try {
      return this.#next();
    } catch (err) {
      if (err instanceof ProtocolError) this.#error = err;
      throw err;
    }
  }

  #take(n: number): void {
    this.#pos += n;
    this.#bytes += n;
  }

  #finish(): ParsedCommand {
    const command = { argv: this.#argv, bytes: this.#bytes };
    this.#argv = [];
    this.#argc = -1;
    this.#bytes = 0;
    return command;
  }

  #next(): ParsedCommand | undefined {
    if (this.#big !== null && !this.#fillBig()) return undefined;
    const buf = this.#buf;
    if (this.#argc < 0) {
      if (this.#pos >= buf.length) return undefined;
      if (buf[this.#pos] !== 0x2a /* * */) return this.#inline();
      const line = this.#line('Protocol error: too big mbulk count string');
      if (line === undefined) return undefined;
      const count = parseLineInt(buf, this.#pos + 1, line);
      if (count === undefined || count > this.limits.maxMultibulkLength) {
        throw new ProtocolError('Protocol error: invalid multibulk length');
      }
      if (!this.authenticated && count > UNAUTHENTICATED_MULTIBULK) {
        throw new ProtocolError('Protocol error: unauthenticated multibulk length');
      }
      this.#take(line + 2 - this.#pos);
      if (count <= 0) return this.#finish();
      this.#argc = count;
    }
    while (this.#argc > 0) {
      if (this.#bulkLen < 0) {
        if (this.#pos >= buf.length) return undefined;
        if (buf[this.#pos] !== 0x24 /* $ */) {
          throw new ProtocolError(
            `Protocol error: expected '$', got '${String.fromCharCode(buf[this.#pos])}'`,
          );
        }
        const line = this.#line('Protocol error: too big bulk count string');
        if (line === undefined) return undefined;
        const length = parseLineInt(buf, this.#pos + 1, line);
        if (length === undefined || length < 0 || length > this.limits.maxBulkBytes) {
          throw new ProtocolError('Protocol error: invalid bulk length');
        }
        if (!this.authenticated && length > UNAUTHENTICATED_BULK) {
          throw new ProtocolError('Protocol error: unauthenticated bulk length');
        }
        this.#take(line + 2 - this.#pos);
        this.#bulkLen = length;
      }
      const available = buf.length - this.#pos;
      const needed = this.#bulkLen + 2;
      if (available < needed) {
        if (this.#bulkLen >= BIG_ARG) {
          this.#big = Buffer.allocUnsafe(needed);
          buf.copy(this.#big, 0, this.#pos);
          this.#bigFilled = available;
          this.#take(available);
          this.#buf = EMPTY;
          this.#pos = 0;
        }
        return undefined;
      }
      const end = this.#pos + this.#bulkLen;
      if (buf[end] !== CR || buf[end + 1] !== LF)
        throw new ProtocolError('Protocol error: expected CRLF after bulk');
      this.#argv.push(buf.subarray(this.#pos, end));
      this.#take(needed);
      this.#bulkLen = -1;
      this.#argc--;
    }
    return this.#finish();
  }

  /** Copies buffered input into the big bulk; true once it is complete (and pushed). */
  #fillBig(): boolean {
    const big = this.#big!;
    const n = Math.min(big.length - this.#bigFilled, this.#buf.length - this.#pos);
    this.#buf.copy(big, this.#bigFilled, this.#pos, this.#pos + n);
    this.#bigFilled += n;
    this.#take(n);
    if (this.#bigFilled < big.length) return false;
    if (big[big.length - 2] !== CR || big[big.length - 1] !== LF) {
      throw new ProtocolError('Protocol error: expected CRLF after bulk');
    }
    this.#argv.push(big.subarray(0, big.length - 2));
    this.#big = null;
    this.#bigFilled = 0;
    this.#bulkLen = -1;
    this.#argc--;
    return true;
  }

  /** The index of the `\r` ending the header line at #pos (which must be followed by `\n`), or undefined to wait. */
  #line(tooBig: string): number | undefined {
    const buf = this.#buf;
    const limit = Math.min(buf.length, this.#pos + this.limits.maxInlineBytes + 1);
    const cr = buf.indexOf(CR, this.#pos);
    if (cr < 0 || cr >= limit) {
      if (buf.length - this.#pos > this.limits.maxInlineBytes) throw new ProtocolError(tooBig);
      return undefined;
    }
    if (cr + 1 >= buf.length) return undefined;
    if (buf[cr + 1] !== LF) {
      throw new ProtocolError(
        buf[this.#pos] === 0x2a
          ? 'Protocol error: invalid multibulk length'
          : 'Protocol error: invalid bulk length',
      );
    }
    return cr;
  }

  #inline(): ParsedCommand | undefined {
    const buf = this.#buf;
    const lf = buf.indexOf(LF, this.#pos);
    if (lf < 0) {
      if (buf.length - this.#pos > this.limits.maxInlineBytes) {
        throw new ProtocolError('Protocol error: too big inline request');
      }
      return undefined;
    }
    if (lf - this.#pos > this.limits.maxInlineBytes)
      throw new ProtocolError('Protocol error: too big inline request');
    const argv = splitInline(buf, this.#pos, lf);
    if (argv === undefined) throw new ProtocolError('Protocol error: unbalanced quotes in request');
    this.#take(lf + 1 - this.#pos);
    this.#argv = argv;
    return this.#finish();
  }
}

/** A strict decimal integer (Redis' string2ll) in `buf[from, to)`; undefined when malformed. */
function parseLineInt(buf: Buffer, from: number, to: number): number | undefined {
  if (to <= from || to - from > 20) return undefined;
  let i = from;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
    if (i === to) return undefined;
  }
  if (buf[i] === 0x30) return to - i === 1 ? 0 : undefined;
  let n = 0;
  for (; i < to; i++) {
    const c = buf[i] - 0x30;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  if (!Number.isSafeInteger(n)) return undefined;
  return negative ? -n : n;
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Splits an inline command the way Redis' sdssplitargs does: whitespace
 * separates arguments; "double quotes" take \n \r \t \b \a \\ \" and \xHH
 * escapes; 'single quotes' take \'. Undefined for unbalanced quotes.
 */
export function splitInline(buf: Buffer, from: number, to: number): Buffer[] | undefined {
  const out: Buffer[] = [];
  let i = from;
  for (;;) {
    while (i < to && isSpace(buf[i])) i++;
    if (i >= to) return out;
    const start = i;
    let quoted = false;
    for (; i < to; i++) {
      const c = buf[i];
      if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
        quoted = true;
        break;
      }
      if (isSpace(c)) break;
    }
    if (!quoted) {
      out.push(buf.subarray(start, i));
      continue;
    }
    // A quoted argument (possibly after unquoted bytes): rebuild it byte by byte.
    const bytes: number[] = [];
    for (let j = start; j < i; j++) bytes.push(buf[j]);
    for (;;) {
      if (i >= to) return out.concat([Buffer.from(bytes)]);
      const c = buf[i];
      if (isSpace(c)) break;
      if (c !== 0x22 && c !== 0x27) {
        bytes.push(c);
        i++;
        continue;
      }
      const quote = c;
      i++;
      let closed = false;
      while (i < to) {
        const d = buf[i];
        if (quote === 0x22 && d === 0x5c /* \ */ && i + 1 < to) {
          const e = buf[i + 1];
          if (e === 0x78 /* x */ && i + 3 < to && hexValue(buf[i + 2]) >= 0 && hexValue(buf[i + 3]) >= 0) {
            bytes.push(hexValue(buf[i + 2]) * 16 + hexValue(buf[i + 3]));
            i += 4;
            continue;
          }
          const escaped: Record<number, number> = {
            0x6e: 0x0a,
            0x72: 0x0d,
            0x74: 0x09,
            0x62: 0x08,
            0x61: 0x07,
          };
          bytes.push(escaped[e] ?? e);
          i += 2;
          continue;
        }
        if (quote === 0x27 && d === 0x5c && i + 1 < to && buf[i + 1] === 0x27) {
          bytes.push(0x27);
          i += 2;
          continue;
        }
        if (d === quote) {
          i++;
          closed = true;
          // A closing quote must be followed by a space or the end.
          if (i < to && !isSpace(buf[i])) return undefined;
          break;
        }
        bytes.push(d);
        i++;
      }
      if (!closed) return undefined;
      break;
    }
    out.push(Buffer.from(bytes));
  }
}
