import { Worker } from 'node:worker_threads';
import { parseBulkDocsRequest, type BulkDocsRequest } from '../../engines/docs/bulk-docs-request.js';
import type { AttachmentInput, DocEdit } from '../../engines/docs/doc-input.js';
import { DoppelError, type ErrorKind } from '../../errors.js';

export interface ParseRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly maxDocumentBytes: number;
}

export type ParseReply =
  | { readonly id: number; readonly ok: true; readonly newEdits: boolean; readonly edits: DocEdit[] }
  | {
      readonly id: number;
      readonly ok: false;
      readonly kind: ErrorKind;
      readonly reason: string;
      readonly errorName: string | undefined;
    };

/** Bodies smaller than this are parsed inline: a thread hop costs more than it saves. */
const INLINE_BYTES = 64 * 1024;

/**
 * Parses large `_bulk_docs` bodies on a worker thread, so JSON decoding,
 * validation and revision hashing overlap with the main thread's writes.
 * Small bodies, and every body when workers cannot start, are parsed inline.
 */
export class BulkDocsParser {
  readonly #maxDocumentBytes: number;
  readonly #pending = new Map<
    number,
    { resolve: (r: BulkDocsRequest) => void; reject: (e: unknown) => void }
  >();
  #worker: Worker | undefined;
  #nextId = 1;

  constructor(options: { maxDocumentBytes: number; useWorker: boolean }) {
    this.#maxDocumentBytes = options.maxDocumentBytes;
    if (options.useWorker) this.#start();
  }

  #start(): void {
    const worker = new Worker(new URL('./parse-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (reply: ParseReply) => this.#settle(reply));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#fail(new Error('the parse worker exited'));
    });
    this.#worker = worker;
  }

  parse(bytes: Buffer): Promise<BulkDocsRequest> {
    const worker = this.#worker;
    if (worker === undefined || bytes.length < INLINE_BYTES) {
      return Promise.resolve().then(() => parseBulkDocsRequest(bytes, this.#maxDocumentBytes));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, bytes, maxDocumentBytes: this.#maxDocumentBytes } satisfies ParseRequest);
    });
  }

  #settle(reply: ParseReply): void {
    const waiter = this.#pending.get(reply.id);
    if (waiter === undefined) return;
    this.#pending.delete(reply.id);
    if (reply.ok) waiter.resolve({ newEdits: reply.newEdits, edits: reply.edits.map(rehydrate) });
    else
      waiter.reject(
        new DoppelError(
          reply.kind,
          reply.reason,
          reply.errorName === undefined ? {} : { errorName: reply.errorName },
        ),
      );
  }

  #fail(err: unknown): void {
    for (const waiter of this.#pending.values()) waiter.reject(err);
    this.#pending.clear();
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays; attachments need Buffers back. */
function rehydrate(edit: DocEdit): DocEdit {
  if (edit.attachments === undefined) return edit;
  const attachments = new Map<string, AttachmentInput>();
  for (const [name, att] of edit.attachments) {
    attachments.set(
      name,
      att.kind === 'data'
        ? { ...att, bytes: Buffer.from(att.bytes.buffer, att.bytes.byteOffset, att.bytes.byteLength) }
        : att,
    );
  }
  return { ...edit, attachments };
}
