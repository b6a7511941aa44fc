/**
 * Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
 * BZPOPMAX, BZMPOP. Each serves at once when one of its keys holds
 * something, else waits (see `blocking.ts`) until a write makes a key ready
 * or the timeout passes. Inside MULTI, and from a primary's stream, they
 * never wait: they act as their non-blocking form, as in Redis. What a
 * replica receives is the pop that happened (journaled by the keyspace).
 */
import { performance } from 'node:perf_hooks';
import * as lists from '../../engines/kv/lists.js';
import { parseDouble } from '../../engines/kv/numbers.js';
import { KeyType } from '../../engines/kv/record.js';
import * as zsets from '../../engines/kv/zsets.js';
import { numberedKeys, popTail } from '../args.js';
import type { BlockedCommand } from '../blocking.js';
import type { Client } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { respError } from '../errors.js';
import { keyedPopReply as listPopReply, side } from './lists.js';
import { keyedPopReply as zsetPopReply } from './zsets.js';

/** A parsed blocking command. */
interface Blocking {
  /** The keys it waits on, in the order it tries them. */
  readonly keys: Buffer[];
  /** 0: wait for ever. */
  readonly timeoutMs: number;
  /**
   * Inside a write: takes from `key` and writes the reply; false when `key`
   * holds nothing. `strict` (the first try): a key of another type is
   * WRONGTYPE; later (serving a waiter) it is only nothing to take.
   */
  readonly take: (c: Client, key: Buffer, strict: boolean) => boolean;
  /** The reply when nothing is taken without waiting (inside MULTI). */
  readonly nothing: (c: Client) => void;
}

/**
 * A timeout in seconds as Redis reads it (a long double, truncated to ms);
 * like Redis on x86, a value too large for a 64-bit ms count reads as negative.
 */
function timeoutArg(arg: Buffer): number {
  const seconds = parseDouble(arg);
  if (seconds === undefined) throw respError('timeout is not a float or out of range');
  const ms = Math.trunc(seconds * 1000);
  if (!Number.isFinite(ms) || ms < 0 || ms > Number.MAX_SAFE_INTEGER) throw respError('timeout is negative');
  return ms;
}

function holds(c: Client, key: Buffer, type: KeyType): boolean {
  return c.server.keyspace.lookup(c.db, key)?.type === type;
}

/** Elements left in list `key` (strict: WRONGTYPE for another type; else 0). */
function listLength(c: Client, key: Buffer, strict: boolean): number {
  if (!strict && !holds(c, key, KeyType.List)) return 0;
  return lists.llen(c.server.keyspace, c.db, key);
}

function zsetSize(c: Client, key: Buffer, strict: boolean): number {
  if (!strict && !holds(c, key, KeyType.ZSet)) return 0;
  return zsets.zcard(c.server.keyspace, c.db, key);
}

const nullArray = (c: Client): void => c.reply.nullArray();

/** BLPOP / BRPOP key [key …] timeout: [key, element]. */
function parsePop(from: lists.Side) {
  return (argv: Buffer[]): Blocking => ({
    keys: argv.slice(1, -1),
    timeoutMs: timeoutArg(argv[argv.length - 1]),
    take: (c, key, strict) => {
      if (listLength(c, key, strict) === 0) return false;
      const element = lists.pop(c.server.keyspace, c.db, key, from) as Buffer;
      c.reply.array(2);
      c.reply.bulk(key);
      c.reply.bulk(element);
      return true;
    },
    nothing: nullArray,
  });
}

/** BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout (BRPOPLPUSH: RIGHT LEFT): the element. */
function parseMove(argv: Buffer[], from: lists.Side, to: lists.Side, timeout: Buffer): Blocking {
  const [source, destination] = [argv[1], argv[2]];
  return {
    keys: [source],
    timeoutMs: timeoutArg(timeout),
    take: (c, key, strict) => {
      if (listLength(c, key, strict) === 0) return false;
      // Served later, a destination of another type leaves the client waiting (as Redis does).
      const target = strict ? undefined : c.server.keyspace.lookup(c.db, destination);
      if (target !== undefined && target.type !== KeyType.List) return false;
      c.reply.bulk(lists.lmove(c.server.keyspace, c.db, source, destination, from, to));
      return true;
    },
    nothing: (c) => c.reply.nullBulk(),
  };
}

/** BLMPOP timeout numkeys key [key …] LEFT|RIGHT [COUNT count]: [key, [element …]]. */
function parseListMulti(argv: Buffer[]): Blocking {
  const timeoutMs = timeoutArg(argv[1]);
  const { keys, next } = numberedKeys(argv, 2);
  const { end, count } = popTail(argv, next, ['LEFT', 'RIGHT']);
  return {
    keys,
    timeoutMs,
    take: (c, key, strict) => {
      if (listLength(c, key, strict) === 0) return false;
      const from = end === 'LEFT' ? 'left' : 'right';
      listPopReply(c, key, lists.pop(c.server.keyspace, c.db, key, from, count) as Buffer[]);
      return true;
    },
    nothing: nullArray,
  };
}

/** BZPOPMIN / BZPOPMAX key [key …] timeout: [key, member, score]. */
function parseZPop(highest: boolean) {
  return (argv: Buffer[]): Blocking => ({
    keys: argv.slice(1, -1),
    timeoutMs: timeoutArg(argv[argv.length - 1]),
    take: (c, key, strict) => {
      if (zsetSize(c, key, strict) === 0) return false;
      const [popped] = zsets.zpop(c.server.keyspace, c.db, key, highest, 1);
      c.reply.array(3);
      c.reply.bulk(key);
      c.reply.bulk(popped.member);
      c.reply.double(popped.score);
      return true;
    },
    nothing: nullArray,
  });
}

/** BZMPOP timeout numkeys key [key …] MIN|MAX [COUNT count]: [key, [[member, score] …]]. */
function parseZsetMulti(argv: Buffer[]): Blocking {
  const timeoutMs = timeoutArg(argv[1]);
  const { keys, next } = numberedKeys(argv, 2);
  const { end, count } = popTail(argv, next, ['MIN', 'MAX']);
  return {
    keys,
    timeoutMs,
    take: (c, key, strict) => {
      if (zsetSize(c, key, strict) === 0) return false;
      zsetPopReply(c, key, zsets.zpop(c.server.keyspace, c.db, key, end === 'MAX', count));
      return true;
    },
    nothing: nullArray,
  };
}

/** Takes from the first key that holds something, inside the current write; false when none does. */
function takeFirst(c: Client, blocking: Blocking): boolean {
  for (const key of blocking.keys) if (blocking.take(c, key, true)) return true;
  return false;
}

/**
 * Serves at once, or blocks until a write makes a key ready (served inside
 * that write), the timeout passes (a null reply), CLIENT UNBLOCK, or the
 * client disconnects. Resolves once the reply is written and committed.
 */
async function block(c: Client, blocking: Blocking): Promise<void> {
  const { keyspace, blocked } = c.server;
  const deadline = blocking.timeoutMs === 0 ? 0 : performance.now() + blocking.timeoutMs;
  let finished = false;
  let wake = (): void => undefined;
  const woken = new Promise<void>((resolve) => (wake = resolve));
  let timer: NodeJS.Timeout | undefined;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    c.outputHeld = false;
    clearTimeout(timer);
    c.gone.removeEventListener('abort', onGone);
    wake();
  };
  const onGone = (): void => {
    blocked.unblock(waiting);
    finish();
  };
  const waiting: BlockedCommand = {
    client: c,
    db: c.db,
    keys: blocking.keys,
    serve: (key) => {
      // The reply is written now, inside the pushing write; it must not leave before that commit.
      c.outputHeld = true;
      try {
        if (blocking.take(c, key, false)) return true;
      } catch {
        // Nothing to take after all: the client keeps waiting.
      }
      c.outputHeld = false;
      return false;
    },
    // Should the pushing write fail, the pop never happened: the reply written for it must not go out.
    served: () =>
      keyspace.afterCommit(finish, () => {
        c.onFatal();
        finish();
      }),
    abandon: (reply) => {
      if (!blocked.unblock(waiting)) return;
      reply(c);
      finish();
    },
  };
  const servedAtOnce = await keyspace.write(() => {
    const taken = takeFirst(c, blocking);
    // Registered inside the write: no push can come between the try and the wait.
    if (!taken) blocked.block(waiting);
    else blocked.serveReady();
    return taken;
  });
  if (servedAtOnce) return;
  c.gone.addEventListener('abort', onGone);
  if (c.gone.aborted) onGone();
  if (deadline !== 0 && !finished) {
    timer = setTimeout(
      () => waiting.abandon((client) => client.reply.nullArray()),
      Math.max(0, deadline - performance.now()),
    );
  }
  await woken;
}

type Parse = (argv: Buffer[]) => Blocking;

function blockingCommand(
  def: Pick<CommandSpec, 'name' | 'arity' | 'group' | 'since' | 'summary'> & {
    readonly keys: { readonly firstKey: number; readonly lastKey: number };
    readonly parse: Parse;
  },
): CommandSpec {
  return command({
    name: def.name,
    arity: def.arity,
    flags: Flag.Write | Flag.Async,
    firstKey: def.keys.firstKey,
    lastKey: def.keys.lastKey,
    step: 1,
    group: def.group,
    since: def.since,
    summary: def.summary,
    // Inside MULTI (at EXEC) and from a primary's stream: never waits.
    run: (c, argv) => {
      const blocking = def.parse(argv);
      if (!takeFirst(c, blocking)) blocking.nothing(c);
    },
    runAsync: (c, argv) => block(c, def.parse(argv)),
  });
}

/** `key [key …] timeout`. */
const KEYS_THEN_TIMEOUT = { firstKey: 1, lastKey: -2 };

export const blockingCommands: CommandSpec[] = [
  blockingCommand({
    name: 'blpop',
    arity: -3,
    keys: KEYS_THEN_TIMEOUT,
    group: 'list',
    since: '2.0.0',
    summary: 'Pops the first element of the first non-empty list, waiting up to timeout seconds for one.',
    parse: parsePop('left'),
  }),
  blockingCommand({
    name: 'brpop',
    arity: -3,
    keys: KEYS_THEN_TIMEOUT,
    group: 'list',
    since: '2.0.0',
    summary: 'Pops the last element of the first non-empty list, waiting up to timeout seconds for one.',
    parse: parsePop('right'),
  }),
  blockingCommand({
    name: 'blmove',
    arity: 6,
    keys: { firstKey: 1, lastKey: 2 },
    group: 'list',
    since: '6.2.0',
    summary: 'LMOVE, waiting up to timeout seconds for the source to hold an element.',
    parse: (argv) => parseMove(argv, side(argv[3]), side(argv[4]), argv[5]),
  }),
  blockingCommand({
    name: 'brpoplpush',
    arity: 4,
    keys: { firstKey: 1, lastKey: 2 },
    group: 'list',
    since: '2.2.0',
    summary: 'RPOPLPUSH, waiting up to timeout seconds for the source to hold an element.',
    parse: (argv) => parseMove(argv, 'right', 'left', argv[3]),
  }),
  blockingCommand({
    name: 'blmpop',
    arity: -5,
    keys: { firstKey: 0, lastKey: 0 },
    group: 'list',
    since: '7.0.0',
    summary: 'LMPOP, waiting up to timeout seconds for one of the lists to hold an element.',
    parse: parseListMulti,
  }),
  blockingCommand({
    name: 'bzpopmin',
    arity: -3,
    keys: KEYS_THEN_TIMEOUT,
    group: 'sorted-set',
    since: '5.0.0',
    summary:
      'Pops the lowest-scored member of the first non-empty sorted set, waiting up to timeout seconds.',
    parse: parseZPop(false),
  }),
  blockingCommand({
    name: 'bzpopmax',
    arity: -3,
    keys: KEYS_THEN_TIMEOUT,
    group: 'sorted-set',
    since: '5.0.0',
    summary:
      'Pops the highest-scored member of the first non-empty sorted set, waiting up to timeout seconds.',
    parse: parseZPop(true),
  }),
  blockingCommand({
    name: 'bzmpop',
    arity: -5,
    keys: { firstKey: 0, lastKey: 0 },
    group: 'sorted-set',
    since: '7.0.0',
    summary: 'ZMPOP, waiting up to timeout seconds for one of the sorted sets to hold a member.',
    parse: parseZsetMulti,
  }),
];
