/** Hash commands. */
import * as hashes from '../../engines/kv/hashes.js';
import { cursor, float, int64, randomCount, scanOptions } from '../args.js';
import type { Client } from '../client.js';
import { Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { wrongArity } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

function pairsReply(c: Client, pairs: [Buffer, Buffer][]): void {
  c.reply.map(pairs.length);
  for (const [field, value] of pairs) {
    c.reply.bulk(field);
    c.reply.bulk(value);
  }
}

function bulkArray(c: Client, values: readonly (Buffer | null)[]): void {
  c.reply.array(values.length);
  for (const v of values) c.reply.bulk(v);
}

/** HRANDFIELD key [count [WITHVALUES]]: pairs as [field, value] arrays in RESP3, flat in RESP2. */
function hrandfieldCommand(c: Client, argv: Buffer[]): void {
  const { count, pairs } = randomCount(argv, 'WITHVALUES');
  const ks = c.server.keyspace;
  const r = c.reply;
  if (count === undefined) {
    r.bulk(hashes.hrandfield(ks, c.db, argv[1])?.[0] ?? null);
    return;
  }
  const chosen = hashes.hrandfields(ks, c.db, argv[1], count);
  r.array(pairs && !r.resp3 ? chosen.length * 2 : chosen.length);
  for (const [field, value] of chosen) {
    if (pairs && r.resp3) r.array(2);
    r.bulk(field);
    if (pairs) r.bulk(value);
  }
}

export const hashCommands: CommandSpec[] = [
  keyCommand({
    name: 'hrandfield',
    arity: -2,
    flags: R,
    group: 'hash',
    since: '6.2.0',
    summary: 'Random fields of a hash (distinct with a positive count, repeating with a negative one).',
    run: hrandfieldCommand,
  }),
  keyCommand({
    name: 'hset',
    arity: -4,
    flags: W | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => {
      if (argv.length % 2 !== 0) throw wrongArity('hset');
      c.reply.integer(hashes.hset(c.server.keyspace, c.db, argv[1], argv.slice(2)));
    },
  }),
  keyCommand({
    name: 'hmset',
    arity: -4,
    flags: W | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => {
      if (argv.length % 2 !== 0) throw wrongArity('hmset');
      hashes.hset(c.server.keyspace, c.db, argv[1], argv.slice(2));
      c.reply.ok();
    },
  }),
  keyCommand({
    name: 'hsetnx',
    arity: 4,
    flags: W | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => c.reply.integer(hashes.hset(c.server.keyspace, c.db, argv[1], argv.slice(2), true)),
  }),
  keyCommand({
    name: 'hget',
    arity: 3,
    flags: R | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => c.reply.bulk(hashes.hget(c.server.keyspace, c.db, argv[1], argv[2])),
  }),
  keyCommand({
    name: 'hmget',
    arity: -3,
    flags: R | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => bulkArray(c, hashes.hmget(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  keyCommand({
    name: 'hdel',
    arity: -3,
    flags: W | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => c.reply.integer(hashes.hdel(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  keyCommand({
    name: 'hgetall',
    arity: 2,
    flags: R,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => pairsReply(c, hashes.hgetall(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'hkeys',
    arity: 2,
    flags: R,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) =>
      bulkArray(
        c,
        hashes.hgetall(c.server.keyspace, c.db, argv[1]).map(([f]) => f),
      ),
  }),
  keyCommand({
    name: 'hvals',
    arity: 2,
    flags: R,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) =>
      bulkArray(
        c,
        hashes.hgetall(c.server.keyspace, c.db, argv[1]).map(([, v]) => v),
      ),
  }),
  keyCommand({
    name: 'hlen',
    arity: 2,
    flags: R | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => c.reply.integer(hashes.hlen(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'hstrlen',
    arity: 3,
    flags: R | F,
    group: 'hash',
    since: '3.2.0',
    run: (c, argv) => c.reply.integer(hashes.hstrlen(c.server.keyspace, c.db, argv[1], argv[2])),
  }),
  keyCommand({
    name: 'hexists',
    arity: 3,
    flags: R | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) => c.reply.integer(hashes.hexists(c.server.keyspace, c.db, argv[1], argv[2]) ? 1 : 0),
  }),
  keyCommand({
    name: 'hincrby',
    arity: 4,
    flags: W | F,
    group: 'hash',
    since: '2.0.0',
    run: (c, argv) =>
      c.reply.integer(hashes.hincrBy(c.server.keyspace, c.db, argv[1], argv[2], int64(argv[3]))),
  }),
  keyCommand({
    name: 'hincrbyfloat',
    arity: 4,
    flags: W | F,
    group: 'hash',
    since: '2.6.0',
    run: (c, argv) =>
      c.reply.bulk(hashes.hincrByFloat(c.server.keyspace, c.db, argv[1], argv[2], float(argv[3]))),
  }),
  keyCommand({
    name: 'hscan',
    arity: -3,
    flags: R,
    group: 'hash',
    since: '2.8.0',
    run: (c, argv) => {
      const from = cursor(argv[2]);
      const options = scanOptions(argv, 3, false);
      const result = hashes.hscan(c.server.keyspace, c.db, argv[1], from, options.count, options.match);
      c.reply.array(2);
      c.reply.bulkText(String(result.cursor));
      c.reply.array(result.items.length * 2);
      for (const [field, value] of result.items) {
        c.reply.bulk(field);
        c.reply.bulk(value);
      }
    },
  }),
];
