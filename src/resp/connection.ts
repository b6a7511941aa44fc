/**
 * One client connection: parses requests, runs commands, and sends replies
 * in request order, however the commands complete.
 *
 * Ordering: a command that reads runs at once while nothing of this
 * connection waits for a commit. A write (and every later command read with
 * it or while it is pending) goes to `Keyspace.submit`, the commands of one
 * read together: they run in order (at once when the storage can queue
 * writes, else inside the next transaction), so a pipeline sees its own
 * writes. Each command appends its reply to the output buffer when it runs;
 * the bytes are sent once its write is acknowledged (durable as promised).
 * Replies go out at the end of the event loop's turn, after every readable
 * connection was read, as Redis writes them before it sleeps: waking a client
 * on another CPU is the costliest part of a write, and writes made back to
 * back mostly find the client awake (GETs/s with `-P 16` up by 60 %).
 * AUTH and HELLO await a password check: the connection first lets earlier
 * commands finish, then pauses its input until the check is done.
 */
import type { Socket } from 'node:net';
import type { FeedSink, ReplicaFeed } from '../services/node-replication/contracts.js';
import type { Client } from './client.js';
import { Flag, type CommandSpec } from './command-spec.js';
import { lookupCommand } from './command-table.js';
import { admit, execute } from './dispatch.js';
import { toRespError } from './errors.js';
import { ProtocolError, RespParser } from './parser.js';

/** Stop reading from a client whose unsent replies exceed this. */
const OUTPUT_HIGH_WATER = 64 * 1024 * 1024;
/**
 * A listener whose unsent messages exceed this is disconnected (Redis' hard
 * `client-output-buffer-limit` for Pub/Sub clients): one slow reader must not
 * hold the node's memory.
 */
const PUBSUB_OUTPUT_LIMIT = 32 * 1024 * 1024;
/** Stop reading from a client that sent this much while its commands cannot run (AUTH, WAIT …). */
const HELD_INPUT_HIGH_WATER = 1024 * 1024;

export interface ConnectionEvents {
  /** A failure that is not the client's fault (e.g. a storage commit failed). */
  readonly onInternalError: (err: unknown) => void;
  /** The client was disconnected for not reading its messages (see `PUBSUB_OUTPUT_LIMIT`). */
  readonly onOutputLimit: () => void;
  readonly onClose: () => void;
}

interface QueuedCommands {
  readonly specs: (CommandSpec | undefined)[];
  readonly argvs: Buffer[][];
}

export class Connection {
  /** Connections with replies to send at the end of this turn of the event loop. */
  static readonly #sendsDue: Connection[] = [];

  static #sendDue(): void {
    const due = Connection.#sendsDue;
    // A send may make another connection's replies due (its own list is read to the end).
    for (let i = 0; i < due.length; i++) {
      const connection = due[i];
      connection.#sendScheduled = false;
      connection.#send();
    }
    due.length = 0;
  }

  readonly client: Client;
  readonly #socket: Socket;
  readonly #parser: RespParser;
  readonly #events: ConnectionEvents;
  /** Commands submitted to a storage write and not yet committed. */
  #inflight = 0;
  /** Output up to this mark may be sent. */
  #sendable = 0;
  /** Waiting for an async command (AUTH/HELLO) or for in-flight commands before one. */
  #paused = false;
  /** The async command waiting for the in-flight ones to finish. */
  #waiting: { spec: CommandSpec; argv: Buffer[] } | null = null;
  #closed = false;
  #sendScheduled = false;
  /** A protocol error was seen: the rest of the input is ignored. */
  #broken = false;
  /** Reading stopped while a command waits (see `HELD_INPUT_HIGH_WATER`). */
  #inputHeld = false;
  /** Commands read in this turn that wait to be submitted together (see `#submitQueued`). */
  #queued: QueuedCommands | null = null;
  /** After PSYNC: the replica feed this connection now carries (its input goes there). */
  #feed: ReplicaFeed | null = null;

  constructor(socket: Socket, client: Client, events: ConnectionEvents) {
    this.#socket = socket;
    this.client = client;
    this.#events = events;
    this.#parser = new RespParser({ authenticated: false });
    client.onAuthChanged = (authenticated) => {
      this.#parser.authenticated = authenticated;
    };
    client.onOutput = () => this.#outOfBand();
    client.onFatal = () => this.#socket.destroy();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#socket.resume());
    socket.on('error', () => this.#socket.destroy());
    socket.on('close', () => {
      this.#closed = true;
      this.#feed?.closed();
      events.onClose();
    });
  }

  /** Closes the connection at once (server shutdown). */
  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    const client = this.client;
    client.server.stats.netInputBytes += chunk.length;
    // After QUIT or a protocol error nothing more is read.
    if (this.#broken || client.closeRequested) {
      this.#socket.pause();
      return;
    }
    client.lastInteraction = Date.now();
    try {
      this.#parser.feed(chunk);
      this.#process();
    } catch (err) {
      // Not the client's protocol error (those are answered): e.g. no memory for a huge bulk.
      // It ends this connection only; thrown from a socket handler it would end the process.
      this.#events.onInternalError(err);
      this.#socket.destroy();
      return;
    }
    if (this.#paused && this.#parser.buffered > HELD_INPUT_HIGH_WATER) {
      // Its commands wait (AUTH, WAIT …): read no more until they run, or memory grows unbounded.
      this.#inputHeld = true;
      this.#socket.pause();
    }
  }

  #process(): void {
    if (this.#feed !== null) {
      this.#toFeed(this.#feed);
      return;
    }
    const client = this.client;
    while (!this.#paused && !client.closeRequested) {
      let command;
      try {
        command = this.#parser.next();
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        this.#protocolError(err);
        break;
      }
      if (command === undefined) break;
      if (command.argv.length === 0) continue;
      this.#dispatch(command.argv);
    }
    this.#submitQueued();
    if (this.#inflight === 0) this.#sendable = client.reply.position;
    this.#scheduleSend();
  }

  #dispatch(argv: Buffer[]): void {
    const spec = lookupCommand(argv[0]);
    // Inside MULTI a queueable async command (BLPOP …) is queued like any other.
    const queued =
      this.client.multi !== null &&
      spec !== undefined &&
      (spec.flags & (Flag.Immediate | Flag.NoMulti)) === 0;
    if (spec !== undefined && (spec.flags & Flag.Async) !== 0 && !queued) {
      this.#submitQueued();
      this.#paused = true;
      this.#waiting = { spec, argv };
      if (this.#inflight === 0) this.#runWaiting();
      return;
    }
    const ordered = spec !== undefined && (spec.flags & (Flag.Write | Flag.Ordered)) !== 0;
    if (this.#inflight === 0 && this.#queued === null && !ordered) {
      execute(this.client, spec, argv);
      return;
    }
    const batch = this.#queued;
    if (batch === null) this.#queued = { specs: [spec], argvs: [argv] };
    else {
      batch.specs.push(spec);
      batch.argvs.push(argv);
    }
  }

  /**
   * Submits the commands queued while reading (a write, and everything after
   * it) to the next storage write: one action and one completion for a whole
   * pipeline, not one per command.
   */
  #submitQueued(): void {
    const batch = this.#queued;
    if (batch === null) return;
    this.#queued = null;
    this.#submit(() => {
      const client = this.client;
      for (let i = 0; i < batch.specs.length; i++) {
        // Commands after a QUIT in the same pipeline are dropped, as Redis does.
        if (client.closeRequested) break;
        execute(client, batch.specs[i], batch.argvs[i]);
      }
    });
  }

  /** Runs `action` inside the next storage write; its reply is sent once that commit resolved. */
  #submit(action: () => void): void {
    const client = this.client;
    if (this.#inflight === 0) this.#sendable = client.reply.position;
    this.#inflight++;
    client.server.keyspace.submit(
      () => {
        action();
        return client.reply.position;
      },
      (err, mark) => {
        this.#inflight--;
        if (err !== undefined) {
          this.#events.onInternalError(err);
          this.#socket.destroy();
          return;
        }
        // With nothing in flight, everything written is a reply to a finished command or a message.
        if (this.#inflight === 0) this.#sendable = client.reply.position;
        else if (mark! > this.#sendable) this.#sendable = mark!;
        // One socket write for all the replies of this commit, not one per command.
        this.#scheduleSend();
        if (this.#inflight === 0 && this.#waiting !== null) this.#runWaiting();
      },
    );
  }

  #runWaiting(): void {
    const { spec, argv } = this.#waiting!;
    this.#waiting = null;
    const client = this.client;
    client.server.stats.commandsProcessed++;
    let run: Promise<void>;
    try {
      admit(client, spec, argv);
      client.lastCommand = spec.name;
      run = spec.runAsync!(client, argv);
    } catch (err) {
      run = Promise.reject(err instanceof Error ? err : new Error('command failed', { cause: err }));
    }
    run
      .catch((err: unknown) => client.reply.error(toRespError(err)))
      .finally(() => {
        this.#paused = false;
        if (this.#closed) return;
        if (this.#inputHeld) {
          this.#inputHeld = false;
          this.#socket.resume();
        }
        if (client.replicaFeed !== null) this.#startFeed(client.replicaFeed);
        this.#process();
      });
  }

  /** PSYNC succeeded: the replies so far go out, then the socket belongs to the replica feed. */
  #startFeed(start: (sink: FeedSink) => ReplicaFeed): void {
    this.client.replicaFeed = null;
    this.#sendable = this.client.reply.position;
    this.#send();
    const socket = this.#socket;
    this.#feed = start({
      write: (chunk) => {
        this.client.server.stats.netOutputBytes += chunk.length;
        return socket.write(chunk);
      },
      drained: () =>
        new Promise((resolve) => {
          if (socket.destroyed || socket.writableLength === 0) resolve();
          else {
            socket.once('drain', () => resolve());
            socket.once('close', () => resolve());
          }
        }),
      close: () => socket.destroy(),
    });
  }

  /** A replica's input after PSYNC: its ACKs, for the feed. */
  #toFeed(feed: ReplicaFeed): void {
    for (;;) {
      let command;
      try {
        command = this.#parser.next();
      } catch {
        this.#socket.destroy();
        return;
      }
      if (command === undefined) return;
      if (command.argv.length > 0) feed.command(command.argv);
    }
  }

  /** A malformed frame: its error follows the replies before it, then the connection closes. */
  #protocolError(err: ProtocolError): void {
    this.#broken = true;
    const client = this.client;
    const reply = (): void => {
      client.reply.error(toRespError(err));
      client.closeRequested = true;
    };
    this.#submitQueued();
    if (this.#inflight === 0) reply();
    else this.#submit(reply);
  }

  /** A message was written: sent behind the replies still waiting for their commit. */
  #outOfBand(): void {
    if (this.#closed) return;
    if (this.#socket.writableLength + this.client.reply.pending > PUBSUB_OUTPUT_LIMIT) {
      this.#events.onOutputLimit();
      this.#socket.destroy();
      return;
    }
    if (this.#inflight === 0 && !this.client.outputHeld) this.#sendable = this.client.reply.position;
    this.#scheduleSend();
  }

  #scheduleSend(): void {
    if (this.#sendScheduled) return;
    this.#sendScheduled = true;
    const due = Connection.#sendsDue;
    due.push(this);
    if (due.length === 1) setImmediate(Connection.#sendDue);
  }

  #send(): void {
    if (this.#closed) return;
    const client = this.client;
    const chunks = client.reply.take(this.#sendable);
    for (const chunk of chunks) {
      client.server.stats.netOutputBytes += chunk.length;
      this.#socket.write(chunk);
    }
    if (client.closeRequested && this.#inflight === 0 && client.reply.pending === 0) {
      // Closed once the replies are out, whether or not the client ever closes its side.
      this.#socket.end(() => this.#socket.destroy());
      return;
    }
    if (this.#socket.writableLength > OUTPUT_HIGH_WATER) this.#socket.pause();
  }
}
