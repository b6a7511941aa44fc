/**
 * Writes RESP2/RESP3 replies into a connection's output buffer, without an
 * allocation per reply: values are encoded straight into 16 KB chunks that
 * are handed to the socket by `take()` and never written to again.
 *
 * RESP3-only types fall back the way Redis does in RESP2: map → flat array,
 * set → array, double → bulk string, boolean → integer, null → `$-1`/`*-1`,
 * verbatim string → bulk string.
 */
import { formatDouble } from '../engines/kv/numbers.js';

const CHUNK = 16 * 1024;
const CRLF = 0x0a0d; // little-endian "\r\n" for writeUInt16LE
/** The most frequent reply of all (every SET), encoded once. */
const OK_REPLY = Buffer.from('+OK\r\n', 'latin1');

export class ReplyWriter {
  /** Encode RESP3 types natively (after `HELLO 3`). */
  resp3 = false;
  #chunk: Buffer = Buffer.allocUnsafe(CHUNK);
  #pos = 0;
  /** Start of the not-yet-taken bytes in #chunk. */
  #start = 0;
  /** Filled regions of earlier chunks not yet taken. */
  #sealed: Buffer[] = [];
  #written = 0;
  #taken = 0;

  /** Total bytes written so far; a mark for `take`. */
  get position(): number {
    return this.#written;
  }

  /** Bytes written but not yet taken. */
  get pending(): number {
    return this.#written - this.#taken;
  }

  /** The bytes up to mark `upTo` not yet taken, in order (they are never written to again). */
  take(upTo = this.#written): Buffer[] {
    let need = upTo - this.#taken;
    const out: Buffer[] = [];
    while (need > 0 && this.#sealed.length > 0) {
      const first = this.#sealed[0];
      if (first.length <= need) {
        out.push(first);
        this.#sealed.shift();
        need -= first.length;
      } else {
        out.push(first.subarray(0, need));
        this.#sealed[0] = first.subarray(need);
        need = 0;
      }
    }
    if (need > 0) {
      out.push(this.#chunk.subarray(this.#start, this.#start + need));
      this.#start += need;
    }
    if (upTo > this.#taken) this.#taken = upTo;
    return out;
  }

  #ensure(n: number): void {
    if (this.#chunk.length - this.#pos >= n) return;
    if (this.#pos > this.#start) this.#sealed.push(this.#chunk.subarray(this.#start, this.#pos));
    this.#chunk = Buffer.allocUnsafe(Math.max(CHUNK, n));
    this.#pos = 0;
    this.#start = 0;
  }

  #byte(b: number): void {
    this.#chunk[this.#pos++] = b;
    this.#written++;
  }

  #crlf(): void {
    this.#chunk.writeUInt16LE(CRLF, this.#pos);
    this.#pos += 2;
    this.#written += 2;
  }

  /** Writes a safe integer's decimal digits (space already ensured: ≤ 21 bytes). */
  #digits(n: number): void {
    const chunk = this.#chunk;
    let pos = this.#pos;
    if (n < 0) {
      chunk[pos++] = 0x2d;
      n = -n;
    }
    if (n < 10) {
      chunk[pos++] = 0x30 + n;
    } else {
      let width = 1;
      for (let m = n; m >= 10; m = Math.floor(m / 10)) width++;
      for (let i = pos + width - 1; i >= pos; i--) {
        chunk[i] = 0x30 + (n % 10);
        n = Math.floor(n / 10);
      }
      pos += width;
    }
    this.#written += pos - this.#pos;
    this.#pos = pos;
  }

  #ascii(text: string): void {
    const n = this.#chunk.write(text, this.#pos, 'latin1');
    this.#pos += n;
    this.#written += n;
  }

  #header(prefix: number, n: number): void {
    this.#ensure(24);
    this.#byte(prefix);
    this.#digits(n);
    this.#crlf();
  }

  #bytes(source: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.#ensure(n + 2);
    this.#chunk.set(source.subarray(from, to), this.#pos);
    this.#pos += n;
    this.#written += n;
    this.#crlf();
  }

  /** `+text` (text must hold no CR or LF). */
  simple(text: string): void {
    this.#ensure(text.length + 3);
    this.#byte(0x2b);
    this.#ascii(text);
    this.#crlf();
  }

  ok(): void {
    this.raw(OK_REPLY);
  }

  /** `-CODE message`: `text` starts with the error code (`ERR`, `WRONGTYPE` …). */
  error(text: string): void {
    const clean = text.replace(/[\r\n]+/g, ' ');
    const bytes = Buffer.from(clean, 'utf8');
    this.#ensure(bytes.length + 3);
    this.#byte(0x2d);
    this.#bytes(bytes, 0, bytes.length);
  }

  integer(n: number | bigint): void {
    if (typeof n === 'number' && Number.isSafeInteger(n)) {
      this.#header(0x3a, n);
      return;
    }
    const text = String(n);
    this.#ensure(text.length + 3);
    this.#byte(0x3a);
    this.#ascii(text);
    this.#crlf();
  }

  /** A bulk string of bytes (`null`: the null bulk). */
  bulk(value: Uint8Array | null): void {
    if (value === null) {
      this.nullBulk();
      return;
    }
    this.#header(0x24, value.length);
    this.#bytes(value, 0, value.length);
  }

  /** A bulk string of text, UTF-8 encoded. */
  bulkText(text: string): void {
    this.bulk(Buffer.from(text, 'utf8'));
  }

  nullBulk(): void {
    if (this.resp3) this.#raw3(0x5f);
    else this.#rawNull(0x24);
  }

  nullArray(): void {
    if (this.resp3) this.#raw3(0x5f);
    else this.#rawNull(0x2a);
  }

  #raw3(prefix: number): void {
    this.#ensure(3);
    this.#byte(prefix);
    this.#crlf();
  }

  #rawNull(prefix: number): void {
    this.#ensure(5);
    this.#byte(prefix);
    this.#byte(0x2d);
    this.#byte(0x31);
    this.#crlf();
  }

  array(n: number): void {
    this.#header(0x2a, n);
  }

  /** A map of `n` pairs (RESP2: an array of 2n elements). */
  map(n: number): void {
    if (this.resp3) this.#header(0x25, n);
    else this.#header(0x2a, n * 2);
  }

  set(n: number): void {
    this.#header(this.resp3 ? 0x7e : 0x2a, n);
  }

  /** An out-of-band message of `n` elements (RESP3 `>`; RESP2: an array), e.g. Pub/Sub. */
  push(n: number): void {
    this.#header(this.resp3 ? 0x3e : 0x2a, n);
  }

  double(value: number): void {
    const text = formatDouble(value);
    if (!this.resp3) {
      this.bulk(Buffer.from(text, 'latin1'));
      return;
    }
    this.#ensure(text.length + 3);
    this.#byte(0x2c);
    this.#ascii(text);
    this.#crlf();
  }

  boolean(value: boolean): void {
    if (!this.resp3) {
      this.integer(value ? 1 : 0);
      return;
    }
    this.#ensure(4);
    this.#byte(0x23);
    this.#byte(value ? 0x74 : 0x66);
    this.#crlf();
  }

  /** A verbatim string (RESP3 `=`, format `txt`), e.g. INFO. */
  verbatim(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    if (!this.resp3) {
      this.bulk(bytes);
      return;
    }
    this.#header(0x3d, bytes.length + 4);
    this.#ensure(4);
    this.#ascii('txt:');
    this.#bytes(bytes, 0, bytes.length);
  }

  /** Bytes already RESP-encoded. */
  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#chunk.set(bytes, this.#pos);
    this.#pos += bytes.length;
    this.#written += bytes.length;
  }
}
