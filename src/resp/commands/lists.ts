/** List commands. */
import * as lists from '../../engines/kv/lists.js';
import { int, numberedKeys, popTail, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

/** LEFT or RIGHT (LMOVE, BLMOVE). */
export function side(arg: Buffer): lists.Side {
  const where = word(arg);
  if (where === 'LEFT') return 'left';
  if (where === 'RIGHT') return 'right';
  throw syntaxError();
}

function popCommand(side: lists.Side) {
  return (c: Client, argv: Buffer[]): void => {
    if (argv.length > 3)
      throw respError(`wrong number of arguments for '${side === 'left' ? 'lpop' : 'rpop'}' command`);
    let count: number | undefined;
    if (argv.length === 3) {
      count = int(argv[2]);
      if (count < 0) throw respError('value is out of range, must be positive');
    }
    const result = lists.pop(c.server.keyspace, c.db, argv[1], side, count);
    if (result === null) {
      if (count === undefined) c.reply.nullBulk();
      else c.reply.nullArray();
    } else if (Array.isArray(result)) {
      c.reply.array(result.length);
      for (const v of result) c.reply.bulk(v);
    } else c.reply.bulk(result);
  };
}

function lposCommand(c: Client, argv: Buffer[]): void {
  let rank = 1;
  let count: number | undefined;
  let maxlen = 0;
  for (let j = 3; j < argv.length; j++) {
    const option = word(argv[j]);
    const value = argv[j + 1];
    if (value === undefined) throw syntaxError();
    if (option === 'RANK') {
      rank = int(value);
      if (rank === 0) {
        throw respError(
          "RANK can't be zero: use 1 to start from the first match, 2 from the second ... " +
            'or use negative to start from the end of the list',
        );
      }
    } else if (option === 'COUNT') {
      count = int(value);
      if (count < 0) throw respError("COUNT can't be negative");
    } else if (option === 'MAXLEN') {
      maxlen = int(value);
      if (maxlen < 0) throw respError("MAXLEN can't be negative");
    } else throw syntaxError();
    j++;
  }
  const found = lists.lpos(c.server.keyspace, c.db, argv[1], argv[2], rank, count ?? 1, maxlen);
  if (count === undefined) {
    if (found.length === 0) c.reply.nullBulk();
    else c.reply.integer(found[0]);
    return;
  }
  c.reply.array(found.length);
  for (const position of found) c.reply.integer(position);
}

/** LMPOP's and BLMPOP's reply: [key, [element …]]. */
export function keyedPopReply(c: Client, key: Buffer, popped: readonly Buffer[]): void {
  c.reply.array(2);
  c.reply.bulk(key);
  c.reply.array(popped.length);
  for (const element of popped) c.reply.bulk(element);
}

/** LMPOP: pops from the first of the keys that holds a list; [key, elements], or a null array. */
function lmpopCommand(c: Client, argv: Buffer[]): void {
  const { keys, next } = numberedKeys(argv, 1);
  const { end, count } = popTail(argv, next, ['LEFT', 'RIGHT']);
  const from = end === 'LEFT' ? 'left' : 'right';
  const ks = c.server.keyspace;
  for (const key of keys) {
    if (lists.llen(ks, c.db, key) === 0) continue;
    keyedPopReply(c, key, lists.pop(ks, c.db, key, from, count) as Buffer[]);
    return;
  }
  c.reply.nullArray();
}

export const listCommands: CommandSpec[] = [
  keyCommand({
    name: 'lpush',
    arity: -3,
    flags: W | F,
    group: 'list',
    run: (c, argv) => c.reply.integer(lists.push(c.server.keyspace, c.db, argv[1], 'left', argv.slice(2))),
  }),
  keyCommand({
    name: 'rpush',
    arity: -3,
    flags: W | F,
    group: 'list',
    run: (c, argv) => c.reply.integer(lists.push(c.server.keyspace, c.db, argv[1], 'right', argv.slice(2))),
  }),
  keyCommand({
    name: 'lpushx',
    arity: -3,
    flags: W | F,
    group: 'list',
    since: '2.2.0',
    run: (c, argv) =>
      c.reply.integer(lists.push(c.server.keyspace, c.db, argv[1], 'left', argv.slice(2), true)),
  }),
  keyCommand({
    name: 'rpushx',
    arity: -3,
    flags: W | F,
    group: 'list',
    since: '2.2.0',
    run: (c, argv) =>
      c.reply.integer(lists.push(c.server.keyspace, c.db, argv[1], 'right', argv.slice(2), true)),
  }),
  keyCommand({ name: 'lpop', arity: -2, flags: W | F, group: 'list', run: popCommand('left') }),
  keyCommand({ name: 'rpop', arity: -2, flags: W | F, group: 'list', run: popCommand('right') }),
  keyCommand({
    name: 'lrange',
    arity: 4,
    flags: R,
    group: 'list',
    run: (c, argv) => {
      const values = lists.lrange(c.server.keyspace, c.db, argv[1], int(argv[2]), int(argv[3]));
      c.reply.array(values.length);
      for (const v of values) c.reply.bulk(v);
    },
  }),
  keyCommand({
    name: 'llen',
    arity: 2,
    flags: R | F,
    group: 'list',
    run: (c, argv) => c.reply.integer(lists.llen(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'lindex',
    arity: 3,
    flags: R,
    group: 'list',
    run: (c, argv) => c.reply.bulk(lists.lindex(c.server.keyspace, c.db, argv[1], int(argv[2]))),
  }),
  keyCommand({
    name: 'lset',
    arity: 4,
    flags: W,
    group: 'list',
    run: (c, argv) => {
      lists.lset(c.server.keyspace, c.db, argv[1], int(argv[2]), argv[3]);
      c.reply.ok();
    },
  }),
  keyCommand({
    name: 'lrem',
    arity: 4,
    flags: W,
    group: 'list',
    run: (c, argv) => c.reply.integer(lists.lrem(c.server.keyspace, c.db, argv[1], int(argv[2]), argv[3])),
  }),
  keyCommand({
    name: 'ltrim',
    arity: 4,
    flags: W,
    group: 'list',
    run: (c, argv) => {
      lists.ltrim(c.server.keyspace, c.db, argv[1], int(argv[2]), int(argv[3]));
      c.reply.ok();
    },
  }),
  command({
    name: 'lmove',
    arity: 5,
    flags: W,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'list',
    since: '6.2.0',
    run: (c, argv) =>
      c.reply.bulk(lists.lmove(c.server.keyspace, c.db, argv[1], argv[2], side(argv[3]), side(argv[4]))),
  }),
  command({
    name: 'rpoplpush',
    arity: 3,
    flags: W,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'list',
    since: '1.2.0',
    run: (c, argv) => c.reply.bulk(lists.lmove(c.server.keyspace, c.db, argv[1], argv[2], 'right', 'left')),
  }),
  keyCommand({
    name: 'linsert',
    arity: 5,
    flags: W,
    group: 'list',
    since: '2.2.0',
    run: (c, argv) => {
      const where = word(argv[2]);
      if (where !== 'BEFORE' && where !== 'AFTER') throw syntaxError();
      c.reply.integer(lists.linsert(c.server.keyspace, c.db, argv[1], where === 'AFTER', argv[3], argv[4]));
    },
  }),
  keyCommand({ name: 'lpos', arity: -3, flags: R, group: 'list', since: '6.0.6', run: lposCommand }),
  command({ name: 'lmpop', arity: -4, flags: W, group: 'list', since: '7.0.0', run: lmpopCommand }),
];
