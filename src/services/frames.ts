/**
 * Length-prefixed frames, `[kind u8][length u32 BE][payload]`: the byte
 * streams Doppel nodes send each other (a node replica's sync, a follower's
 * database copy). Each stream has its own set of kinds.
 */

export const FRAME_HEADER_BYTES = 5;

export interface Frame<K extends number = number> {
  readonly kind: K;
  readonly payload: Buffer;
}

export function frame(kind: number, payload: Buffer): Buffer {
  const out = frameOf(kind, payload.length);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** A frame whose header is written and whose `length` payload bytes, from `FRAME_HEADER_BYTES`, are the caller's to fill. */
export function frameOf(kind: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  out[0] = kind;
  out.writeUInt32BE(length, 1);
  return out;
}

/** Splits received chunks into frames of the kinds `isKind` accepts, each at most `maxBytes`. */
export class FrameReader<K extends number> {
  readonly #isKind: (kind: number) => kind is K;
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(isKind: (kind: number) => kind is K, maxBytes: number) {
    this.#isKind = isKind;
    this.#maxBytes = maxBytes;
  }

  feed(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /** The next complete frame, or undefined until more bytes arrive; throws on a broken header. */
  next(): Frame<K> | undefined {
    if (this.#buffered < FRAME_HEADER_BYTES) return undefined;
    const head = this.#chunks[0].length >= FRAME_HEADER_BYTES ? this.#chunks[0] : this.#peekHeader();
    const kind = head[0];
    const length = head.readUInt32BE(1);
    if (!this.#isKind(kind) || length > this.#maxBytes) {
      throw new Error(`broken stream: frame kind ${kind}, length ${length}`);
    }
    const total = FRAME_HEADER_BYTES + length;
    if (this.#buffered < total) return undefined;
    this.#buffered -= total;
    const first = this.#chunks[0];
    if (first.length >= total) {
      if (first.length === total) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(total);
      return { kind, payload: first.subarray(FRAME_HEADER_BYTES, total) };
    }
    // Only a frame that spans chunks is copied, never the chunks around it.
    return { kind, payload: this.#take(total).subarray(FRAME_HEADER_BYTES) };
  }

  /** The header's bytes when the first chunk holds fewer, without consuming them. */
  #peekHeader(): Buffer {
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    let at = 0;
    for (const chunk of this.#chunks) {
      at += chunk.copy(out, at, 0, Math.min(chunk.length, FRAME_HEADER_BYTES - at));
      if (at === FRAME_HEADER_BYTES) break;
    }
    return out;
  }

  /** Removes the next `n` bytes, which span chunks, as one buffer. */
  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      const part = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, part);
      at += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

/** A kind check for `FrameReader` from a table of kinds. */
export function kindsOf<K extends number>(table: Readonly<Record<string, K>>): (kind: number) => kind is K {
  const kinds = new Set<number>(Object.values(table));
  return (kind: number): kind is K => kinds.has(kind);
}
