/**
 * Reads a normal `_changes` reply (`{"results":[row, …],"last_seq":…}`) as it
 * streams in: each row's JSON text is handed out as soon as it is complete,
 * so a one-shot replication reads the whole feed in one request, with
 * backpressure, instead of paging through it with `limit` (which costs the
 * peer a `pending` count per page). Independent of line breaks: CouchDB puts
 * one row per line, PouchDB-server sends a single line.
 *
 * Everything outside the `results` array is kept (with the array emptied) and
 * parsed at the end, for `last_seq`.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

export class NormalFeedScanner {
  /** Text not yet consumed: the unfinished row, or nothing. */
  #buffer = '';
  /** Where scanning resumes in #buffer. */
  #pos = 0;
  /** 0: before the top object; 1: in it; 2: in an array member of it; >2: inside a row. */
  #depth = 0;
  #inString = false;
  /** Backslashes that ended the text dropped last time, while in a string (an escape may span pieces). */
  #carriedSlashes = 0;
  /** The last string seen directly in the top object (a member name, when a `:` follows). */
  #lastKey = '';
  /** The part of a top-level string that arrived in earlier pieces. */
  #keyHead: string | null = null;
  #inResults = false;
  #sawResults = false;
  /** Start of the current row in #buffer, or -1. */
  #rowStart = -1;
  /** The top object's text without the rows. */
  #outside = '';

  /** Feeds the next piece of text; returns the rows it completed, as JSON text. */
  push(text: string): string[] {
    const rows: string[] = [];
    const buf = this.#buffer + text;
    const n = buf.length;
    const carried = this.#carriedSlashes;
    this.#carriedSlashes = 0;
    let i = this.#pos;
    let keyStart = this.#keyHead === null ? -1 : 0;
    let outsideFrom = this.#inResults && this.#depth >= 2 ? -1 : i;
    while (i < n) {
      if (this.#inString) {
        const end = buf.indexOf('"', i);
        if (end < 0) {
          i = n;
          break;
        }
        let slashes = 0;
        let j = end - 1;
        for (; j >= 0 && buf.charCodeAt(j) === BACKSLASH; j--) slashes++;
        if (j < 0) slashes += carried;
        i = end + 1;
        if (slashes % 2 === 1) continue;
        this.#inString = false;
        if (keyStart >= 0) {
          this.#lastKey = (this.#keyHead ?? '') + buf.slice(keyStart, end);
          this.#keyHead = null;
          keyStart = -1;
        }
        continue;
      }
      const c = buf.charCodeAt(i);
      if (c === QUOTE) {
        this.#inString = true;
        if (this.#depth === 1) {
          keyStart = i + 1;
          this.#keyHead = '';
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        this.#depth++;
        if (this.#depth === 2 && c === OPEN_BRACKET && this.#lastKey === 'results') {
          // The `[` stays outside; the rows go out one by one.
          this.#outside += buf.slice(outsideFrom, i + 1);
          outsideFrom = -1;
          this.#inResults = true;
          this.#sawResults = true;
        } else if (this.#depth === 3 && this.#inResults) {
          this.#rowStart = i;
        }
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.#depth--;
        if (this.#depth === 2 && this.#inResults && this.#rowStart >= 0) {
          rows.push(buf.slice(this.#rowStart, i + 1));
          this.#rowStart = -1;
        } else if (this.#depth === 1 && this.#inResults) {
          this.#inResults = false;
          outsideFrom = i;
        }
      }
      i++;
    }
    if (outsideFrom >= 0) this.#outside += buf.slice(outsideFrom, n);
    if (keyStart >= 0) this.#keyHead = (this.#keyHead ?? '') + buf.slice(keyStart, n);
    if (this.#rowStart >= 0) {
      // Keep the unfinished row only.
      this.#buffer = buf.slice(this.#rowStart);
      this.#pos = n - this.#rowStart;
      this.#rowStart = 0;
    } else {
      if (this.#inString) {
        let j = n - 1;
        while (j >= 0 && buf.charCodeAt(j) === BACKSLASH) j--;
        this.#carriedSlashes = n - 1 - j + (j < 0 ? carried : 0);
      }
      this.#buffer = '';
      this.#pos = 0;
    }
    return rows;
  }

  /** The members outside `results` (e.g. `last_seq`) once the reply is complete; null if it was not a feed. */
  end(): Record<string, unknown> | null {
    if (!this.#sawResults || this.#depth !== 0 || this.#inString) return null;
    try {
      const parsed = JSON.parse(this.#outside) as unknown;
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : null;
    } catch {
      return null;
    }
  }
}
