/**
 * Applies the primary's command stream to the keyspace and keeps Redis'
 * replication offset exactly: the bytes of every fully processed command,
 * PINGs, SELECTs and REPLCONF GETACKs included.
 *
 * Each received chunk becomes one keyspace write holding every command that
 * completed in it (in stream order, behind the writes already submitted).
 * The applied offset moves when that write commits, so what we acknowledge
 * is durable here. MULTI … EXEC runs as one group (one journal entry, all
 * at once); its bytes count at EXEC, as in Redis. `REPLCONF GETACK` is
 * answered, once the commands before it committed, with the offset before
 * it.
 */
import type { Keyspace } from '../../engines/kv/keyspace.js';
import { APPLY_BACKLOG_BYTES, ApplyBacklog } from '../node-replication/apply-backlog.js';
import type { PrimaryCommandRunner, StreamCommandParser } from './replica-contracts.js';

export interface CommandStreamOptions {
  readonly keyspace: Keyspace;
  readonly parser: StreamCommandParser;
  readonly runner: PrimaryCommandRunner;
  /** The offset the stream starts after (the FULLRESYNC offset, or ours on CONTINUE). */
  readonly offset: number;
  readonly sendAck: (offset: number) => void;
  /** A malformed stream or a failed commit: the link must be dropped (applied offsets stay exact). */
  readonly onFailure: (err: unknown) => void;
  /** A command the keyspace refused or does not know (the stream goes on, as on a Redis replica). */
  readonly onCommandError: (command: string, error: string) => void;
  /** After `feed` returned false: enough is applied, reading may resume. */
  readonly onCaughtUp: () => void;
  /** Runs inside each write, with the offset it applies up to (to save it in the same write). */
  readonly inWrite?: (offset: number) => void;
}

type Step = { readonly argv: Buffer[] } | { readonly group: Buffer[][] };

export class CommandStream {
  readonly #options: CommandStreamOptions;
  #readOffset: number;
  /** Offset once every submitted write has committed. */
  #queuedOffset: number;
  #appliedOffset: number;
  #multi: { argvs: Buffer[][]; bytes: number } | null = null;
  #inflight = 0;
  #idleWaiters: (() => void)[] = [];
  #failed = false;
  commandsApplied = 0;
  commandErrors = 0;

  readonly #backlog: ApplyBacklog;

  constructor(options: CommandStreamOptions) {
    this.#options = options;
    this.#backlog = new ApplyBacklog(APPLY_BACKLOG_BYTES, options.onCaughtUp);
    this.#readOffset = this.#queuedOffset = this.#appliedOffset = options.offset;
  }

  get readOffset(): number {
    return this.#readOffset;
  }

  get appliedOffset(): number {
    return this.#appliedOffset;
  }

  /** Resolves once every submitted write has committed (or failed). */
  settled(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Applies what `chunk` completes; false: read no more until `onCaughtUp`. */
  feed(chunk: Buffer): boolean {
    if (this.#failed) return true;
    const parser = this.#options.parser;
    parser.feed(chunk);
    const steps: Step[] = [];
    const acks: number[] = [];
    let bytes = 0;
    for (;;) {
      let command;
      try {
        command = parser.next();
      } catch (err) {
        this.#fail(err);
        return true;
      }
      if (command === undefined) break;
      const { argv } = command;
      this.#readOffset += command.bytes;
      const name = argv.length === 0 ? '' : argv[0].toString('latin1').toLowerCase();
      const multi = this.#multi;
      if (multi !== null) {
        if (name === 'exec' || name === 'discard') {
          if (name === 'exec' && multi.argvs.length > 0) steps.push({ group: multi.argvs });
          bytes += multi.bytes + command.bytes;
          this.#multi = null;
        } else {
          multi.argvs.push(argv);
          multi.bytes += command.bytes;
        }
        continue;
      }
      switch (name) {
        case 'multi':
          this.#multi = { argvs: [], bytes: command.bytes };
          continue;
        case 'replconf':
          if (argv[1]?.toString('latin1').toLowerCase() === 'getack') acks.push(this.#queuedOffset + bytes);
          break;
        case '':
        case 'ping':
          break;
        default:
          steps.push({ argv });
      }
      bytes += command.bytes;
    }
    if (bytes === 0 && steps.length === 0) return this.#backlog.add(0);
    const reading = this.#backlog.add(bytes);
    this.#submit(steps, bytes, acks);
    return reading;
  }

  #submit(steps: Step[], bytes: number, acks: number[]): void {
    this.#queuedOffset += bytes;
    const done = (): void => {
      this.#appliedOffset += bytes;
      for (const offset of acks) this.#options.sendAck(offset);
    };
    if (steps.length === 0 && this.#inflight === 0) {
      done();
      this.#backlog.done(bytes);
      return;
    }
    this.#inflight++;
    const offset = this.#queuedOffset;
    this.#options.keyspace.submit(
      () => this.#apply(steps, offset),
      (err) => {
        this.#inflight--;
        this.#backlog.done(bytes);
        // After a failed commit nothing later may count: the link is dropped and resyncs.
        if (err === undefined && !this.#failed) done();
        else this.#fail(err ?? new Error('stream write failed'));
        if (this.#inflight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      },
      // The saved offset must commit with the commands (the log would replay them without it).
      true,
    );
  }

  #apply(steps: Step[], offset: number): void {
    const ks = this.#options.keyspace;
    // The primary may still see a key our clock already expired: its commands see it too.
    const previous = ks.expiredKeys;
    ks.expiredKeys = 'live';
    try {
      for (const step of steps) {
        if ('argv' in step) this.#run(step.argv);
        else ks.group(() => step.group.forEach((argv) => this.#run(argv)));
      }
    } finally {
      ks.expiredKeys = previous;
    }
    this.#options.inWrite?.(offset);
  }

  #run(argv: Buffer[]): void {
    const error = this.#options.runner.run(argv);
    this.commandsApplied++;
    if (error === undefined) return;
    this.commandErrors++;
    this.#options.onCommandError(argv[0].toString('latin1'), error);
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#options.onFailure(err);
  }
}
