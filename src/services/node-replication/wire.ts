/**
 * The byte stream a Doppel primary sends a Doppel replica after `PSYNC`
 * (`+FULLRESYNC` or `+CONTINUE`): frames of `[kind u8][length u32 BE][payload]`.
 *
 * A full sync sends `table` / `rows` frames of one consistent snapshot, the
 * server admin (`admin`), then `end` with the snapshot's LSN. The journal
 * follows as `entry` frames (the primary's stored journal frame, byte for
 * byte), each document entry preceded by an `attachment` frame per
 * attachment body it references, `message` frames (Pub/Sub) where they were
 * published between entries, to replicas that announced `capa doppel-messages`,
 * and `heartbeat` frames while idle. The replica answers with RESP
 * `REPLCONF ACK <lsn>` commands.
 */
import { Packr } from 'msgpackr';
import type { PublishedMessage } from './contracts.js';
import {
  frame,
  FRAME_HEADER_BYTES,
  frameOf,
  FrameReader as GenericFrameReader,
  kindsOf,
  type Frame as GenericFrame,
} from '../frames.js';

export { frame, FRAME_HEADER_BYTES };

export const FrameKind = {
  Table: 1,
  Rows: 2,
  Admin: 3,
  End: 4,
  Entry: 16,
  Attachment: 17,
  Heartbeat: 18,
  Message: 19,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** A frame larger than this is a broken stream (an attachment body is the largest payload). */
export const MAX_FRAME_BYTES = 512 * 1024 * 1024;

/** Plain msgpack for structured rows and the admin record: no shared structures on the wire. */
export const wirePackr = new Packr({ useRecords: false, mapsAsObjects: true });

export type Frame = GenericFrame<FrameKind>;

export function entryFrame(lsn: number, journalFrame: Buffer): Buffer {
  const out = frameOf(FrameKind.Entry, 8 + journalFrame.length);
  out.writeDoubleBE(lsn, FRAME_HEADER_BYTES);
  journalFrame.copy(out, FRAME_HEADER_BYTES + 8);
  return out;
}

export function parseEntry(payload: Buffer): { readonly lsn: number; readonly journalFrame: Buffer } {
  return { lsn: payload.readDoubleBE(0), journalFrame: payload.subarray(8) };
}

export function attachmentFrame(digest: string, bytes: Buffer): Buffer {
  const name = Buffer.from(digest, 'utf8');
  const payload = Buffer.allocUnsafe(2 + name.length + bytes.length);
  payload.writeUInt16BE(name.length, 0);
  name.copy(payload, 2);
  bytes.copy(payload, 2 + name.length);
  return frame(FrameKind.Attachment, payload);
}

export function parseAttachment(payload: Buffer): { readonly digest: string; readonly bytes: Buffer } {
  const length = payload.readUInt16BE(0);
  return { digest: payload.toString('utf8', 2, 2 + length), bytes: payload.subarray(2 + length) };
}

/** `[shard u8][channel length u32][channel][message]`. */
export function messageFrame({ channel, message, shard }: PublishedMessage): Buffer {
  const out = frameOf(FrameKind.Message, 5 + channel.length + message.length);
  out[FRAME_HEADER_BYTES] = shard ? 1 : 0;
  out.writeUInt32BE(channel.length, FRAME_HEADER_BYTES + 1);
  channel.copy(out, FRAME_HEADER_BYTES + 5);
  message.copy(out, FRAME_HEADER_BYTES + 5 + channel.length);
  return out;
}

export function parseMessage(payload: Buffer): PublishedMessage {
  const length = payload.readUInt32BE(1);
  if (5 + length > payload.length) throw new Error('a message frame shorter than its channel');
  return {
    shard: payload[0] === 1,
    channel: Buffer.from(payload.subarray(5, 5 + length)),
    message: Buffer.from(payload.subarray(5 + length)),
  };
}

export function numberFrame(kind: typeof FrameKind.End | typeof FrameKind.Heartbeat, value: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeDoubleBE(value, 0);
  return frame(kind, payload);
}

/** Packs rows as `[key length u32][key][value length u32][value]…`. */
export class RowsWriter {
  #buffer = Buffer.allocUnsafe(256 * 1024);
  #at = 0;
  count = 0;

  get bytes(): number {
    return this.#at;
  }

  add(key: Buffer, value: Buffer): void {
    const need = 8 + key.length + value.length;
    if (this.#at + need > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#at + need));
      this.#buffer.copy(grown, 0, 0, this.#at);
      this.#buffer = grown;
    }
    this.#at = this.#buffer.writeUInt32BE(key.length, this.#at);
    this.#at += key.copy(this.#buffer, this.#at);
    this.#at = this.#buffer.writeUInt32BE(value.length, this.#at);
    this.#at += value.copy(this.#buffer, this.#at);
    this.count++;
  }

  /** The rows frame so far; the writer starts over. */
  take(): Buffer {
    const out = frame(FrameKind.Rows, this.#buffer.subarray(0, this.#at));
    this.#at = 0;
    this.count = 0;
    return out;
  }
}

export function* readRows(payload: Buffer): Generator<[Buffer, Buffer]> {
  let at = 0;
  while (at < payload.length) {
    const keyLength = payload.readUInt32BE(at);
    const key = payload.subarray(at + 4, at + 4 + keyLength);
    at += 4 + keyLength;
    const valueLength = payload.readUInt32BE(at);
    const value = payload.subarray(at + 4, at + 4 + valueLength);
    at += 4 + valueLength;
    yield [key, value];
  }
}

/** Splits a replication stream into frames. */
export class FrameReader extends GenericFrameReader<FrameKind> {
  constructor() {
    super(kindsOf(FrameKind), MAX_FRAME_BYTES);
  }
}
