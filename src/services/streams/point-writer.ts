/**
 * The line protocol write path: parse, turn points into documents, and write them to the
 * bucket in one storage transaction whose one journal entry is queued for every stream
 * of the bucket in that same transaction. Valid lines of a request with bad ones are
 * still stored and queued (InfluxDB drops them from replication; Doppel does not).
 */
import { gunzip as gunzipCallback } from 'node:zlib';
import { promisify } from 'node:util';
import type { DocumentStore, PointWrite } from '../../engines/docs/document-store.js';
import type { JournalEntry } from '../../engines/journal/journal-entry.js';
import {
  nowNs,
  parseLineProtocol,
  type LineError,
  type Precision,
} from '../../engines/points/line-protocol.js';
import { mergePointBodies, pointBody, pointDocId } from '../../engines/points/point-document.js';
import { badRequest, DoppelError, ErrorKind, notFound } from '../../errors.js';
import { requireDbMember, type SecurityObject, type UserContext } from '../auth/user-context.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { QueueEvent, StreamService } from './stream-service.js';

const gunzip = promisify(gunzipCallback);

export interface WriteOutcome {
  readonly written: number;
  readonly errors: readonly LineError[];
}

export class PointWriter {
  readonly #docs: DocumentStore;
  readonly #streams: StreamService;
  readonly #metrics: NodeMetrics;
  readonly #maxBodyBytes: number;

  constructor(docs: DocumentStore, streams: StreamService, metrics: NodeMetrics, maxBodyBytes: number) {
    this.#docs = docs;
    this.#streams = streams;
    this.#metrics = metrics;
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** The request body as text, gunzipped when its `Content-Encoding` says so (within the body limit). */
  async decode(body: Buffer, contentEncoding: string | undefined): Promise<string> {
    const encoding = (contentEncoding ?? 'identity').trim().toLowerCase();
    if (encoding === 'identity' || encoding === '') return body.toString('utf8');
    if (encoding !== 'gzip')
      throw new DoppelError(ErrorKind.UnsupportedMediaType, `unsupported Content-Encoding: ${encoding}`);
    try {
      return (await gunzip(body, { maxOutputLength: this.#maxBodyBytes })).toString('utf8');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE')
        throw new DoppelError(ErrorKind.TooLarge, 'the decompressed body is too large');
      throw badRequest('the body is not valid gzip');
    }
  }

  async write(ctx: UserContext, bucket: string, text: string, precision: Precision): Promise<WriteOutcome> {
    if (!this.#docs.exists(bucket)) throw notFound(`bucket "${bucket}" not found`);
    const record = this.#docs.record(bucket);
    if (record.kind !== 'bucket') throw notFound(`bucket "${bucket}" not found`);
    requireDbMember(ctx, record.security as SecurityObject | null);
    const { points, errors } = parseLineProtocol(text, precision, nowNs(precision));
    if (errors.length > 0) this.#metrics.lineErrors.inc({ bucket }, errors.length);
    if (points.length === 0) return { written: 0, errors };
    const writes: PointWrite[] = new Array<PointWrite>(points.length);
    let lines = '';
    for (let i = 0; i < points.length; i++) {
      const point = points[i];
      writes[i] = { id: pointDocId(point), body: pointBody(point) };
      lines += `${point.line}\n`;
    }
    const bytes = Buffer.byteLength(lines);
    const events: QueueEvent[] = [];
    await this.#docs.writePoints(bucket, writes, {
      merge: mergePointBodies,
      lines,
      count: points.length,
      inTransaction: (lsn, uid) => {
        events.length = 0;
        this.#streams.queueEntry(bucket, uid, lsn, bytes, points.length, events);
      },
    });
    this.#streams.countQueued(events);
    this.#metrics.pointsWritten.inc({ bucket }, points.length);
    return { written: points.length, errors };
  }

  /**
   * A node replica applies its primary's points write: the entry's lines (ns
   * precision, as journaled) are parsed again into the same documents. Runs
   * inside the replay's write; the replica's own streams queue nothing (its
   * primary forwards the points).
   */
  replay(entry: Extract<JournalEntry, { k: 'points' }>, ts: number): void {
    const { points, errors } = parseLineProtocol(entry.lines, 'ns', '0');
    if (errors.length > 0)
      throw new Error(`journaled points of ${entry.db} do not parse: ${errors[0]?.message}`);
    const writes = points.map((point) => ({ id: pointDocId(point), body: pointBody(point) }));
    this.#docs.replayPoints(entry, writes, mergePointBodies, ts);
  }
}
