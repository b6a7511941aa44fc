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
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = kind;
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, FRAME_HEADER_BYTES);
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
    const head = this.#chunks[0].length >= FRAME_HEADER_BYTES ? this.#chunks[0] : this.#merge();
    const kind = head[0];
    const length = head.readUInt32BE(1);
    if (!this.#isKind(kind) || length > this.#maxBytes) {
      throw new Error(`broken stream: frame kind ${kind}, length ${length}`);
    }
    const total = FRAME_HEADER_BYTES + length;
    if (this.#buffered < total) return undefined;
    const first = this.#chunks[0].length >= total ? this.#chunks[0] : this.#merge();
    const payload = first.subarray(FRAME_HEADER_BYTES, total);
    if (first.length === total) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(total);
    this.#buffered -= total;
    return { kind, payload };
  }

  #merge(): Buffer {
    const merged = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [merged];
    return merged;
  }
}

/** A kind check for `FrameReader` from a table of kinds. */
export function kindsOf<K extends number>(table: Readonly<Record<string, K>>): (kind: number) => kind is K {
  const kinds = new Set<number>(Object.values(table));
  return (kind: number): kind is K => kinds.has(kind);
}
