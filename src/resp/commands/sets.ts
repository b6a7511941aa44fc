/** Set commands. */
import * as sets from '../../engines/kv/sets.js';
import { cardinalityLimit, cursor, int, numberedKeys, scanOptions, TOO_MANY_KEYS } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

function setReply(c: Client, members: readonly Buffer[]): void {
  c.reply.set(members.length);
  for (const m of members) c.reply.bulk(m);
}

function randomCommand(pop: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    const name = pop ? 'spop' : 'srandmember';
    if (argv.length > 3) throw respError(`wrong number of arguments for '${name}' command`);
    let count: number | undefined;
    if (argv.length === 3) {
      count = int(argv[2]);
      if (pop && count < 0) throw respError('value is out of range, must be positive');
    }
    const ks = c.server.keyspace;
    const result = pop ? sets.spop(ks, c.db, argv[1], count) : sets.srandmember(ks, c.db, argv[1], count);
    if (Array.isArray(result)) {
      // SPOP with a count replies a set; SRANDMEMBER an array (it may repeat).
      if (pop) setReply(c, result);
      else {
        c.reply.array(result.length);
        for (const m of result) c.reply.bulk(m);
      }
    } else c.reply.bulk(result);
  };
}

const allKeys = { firstKey: 1, lastKey: -1, step: 1 } as const;

export const setCommands: CommandSpec[] = [
  keyCommand({
    name: 'sadd',
    arity: -3,
    flags: W | F,
    group: 'set',
    run: (c, argv) => c.reply.integer(sets.sadd(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  keyCommand({
    name: 'srem',
    arity: -3,
    flags: W | F,
    group: 'set',
    run: (c, argv) => c.reply.integer(sets.srem(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  keyCommand({
    name: 'smembers',
    arity: 2,
    flags: R,
    group: 'set',
    run: (c, argv) => setReply(c, sets.smembers(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'sismember',
    arity: 3,
    flags: R | F,
    group: 'set',
    run: (c, argv) => c.reply.integer(sets.sismember(c.server.keyspace, c.db, argv[1], argv[2]) ? 1 : 0),
  }),
  keyCommand({
    name: 'smismember',
    arity: -3,
    flags: R | F,
    group: 'set',
    since: '6.2.0',
    run: (c, argv) => {
      const found = sets.smismember(c.server.keyspace, c.db, argv[1], argv.slice(2));
      c.reply.array(found.length);
      for (const f of found) c.reply.integer(f ? 1 : 0);
    },
  }),
  keyCommand({
    name: 'scard',
    arity: 2,
    flags: R | F,
    group: 'set',
    run: (c, argv) => c.reply.integer(sets.scard(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({ name: 'spop', arity: -2, flags: W | F, group: 'set', run: randomCommand(true) }),
  keyCommand({ name: 'srandmember', arity: -2, flags: R, group: 'set', run: randomCommand(false) }),
  command({
    name: 'sinter',
    arity: -2,
    flags: R,
    ...allKeys,
    group: 'set',
    run: (c, argv) => setReply(c, sets.sinter(c.server.keyspace, c.db, argv.slice(1))),
  }),
  command({
    name: 'sunion',
    arity: -2,
    flags: R,
    ...allKeys,
    group: 'set',
    run: (c, argv) => setReply(c, sets.sunion(c.server.keyspace, c.db, argv.slice(1))),
  }),
  command({
    name: 'sdiff',
    arity: -2,
    flags: R,
    ...allKeys,
    group: 'set',
    run: (c, argv) => setReply(c, sets.sdiff(c.server.keyspace, c.db, argv.slice(1))),
  }),
  keyCommand({
    name: 'sscan',
    arity: -3,
    flags: R,
    group: 'set',
    since: '2.8.0',
    run: (c, argv) => {
      const from = cursor(argv[2]);
      const options = scanOptions(argv, 3, false);
      const result = sets.sscan(c.server.keyspace, c.db, argv[1], from, options.count, options.match);
      c.reply.array(2);
      c.reply.bulkText(String(result.cursor));
      c.reply.array(result.items.length);
      for (const m of result.items) c.reply.bulk(m);
    },
  }),
  command({
    name: 'smove',
    arity: 4,
    flags: W | F,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'set',
    run: (c, argv) => c.reply.integer(sets.smove(c.server.keyspace, c.db, argv[1], argv[2], argv[3])),
  }),
  command({
    name: 'sinterstore',
    arity: -3,
    flags: W,
    ...allKeys,
    group: 'set',
    since: '1.0.0',
    run: (c, argv) => c.reply.integer(sets.sstore(c.server.keyspace, c.db, 'inter', argv[1], argv.slice(2))),
  }),
  command({
    name: 'sunionstore',
    arity: -3,
    flags: W,
    ...allKeys,
    group: 'set',
    since: '1.0.0',
    run: (c, argv) => c.reply.integer(sets.sstore(c.server.keyspace, c.db, 'union', argv[1], argv.slice(2))),
  }),
  command({
    name: 'sdiffstore',
    arity: -3,
    flags: W,
    ...allKeys,
    group: 'set',
    since: '1.0.0',
    run: (c, argv) => c.reply.integer(sets.sstore(c.server.keyspace, c.db, 'diff', argv[1], argv.slice(2))),
  }),
  command({
    name: 'sintercard',
    arity: -3,
    flags: R,
    group: 'set',
    since: '7.0.0',
    run: (c, argv) => {
      const { keys, next } = numberedKeys(argv, 1, TOO_MANY_KEYS);
      const limit = cardinalityLimit(argv, next);
      const size = sets.sinter(c.server.keyspace, c.db, keys).length;
      c.reply.integer(limit === 0 ? size : Math.min(size, limit));
    },
  }),
];
