/** String commands: GET, SET and friends. */
import { lcs } from '../../engines/kv/lcs.js';
import { KeyType } from '../../engines/kv/record.js';
import * as strings from '../../engines/kv/strings.js';
import { expireTime, float, int, int64, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

const NO_SET_OPTIONS: strings.SetOptions = {};

function setCommand(c: Client, argv: Buffer[]): void {
  // The most frequent write of all: no options to parse, nothing to build for them.
  if (argv.length === 3) {
    strings.set(c.server.keyspace, c.db, argv[1], argv[2], NO_SET_OPTIONS);
    c.reply.ok();
    return;
  }
  let condition: 'nx' | 'xx' | undefined;
  let expireAt: number | undefined;
  let keepTtl = false;
  let get = false;
  for (let i = 3; i < argv.length; i++) {
    const option = word(argv[i]);
    const next = argv[i + 1];
    if (option === 'NX' && condition === undefined) condition = 'nx';
    else if (option === 'XX' && condition === undefined) condition = 'xx';
    else if (option === 'GET' && !get) get = true;
    else if (option === 'KEEPTTL' && expireAt === undefined && !keepTtl) keepTtl = true;
    else if (
      (option === 'EX' || option === 'PX' || option === 'EXAT' || option === 'PXAT') &&
      next !== undefined
    ) {
      if (expireAt !== undefined || keepTtl) throw syntaxError();
      expireAt = expireTime(next, option.startsWith('E') ? 's' : 'ms', option.endsWith('AT'), 'set');
      i++;
    } else throw syntaxError();
  }
  const result = strings.set(c.server.keyspace, c.db, argv[1], argv[2], {
    ...(condition === undefined ? {} : { condition }),
    ...(expireAt === undefined ? {} : { expireAt }),
    keepTtl,
    get,
  });
  if (get) c.reply.bulk(result.previous);
  else if (result.written) c.reply.ok();
  else c.reply.nullBulk();
}

function bulkOrNullArray(c: Client, values: (Buffer | null)[]): void {
  c.reply.array(values.length);
  for (const v of values) c.reply.bulk(v);
}

function getExCommand(c: Client, argv: Buffer[]): void {
  let option: strings.GetExOption;
  if (argv.length > 2) {
    const name = word(argv[2]);
    if (name === 'PERSIST' && argv.length === 3) option = { persist: true };
    else if ((name === 'EX' || name === 'PX' || name === 'EXAT' || name === 'PXAT') && argv.length === 4) {
      option = {
        expireAt: expireTime(argv[3], name.startsWith('E') ? 's' : 'ms', name.endsWith('AT'), 'getex'),
      };
    } else throw syntaxError();
  }
  c.reply.bulk(strings.getEx(c.server.keyspace, c.db, argv[1], option));
}

/** LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]. */
function lcsCommand(c: Client, argv: Buffer[]): void {
  const ks = c.server.keyspace;
  const values = [argv[1], argv[2]].map((key) => {
    const record = ks.lookupRead(c.db, key);
    if (record !== undefined && record.type !== KeyType.String) {
      throw respError('The specified keys must contain string values');
    }
    return record === undefined ? Buffer.alloc(0) : Buffer.from(record.value);
  });
  let length = false;
  let indexes = false;
  let withLengths = false;
  let minMatchLength = 0;
  for (let j = 3; j < argv.length; j++) {
    const option = word(argv[j]);
    if (option === 'IDX') indexes = true;
    else if (option === 'LEN') length = true;
    else if (option === 'WITHMATCHLEN') withLengths = true;
    else if (option === 'MINMATCHLEN' && j + 1 < argv.length) minMatchLength = Math.max(0, int(argv[++j]));
    else throw syntaxError();
  }
  if (length && indexes) throw respError('If you want both the length and indexes, please just use IDX.');
  const result = lcs(values[0], values[1], { sequence: indexes || !length, minMatchLength });
  const r = c.reply;
  if (!indexes) {
    if (length) r.integer(result.length);
    else r.bulk(result.sequence);
    return;
  }
  r.map(2);
  r.bulkText('matches');
  r.array(result.matches.length);
  for (const match of result.matches) {
    r.array(withLengths ? 3 : 2);
    for (const [start, end] of [match.a, match.b]) {
      r.array(2);
      r.integer(start);
      r.integer(end);
    }
    if (withLengths) r.integer(match.length);
  }
  r.bulkText('len');
  r.integer(result.length);
}

export const stringCommands: CommandSpec[] = [
  command({
    name: 'lcs',
    arity: -3,
    flags: Flag.ReadOnly,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'string',
    since: '7.0.0',
    summary: 'The longest common subsequence of two strings (LEN, IDX with the matching ranges).',
    run: lcsCommand,
  }),
  keyCommand({
    name: 'get',
    arity: 2,
    flags: R | F,
    group: 'string',
    summary: 'Returns the string value of a key.',
    run: (c, argv) => c.reply.bulk(strings.get(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'set',
    arity: -3,
    flags: W,
    group: 'string',
    summary: 'Sets the string value of a key, ignoring its type. The key is created if it does not exist.',
    run: setCommand,
  }),
  keyCommand({
    name: 'setnx',
    arity: 3,
    flags: W | F,
    group: 'string',
    run: (c, argv) =>
      c.reply.integer(
        strings.set(c.server.keyspace, c.db, argv[1], argv[2], { condition: 'nx' }).written ? 1 : 0,
      ),
  }),
  keyCommand({
    name: 'setex',
    arity: 4,
    flags: W,
    group: 'string',
    since: '2.0.0',
    run: (c, argv) => {
      const expireAt = expireTime(argv[2], 's', false, 'setex');
      strings.set(c.server.keyspace, c.db, argv[1], argv[3], { expireAt });
      c.reply.ok();
    },
  }),
  keyCommand({
    name: 'psetex',
    arity: 4,
    flags: W,
    group: 'string',
    since: '2.6.0',
    run: (c, argv) => {
      const expireAt = expireTime(argv[2], 'ms', false, 'psetex');
      strings.set(c.server.keyspace, c.db, argv[1], argv[3], { expireAt });
      c.reply.ok();
    },
  }),
  command({
    name: 'mget',
    arity: -2,
    flags: R | F,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'string',
    run: (c, argv) => bulkOrNullArray(c, strings.mget(c.server.keyspace, c.db, argv.slice(1))),
  }),
  command({
    name: 'mset',
    arity: -3,
    flags: W,
    firstKey: 1,
    lastKey: -1,
    step: 2,
    group: 'string',
    since: '1.0.1',
    run: (c, argv) => {
      if (argv.length % 2 === 0) throw respError("wrong number of arguments for 'mset' command");
      strings.mset(c.server.keyspace, c.db, argv.slice(1));
      c.reply.ok();
    },
  }),
  command({
    name: 'msetnx',
    arity: -3,
    flags: W,
    firstKey: 1,
    lastKey: -1,
    step: 2,
    group: 'string',
    since: '1.0.1',
    run: (c, argv) => {
      if (argv.length % 2 === 0) throw respError("wrong number of arguments for 'msetnx' command");
      c.reply.integer(strings.mset(c.server.keyspace, c.db, argv.slice(1), true) ? 1 : 0);
    },
  }),
  keyCommand({
    name: 'incr',
    arity: 2,
    flags: W | F,
    group: 'string',
    run: (c, argv) => c.reply.integer(strings.incrBy(c.server.keyspace, c.db, argv[1], 1)),
  }),
  keyCommand({
    name: 'decr',
    arity: 2,
    flags: W | F,
    group: 'string',
    run: (c, argv) => c.reply.integer(strings.incrBy(c.server.keyspace, c.db, argv[1], -1)),
  }),
  keyCommand({
    name: 'incrby',
    arity: 3,
    flags: W | F,
    group: 'string',
    run: (c, argv) => c.reply.integer(strings.incrBy(c.server.keyspace, c.db, argv[1], int64(argv[2]))),
  }),
  keyCommand({
    name: 'decrby',
    arity: 3,
    flags: W | F,
    group: 'string',
    run: (c, argv) => {
      const delta = int64(argv[2]);
      if (delta === -(2n ** 63n)) throw respError('decrement would overflow');
      c.reply.integer(
        strings.incrBy(c.server.keyspace, c.db, argv[1], typeof delta === 'bigint' ? -delta : -delta),
      );
    },
  }),
  keyCommand({
    name: 'incrbyfloat',
    arity: 3,
    flags: W | F,
    group: 'string',
    since: '2.6.0',
    run: (c, argv) => c.reply.bulk(strings.incrByFloat(c.server.keyspace, c.db, argv[1], float(argv[2]))),
  }),
  keyCommand({
    name: 'append',
    arity: 3,
    flags: W | F,
    group: 'string',
    since: '2.0.0',
    run: (c, argv) => c.reply.integer(strings.append(c.server.keyspace, c.db, argv[1], argv[2])),
  }),
  keyCommand({
    name: 'strlen',
    arity: 2,
    flags: R | F,
    group: 'string',
    since: '2.2.0',
    run: (c, argv) => c.reply.integer(strings.strlen(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'getrange',
    arity: 4,
    flags: R,
    group: 'string',
    since: '2.4.0',
    run: (c, argv) =>
      c.reply.bulk(strings.getRange(c.server.keyspace, c.db, argv[1], int(argv[2]), int(argv[3]))),
  }),
  keyCommand({
    name: 'substr',
    arity: 4,
    flags: R,
    group: 'string',
    run: (c, argv) =>
      c.reply.bulk(strings.getRange(c.server.keyspace, c.db, argv[1], int(argv[2]), int(argv[3]))),
  }),
  keyCommand({
    name: 'setrange',
    arity: 4,
    flags: W,
    group: 'string',
    since: '2.2.0',
    run: (c, argv) => {
      const offset = int(argv[2]);
      if (offset < 0) throw respError('offset is out of range');
      c.reply.integer(strings.setRange(c.server.keyspace, c.db, argv[1], offset, argv[3]));
    },
  }),
  keyCommand({
    name: 'getset',
    arity: 3,
    flags: W | F,
    group: 'string',
    run: (c, argv) =>
      c.reply.bulk(strings.set(c.server.keyspace, c.db, argv[1], argv[2], { get: true }).previous),
  }),
  keyCommand({
    name: 'getdel',
    arity: 2,
    flags: W | F,
    group: 'string',
    since: '6.2.0',
    run: (c, argv) => c.reply.bulk(strings.getDel(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'getex',
    arity: -2,
    flags: W | F,
    group: 'string',
    since: '6.2.0',
    run: getExCommand,
  }),
];
