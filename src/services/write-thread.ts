/**
 * A long load run on a worker thread: loading a Redis RDB (many short writes
 * into staged tables), or restoring a Doppel node's snapshot (one storage
 * write, during which the main thread's own writes wait, see
 * `Storage.whileWritingElsewhere`). Either may take minutes; on the main
 * thread it would hold the event loop, and with it every client, every HTTP
 * request and the replica link. The worker opens the same LMDB environment
 * (lmdb-js shares it between threads), loads, reports, closes its handle and
 * ends; the main thread's readers see the old data until the load lands.
 *
 * Both sides are here: `WriteThread` (main) and `serveOneWrite` (worker).
 */
import { once } from 'node:events';
import { parentPort, Worker, type WorkerOptions } from 'node:worker_threads';

/** Slots of the flags shared with the worker. */
const CANCEL = 0;
const TURN_WANTED = 1;

/** What the worker receives: the request, and flags the main thread sets (cancel, turn wanted). */
interface Envelope<Request> {
  readonly request: Request;
  readonly flags: Int32Array;
}

type Message<Event, Result> =
  | { readonly kind: 'event'; readonly event: Event }
  | { readonly kind: 'done'; readonly result: Result }
  | { readonly kind: 'failed'; readonly name: string; readonly message: string };

/**
 * A worker started ahead (its module loading takes ~100 ms and can overlap a
 * transfer), waiting for one `run`.
 */
export class WriteThread<Request, Event, Result> {
  readonly #worker: Worker;
  /** Turns the name and message of an error thrown in the worker into the error to reject with. */
  readonly #errorFor: (name: string, message: string) => Error;
  #used = false;
  /** Why the thread failed or ended, once it did. */
  #ended: Error | null = null;
  #outcome: Message<Event, Result> | null = null;
  #settle: (() => void) | null = null;
  #flags: Int32Array | null = null;

  /** Resolves once the thread ended (after its run, or after `discard`). */
  readonly exited: Promise<void>;

  /** `options`: the worker's `workerData` (and what it transfers). */
  constructor(
    script: URL,
    errorFor: (name: string, message: string) => Error = (_, m) => new Error(m),
    options: Pick<WorkerOptions, 'workerData' | 'transferList'> = {},
  ) {
    this.#worker = new Worker(script, options);
    this.#errorFor = errorFor;
    this.#worker.on('error', (err) => (this.#ended ??= err));
    this.exited = once(this.#worker, 'exit').then(() => undefined);
    this.#worker.once('exit', (code) => {
      this.#ended ??= new Error(
        `the ${script.pathname.split('/').pop()} thread ended (exit code ${code}) without a result`,
      );
      this.#settle?.();
    });
  }

  /**
   * Resolves once the worker's write committed and it closed its handle; rejects when it
   * wrote nothing. Aborting `cancel` makes the worker give up its write at its next check.
   */
  run(request: Request, onEvent: (event: Event) => void, cancel?: AbortSignal): Promise<Result> {
    if (this.#used) throw new Error('WriteThread: one run per thread');
    this.#used = true;
    return new Promise((resolve, reject) => {
      const flags = (this.#flags = new Int32Array(new SharedArrayBuffer(8)));
      const onCancel = (): void => {
        Atomics.store(flags, CANCEL, 1);
      };
      // Settled at exit: the worker has closed its handle on the environment by then.
      this.#settle = () => {
        // The signal may outlive this run (a replica link's, across its full syncs).
        cancel?.removeEventListener('abort', onCancel);
        const outcome = this.#outcome;
        if (outcome?.kind === 'done') resolve(outcome.result);
        else if (outcome?.kind === 'failed') {
          reject(
            outcome.name === 'WriteCancelled'
              ? new WriteCancelled()
              : this.#errorFor(outcome.name, outcome.message),
          );
        } else reject(this.#ended ?? new Error('the write thread ended without a result'));
      };
      if (this.#ended !== null) {
        this.#settle();
        return;
      }
      this.#worker.on('message', (message: Message<Event, Result>) => {
        if (message.kind === 'event') onEvent(message.event);
        else this.#outcome = message;
      });
      cancel?.addEventListener('abort', onCancel, { once: true });
      if (cancel?.aborted === true) onCancel();
      this.#worker.postMessage({ request, flags } satisfies Envelope<Request>);
    });
  }

  /** Asks a worker that writes in steps to end its current one early (see `WriteThreadContext.turnWanted`). */
  wantTurn(): void {
    if (this.#flags !== null) Atomics.store(this.#flags, TURN_WANTED, 1);
  }

  /** Ends a thread that was given nothing to do (the transfer failed). */
  discard(): void {
    if (!this.#used) void this.#worker.terminate();
  }
}

/** Thrown inside the worker's write once the main thread cancelled it: the write is abandoned. */
export class WriteCancelled extends Error {
  override readonly name = 'WriteCancelled';
  constructor() {
    super('cancelled: the node is shutting down');
  }
}

/** A write's progress is passed on at most this often. */
const PROGRESS_EVERY_MS = 250;

/** What `body` gets besides its request. */
export interface WriteThreadContext<Event> {
  readonly emit: (event: Event) => void;
  /**
   * Call it often inside the write: throws `WriteCancelled` once the main thread
   * cancelled, and passes `progress()`'s event on at most every 250 ms.
   */
  readonly whileWriting: (progress: () => Event) => void;
  /** Whether the main thread asked for a turn (`wantTurn`) since the last call. */
  readonly turnWanted: () => boolean;
}

/**
 * The worker's side: waits for the request, runs `body` (which opens and
 * closes its own storage) and reports its result or what it threw.
 */
export async function serveOneWrite<Request, Event, Result>(
  body: (request: Request, context: WriteThreadContext<Event>) => Promise<Result>,
): Promise<void> {
  const port = parentPort!;
  const post = (message: Message<Event, Result>): void => port.postMessage(message);
  const [{ request, flags }] = (await once(port, 'message')) as [Envelope<Request>];
  let lastProgress = 0;
  const context: WriteThreadContext<Event> = {
    emit: (event) => post({ kind: 'event', event }),
    whileWriting: (progress) => {
      if (Atomics.load(flags, CANCEL) !== 0) throw new WriteCancelled();
      const now = Date.now();
      if (now - lastProgress < PROGRESS_EVERY_MS) return;
      lastProgress = now;
      post({ kind: 'event', event: progress() });
    },
    turnWanted: () => Atomics.exchange(flags, TURN_WANTED, 0) !== 0,
  };
  try {
    post({ kind: 'done', result: await body(request, context) });
  } catch (err) {
    const { name, message } = err instanceof Error ? err : new Error(String(err));
    post({ kind: 'failed', name, message });
  }
}
