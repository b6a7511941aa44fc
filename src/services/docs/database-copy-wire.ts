/**
 * A database copy on the wire (`GET /{db}/_doppel_copy`, read by a
 * follower's bootstrap): frames (`../frames.ts`) of a `header` (the seq and
 * counters of the snapshot, JSON), then per document the `attachment` bodies
 * its revisions refer to and one `doc` frame, then `end` (JSON, the number of
 * documents sent). A stream without its `end` frame was cut off.
 *
 * `doc`: `[id length u32][id]` `[leaf count u32]`, then per leaf
 * `[deleted u8][path length u32]` `([rev length u16][rev])…`
 * `[stored length u32][stored revision bytes]`.
 */
import type { CopiedDoc, CopiedRevision, CopyFrame, CopyHeader } from '../../engines/docs/database-copy.js';
import { FrameReader, kindsOf, type Frame } from '../frames.js';

export const CopyFrameKind = { Header: 1, Attachment: 2, Doc: 3, End: 4 } as const;
export type CopyFrameKind = (typeof CopyFrameKind)[keyof typeof CopyFrameKind];

export const DATABASE_COPY_CONTENT_TYPE = 'application/x-doppel-database-copy';

/** An attachment body is the largest payload. */
const MAX_FRAME_BYTES = 512 * 1024 * 1024;
/** The writer hands out its bytes once it holds this many. */
const CHUNK_BYTES = 256 * 1024;

/** Encodes frames into chunks of about `CHUNK_BYTES`. */
export class CopyWriter {
  #buffer = Buffer.allocUnsafe(CHUNK_BYTES * 2);
  #at = 0;

  get full(): boolean {
    return this.#at >= CHUNK_BYTES;
  }

  /** The bytes so far; the writer starts over. */
  take(): Buffer {
    // Handed out, not copied: the writer continues in a new buffer.
    const out = this.#buffer.subarray(0, this.#at);
    this.#buffer = Buffer.allocUnsafe(CHUNK_BYTES * 2);
    this.#at = 0;
    return out;
  }

  header(header: CopyHeader): void {
    this.#frame(CopyFrameKind.Header, Buffer.byteLength(JSON.stringify(header)), () =>
      this.#string(JSON.stringify(header)),
    );
  }

  /** `unreadable`: documents left out because their stored rows could not be read back. */
  end(docs: number, unreadable: number): void {
    const json = JSON.stringify({ docs, unreadable });
    this.#frame(CopyFrameKind.End, Buffer.byteLength(json), () => this.#string(json));
  }

  attachment(digest: string, bytes: Buffer): void {
    this.#frame(CopyFrameKind.Attachment, 2 + Buffer.byteLength(digest) + bytes.length, () => {
      this.#u16(Buffer.byteLength(digest));
      this.#string(digest);
      this.#bytes(bytes);
    });
  }

  frame(f: CopyFrame): void {
    switch (f.kind) {
      case 'header':
        this.header(f.header);
        return;
      case 'attachment':
        this.attachment(f.digest, f.bytes);
        return;
      case 'doc':
        this.doc(f.doc);
        return;
      case 'end':
        this.end(f.docs, f.unreadable);
        return;
    }
  }

  doc(doc: CopiedDoc): void {
    let length = 4 + Buffer.byteLength(doc.id) + 4;
    for (const leaf of doc.leaves) {
      length += 1 + 4 + 4 + leaf.stored.length;
      for (const rev of leaf.path) length += 2 + Buffer.byteLength(rev);
    }
    this.#frame(CopyFrameKind.Doc, length, () => {
      this.#u32(Buffer.byteLength(doc.id));
      this.#string(doc.id);
      this.#u32(doc.leaves.length);
      for (const leaf of doc.leaves) {
        this.#buffer[this.#at++] = leaf.deleted ? 1 : 0;
        this.#u32(leaf.path.length);
        for (const rev of leaf.path) {
          this.#u16(Buffer.byteLength(rev));
          this.#string(rev);
        }
        this.#u32(leaf.stored.length);
        this.#bytes(leaf.stored);
      }
    });
  }

  #frame(kind: CopyFrameKind, length: number, write: () => void): void {
    const need = 5 + length;
    if (this.#at + need > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#at + need));
      this.#buffer.copy(grown, 0, 0, this.#at);
      this.#buffer = grown;
    }
    const start = this.#at;
    this.#buffer[this.#at++] = kind;
    this.#u32(length);
    write();
    if (this.#at - start !== need)
      throw new Error(`copy frame ${kind}: wrote ${this.#at - start} of ${need}`);
  }

  #u16(n: number): void {
    if (n > 0xffff) throw new Error(`copy frame: ${n} does not fit in 16 bits`);
    this.#at = this.#buffer.writeUInt16BE(n, this.#at);
  }

  #u32(n: number): void {
    this.#at = this.#buffer.writeUInt32BE(n, this.#at);
  }

  #string(text: string): void {
    this.#at += this.#buffer.write(text, this.#at, 'utf8');
  }

  #bytes(bytes: Buffer): void {
    this.#at += bytes.copy(this.#buffer, this.#at);
  }
}

/**
 * The frames of a copy stream's body, as many as each chunk completes; throws
 * on bytes that are not a copy, or on a frame left incomplete at the end.
 */
export async function* copyFrames(body: AsyncIterable<Buffer>): AsyncGenerator<readonly CopyFrame[]> {
  const reader = new CopyReader();
  for await (const chunk of body) {
    reader.feed(chunk);
    const frames: CopyFrame[] = [];
    for (let f = reader.next(); f !== undefined; f = reader.next()) frames.push(f);
    if (frames.length > 0) yield frames;
  }
  if (reader.buffered > 0) throw new Error('database copy: cut off inside a frame');
}

/** Decodes a copy stream; `next()` throws on bytes that are not one. */
export class CopyReader {
  readonly #frames = new FrameReader(kindsOf(CopyFrameKind), MAX_FRAME_BYTES);

  feed(chunk: Buffer): void {
    this.#frames.feed(chunk);
  }

  /** Bytes received and not yet decoded. */
  get buffered(): number {
    return this.#frames.buffered;
  }

  next(): CopyFrame | undefined {
    const f = this.#frames.next();
    return f === undefined ? undefined : decodeFrame(f);
  }
}

function decodeFrame(f: Frame<CopyFrameKind>): CopyFrame {
  const p = f.payload;
  switch (f.kind) {
    case CopyFrameKind.Header: {
      const h = JSON.parse(p.toString('utf8')) as Partial<CopyHeader>;
      if (typeof h.seq !== 'number' || typeof h.doc_count !== 'number' || typeof h.doc_del_count !== 'number')
        throw new Error('database copy: broken header');
      return {
        kind: 'header',
        header: { seq: h.seq, doc_count: h.doc_count, doc_del_count: h.doc_del_count },
      };
    }
    case CopyFrameKind.End: {
      const e = JSON.parse(p.toString('utf8')) as { docs?: unknown; unreadable?: unknown };
      if (typeof e.docs !== 'number' || typeof e.unreadable !== 'number')
        throw new Error('database copy: broken end');
      return { kind: 'end', docs: e.docs, unreadable: e.unreadable };
    }
    case CopyFrameKind.Attachment: {
      const length = p.readUInt16BE(0);
      return { kind: 'attachment', digest: p.toString('utf8', 2, 2 + length), bytes: p.subarray(2 + length) };
    }
    case CopyFrameKind.Doc:
      return { kind: 'doc', doc: decodeDoc(p) };
  }
}

function decodeDoc(p: Buffer): CopiedDoc {
  let at = 0;
  const take = (n: number): number => {
    if (at + n > p.length) throw new Error('database copy: a doc frame is cut short');
    const from = at;
    at += n;
    return from;
  };
  const idLength = p.readUInt32BE(take(4));
  const idAt = take(idLength);
  const id = p.toString('utf8', idAt, idAt + idLength);
  const count = p.readUInt32BE(take(4));
  const leaves: CopiedRevision[] = [];
  for (let i = 0; i < count; i++) {
    const deleted = p[take(1)] === 1;
    const pathLength = p.readUInt32BE(take(4));
    if (pathLength === 0) throw new Error(`database copy: ${id} has a leaf without a revision`);
    const path: string[] = [];
    for (let j = 0; j < pathLength; j++) {
      const revLength = p.readUInt16BE(take(2));
      const revAt = take(revLength);
      path.push(p.toString('utf8', revAt, revAt + revLength));
    }
    const storedLength = p.readUInt32BE(take(4));
    const storedAt = take(storedLength);
    leaves.push({ path, deleted, stored: p.subarray(storedAt, storedAt + storedLength) });
  }
  if (at !== p.length) throw new Error(`database copy: ${id}'s frame has trailing bytes`);
  return { id, leaves };
}
