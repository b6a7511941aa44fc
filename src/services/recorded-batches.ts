/**
 * A load split over two threads: a decoder reads the input and records its
 * rows (`Storage.record`) in batches, and the writer, holding the write
 * transaction, replays them (`Storage.replay`) as they come. The writer takes
 * batches synchronously — it is inside a transaction and cannot await — so
 * they travel on a MessagePort read with `receiveMessageOnPort`, with shared
 * counters to sleep on (`Atomics.wait`) until the next one is posted. The
 * decoder stays at most `MAX_IN_FLIGHT` batches ahead (memory bound).
 *
 * The main thread starts both threads at once (`startDecoder` beside the
 * writer's `WriteThread`), so that their modules load together, and hands the
 * writer its end of the channel; the writer sends the decoder its request.
 * Three sides, all here: `startDecoder` (main), `RecordedBatches` (writer),
 * `sendRecordedBatches` (decoder).
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import type { RecordedWrites } from '../storage/recorded-writes.js';

/** Slots of the counters shared by the three threads. */
const POSTED = 0;
const TAKEN = 1;
/** Set by the writer when it stops reading. */
const STOP = 2;
/** Set by the main thread once the decoder's thread ended. */
const ENDED = 3;
const MAX_IN_FLIGHT = 16;
/** How long the decoder sleeps at once while the writer is behind (it rechecks `STOP`). */
const BACKOFF_WAIT_MS = 50;
/** How often `waiting` looks (a transfer may leave the writer waiting for minutes). */
const WAITING_POLL_MS = 10;

export type BatchMessage<Note, Done> =
  | { readonly kind: 'writes'; readonly writes: RecordedWrites; readonly notes: readonly Note[] }
  | { readonly kind: 'done'; readonly result: Done }
  | { readonly kind: 'failed'; readonly name: string; readonly message: string };

/** One end of a decoder's channel: the writer's (it travels to the writer's thread), or the decoder's. */
export interface DecoderLink {
  readonly port: MessagePort;
  readonly counters: Int32Array;
}

/** A decoder thread started ahead, waiting for its request from the writer. */
export interface StartedDecoder {
  /** For the writer's thread (transfer `link.port`). */
  readonly link: DecoderLink;
  /** Ends the decoder's thread whatever it does (once the writer is done with it, or never started). */
  stop(): void;
}

/** The main thread's side: starts the decoder (`script`) for a writer that is starting too. */
export function startDecoder(script: URL): StartedDecoder {
  const { port1, port2 } = new MessageChannel();
  const counters = new Int32Array(new SharedArrayBuffer(16));
  const data: DecoderLink = { port: port2, counters };
  const worker = new Worker(script, { workerData: data, transferList: [port2] });
  const ended = (): void => {
    Atomics.store(counters, ENDED, 1);
    Atomics.notify(counters, POSTED);
  };
  // Its errors reach the writer as a failure message, or as `ENDED` without one.
  worker.on('error', ended);
  worker.once('exit', ended);
  return {
    link: { port: port1, counters },
    stop: () => void worker.terminate(),
  };
}

/** The writer's side: sends the decoder `request` and takes its batches. */
export class RecordedBatches<Request, Note, Done> {
  readonly #port: MessagePort;
  readonly #counters: Int32Array;

  constructor(link: DecoderLink, request: Request) {
    this.#port = link.port;
    this.#counters = link.counters;
    this.#port.postMessage(request);
  }

  /**
   * Resolves once a message waits to be taken (or the decoder ended). Call it before each
   * transaction: none is held while the decoder has nothing to give (its input still
   * arriving); and lmdb-js opens tables in write transactions of their own, so a decoder
   * still opening its tables — it posts its first message once done — would wait for the
   * writer's transaction to end. `meanwhile` is called as it waits (it may throw to stop).
   */
  async waiting(meanwhile: () => void): Promise<void> {
    const counters = this.#counters;
    while (
      Atomics.load(counters, POSTED) === Atomics.load(counters, TAKEN) &&
      Atomics.load(counters, ENDED) === 0
    ) {
      meanwhile();
      await sleep(WAITING_POLL_MS);
    }
  }

  /**
   * The next message, waiting at most `timeoutMs` for it (undefined when none came).
   * A decoder that ended without a word (it could not start) reads as a failure.
   */
  next(timeoutMs: number): BatchMessage<Note, Done> | undefined {
    const counters = this.#counters;
    const posted = Atomics.load(counters, POSTED);
    let received = receiveMessageOnPort(this.#port);
    if (received === undefined && timeoutMs > 0 && Atomics.load(counters, ENDED) === 0) {
      Atomics.wait(counters, POSTED, posted, timeoutMs);
      received = receiveMessageOnPort(this.#port);
    }
    if (received === undefined) {
      if (Atomics.load(counters, ENDED) === 0) return undefined;
      return { kind: 'failed', name: 'Error', message: 'the decoding thread ended without a result' };
    }
    Atomics.add(counters, TAKEN, 1);
    Atomics.notify(counters, TAKEN);
    return received.message as BatchMessage<Note, Done>;
  }

  /** Tells the decoder to stop (it ends at its next batch). */
  close(): void {
    Atomics.store(this.#counters, STOP, 1);
    Atomics.notify(this.#counters, TAKEN);
    this.#port.close();
  }
}

/** What `decode` gets to hand batches over. */
export interface BatchSender<Note> {
  /** Posts `writes` (its buffer moves to the writer) with `notes`; waits while the writer is far behind. */
  send(writes: RecordedWrites, notes: readonly Note[]): void;
}

/**
 * The decoder's side: waits for the request, runs `decode` and posts its result or
 * failure. A writer that goes away first (its port closes) ends the thread.
 */
export async function sendRecordedBatches<Request, Note, Done>(
  decode: (request: Request, sender: BatchSender<Note>) => Done,
): Promise<void> {
  const { port, counters } = workerData as DecoderLink;
  const first = await Promise.race([once(port, 'message'), once(port, 'close').then(() => null)]);
  if (first === null) return;
  const request = first[0] as Request;
  const post = (message: BatchMessage<Note, Done>, transfer: ArrayBuffer[] = []): void => {
    port.postMessage(message, transfer);
    Atomics.add(counters, POSTED, 1);
    Atomics.notify(counters, POSTED);
  };
  const sender: BatchSender<Note> = {
    send: (writes, notes) => {
      for (;;) {
        if (Atomics.load(counters, STOP) !== 0) throw new Error('stopped by the writer');
        const taken = Atomics.load(counters, TAKEN);
        if (Atomics.load(counters, POSTED) - taken < MAX_IN_FLIGHT) break;
        Atomics.wait(counters, TAKEN, taken, BACKOFF_WAIT_MS);
      }
      post({ kind: 'writes', writes, notes }, [writes.bytes.buffer as ArrayBuffer]);
    },
  };
  try {
    post({ kind: 'done', result: decode(request, sender) });
  } catch (err) {
    const { name, message } = err instanceof Error ? err : new Error(String(err));
    post({ kind: 'failed', name, message });
  } finally {
    // Not closed: what was posted stays readable by the writer; unreferenced, the port
    // lets this thread end.
    port.unref();
  }
}
