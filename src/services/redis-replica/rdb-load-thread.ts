/**
 * Loads a Redis primary's RDB on a worker thread. The load is one storage
 * write that may take minutes for a large dataset; on the main thread it
 * would hold the event loop, and with it every client, every HTTP request
 * and the link to the primary (which drops a replica silent for its
 * repl-timeout). The worker writes through the same LMDB environment; the
 * main thread's readers see the old keyspace until that write commits.
 */
import { Worker } from 'node:worker_threads';
import type { KeyspaceCounters } from '../../engines/kv/keyspace.js';
import { RdbError } from '../../engines/kv/rdb/rdb-error.js';
import type { RdbLoadSummary, RdbWarning } from '../../engines/kv/rdb/rdb-loader.js';
import type { IdentityRecord } from '../node-replication/node-identity.js';

export interface RdbLoadRequest {
  readonly storagePath: string;
  readonly spoolPath: string;
  /** Written in the same write: the node's history starts anew (see `Keyspace.replaceAll`). */
  readonly newHistory: Pick<IdentityRecord, 'replid' | 'replid2' | 'secondOffset'>;
}

export type RdbLoadMessage =
  | { readonly kind: 'progress'; readonly bytesRead: number }
  | { readonly kind: 'warning'; readonly message: string; readonly detail: { db: number; key: string } }
  | { readonly kind: 'done'; readonly summary: RdbLoadSummary; readonly counters: KeyspaceCounters }
  | { readonly kind: 'failed'; readonly name: string; readonly message: string };

export interface RdbLoadEvents {
  readonly warn: RdbWarning;
  readonly progress: (bytesRead: number) => void;
}

/**
 * A worker started ahead (at the start of a transfer, so that loading its
 * modules overlaps the transfer), waiting for one `load`.
 */
export class RdbLoadThread {
  readonly #worker = new Worker(new URL('./rdb-load-worker.js', import.meta.url));
  #used = false;
  /** Why the thread failed or ended, once it did. */
  #ended: Error | null = null;
  #outcome: RdbLoadMessage | null = null;
  #settle: (() => void) | null = null;

  constructor() {
    this.#worker.on('error', (err) => (this.#ended ??= err));
    this.#worker.once('exit', (code) => {
      this.#ended ??= new Error(`the RDB load thread ended (exit code ${code}) without a result`);
      this.#settle?.();
    });
  }

  /**
   * Resolves once the load committed, with the counters the main thread's
   * keyspace must take over; rejects (RdbError for a bad file) when it wrote nothing.
   */
  load(
    request: RdbLoadRequest,
    events: RdbLoadEvents,
  ): Promise<{ summary: RdbLoadSummary; counters: KeyspaceCounters }> {
    if (this.#used) throw new Error('RdbLoadThread: one load per thread');
    this.#used = true;
    const worker = this.#worker;
    return new Promise((resolve, reject) => {
      // Settled at exit: the worker has closed its handle on the environment by then.
      this.#settle = () => {
        const outcome = this.#outcome;
        if (outcome?.kind === 'done') resolve({ summary: outcome.summary, counters: outcome.counters });
        else if (outcome?.kind === 'failed') {
          reject(outcome.name === 'RdbError' ? new RdbError(outcome.message) : new Error(outcome.message));
        } else reject(this.#ended ?? new Error('the RDB load thread ended without a result'));
      };
      if (this.#ended !== null) {
        this.#settle();
        return;
      }
      worker.on('message', (message: RdbLoadMessage) => {
        if (message.kind === 'progress') events.progress(message.bytesRead);
        else if (message.kind === 'warning') events.warn(message.message, message.detail);
        else this.#outcome = message;
      });
      worker.postMessage(request);
    });
  }

  /** Ends a thread that was given no load (the transfer failed). */
  discard(): void {
    if (!this.#used) void this.#worker.terminate();
  }
}
