/** Generic key commands: DEL, EXISTS, TYPE, the EXPIRE family, KEYS, SCAN, RENAME, COPY, MOVE, DBSIZE, FLUSH*. */
import { copyKey, moveKey } from '../../engines/kv/copy-key.js';
import { sort, type SortOptions } from '../../engines/kv/sort.js';
import { DATABASES, type ExpireCondition } from '../../engines/kv/keyspace.js';
import type { KeyType } from '../../engines/kv/record.js';
import { TYPE_NAMES } from '../../engines/kv/record.js';
import { cursor, int, int64, scanOptions, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

/** A database index argument: an integer, then within range. */
function databaseIndex(arg: Buffer): number {
  const db = int(arg);
  if (db < 0 || db >= DATABASES) throw respError('DB index is out of range');
  return db;
}

const sameObject = (): Error => respError('source and destination objects are the same');

function copyCommand(c: Client, argv: Buffer[]): void {
  let replace = false;
  let targetDb = c.db;
  for (let j = 3; j < argv.length; j++) {
    const option = word(argv[j]);
    if (option === 'REPLACE') replace = true;
    else if (option === 'DB' && j + 1 < argv.length) targetDb = databaseIndex(argv[++j]);
    else throw syntaxError();
  }
  if (targetDb === c.db && argv[1].equals(argv[2])) throw sameObject();
  c.reply.integer(copyKey(c.server.keyspace, c.db, argv[1], targetDb, argv[2], replace) ? 1 : 0);
}

function moveCommand(c: Client, argv: Buffer[]): void {
  const targetDb = databaseIndex(argv[2]);
  if (targetDb === c.db) throw sameObject();
  c.reply.integer(moveKey(c.server.keyspace, c.db, argv[1], targetDb) ? 1 : 0);
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with Redis 7.0's checks in Redis'
 * order: every option first (the first unknown one is the error), then the
 * incompatible combinations, then the number, then int64 overflow.
 */
function expireCommand(unit: 's' | 'ms', absolute: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    const conditions: ExpireCondition[] = [];
    for (let i = 3; i < argv.length; i++) {
      const option = word(argv[i]).toLowerCase();
      if (option !== 'nx' && option !== 'xx' && option !== 'gt' && option !== 'lt') {
        throw respError(`Unsupported option ${argv[i].toString('latin1')}`);
      }
      if (!conditions.includes(option)) conditions.push(option);
    }
    const has = (option: ExpireCondition): boolean => conditions.includes(option);
    if (has('nx') && (has('xx') || has('gt') || has('lt'))) {
      throw respError('NX and XX, GT or LT options at the same time are not compatible');
    }
    if (has('gt') && has('lt')) throw respError('GT and LT options at the same time are not compatible');
    let when = BigInt(int64(argv[2]));
    const invalid = (): Error => respError(`invalid expire time in '${word(argv[0]).toLowerCase()}' command`);
    if (unit === 's') {
      if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) throw invalid();
      when *= 1000n;
    }
    const base = absolute ? 0n : BigInt(Date.now());
    if (when > INT64_MAX - base) throw invalid();
    // Far-future times beyond 2^53 ms lose precision in storage; Redis accepts them, so do we.
    c.reply.integer(c.server.keyspace.expireAt(c.db, argv[1], Number(when + base), conditions));
  };
}

const TYPES: Record<string, KeyType> = Object.fromEntries(
  Object.entries(TYPE_NAMES).map(([type, name]) => [name, Number(type) as KeyType]),
);

function scanCommand(c: Client, argv: Buffer[]): void {
  const from = cursor(argv[1]);
  const options = scanOptions(argv, 2, true);
  let type: KeyType | undefined;
  if (options.type !== undefined) {
    type = TYPES[options.type];
    if (type === undefined) {
      // Redis answers an unknown type with an empty page.
      c.reply.array(2);
      c.reply.bulkText('0');
      c.reply.array(0);
      return;
    }
  }
  const result = c.server.keyspace.scan(c.db, from, options.count, options.match, type);
  c.reply.array(2);
  c.reply.bulkText(String(result.cursor));
  c.reply.array(result.items.length);
  for (const key of result.items) c.reply.bulk(key);
}

function flushMode(argv: Buffer[]): void {
  if (argv.length > 2) throw syntaxError();
  if (argv.length === 2) {
    const mode = word(argv[1]);
    if (mode !== 'ASYNC' && mode !== 'SYNC') throw syntaxError();
  }
}

const multiKey = { firstKey: 1, lastKey: -1, step: 1 } as const;

/** SORT's and SORT_RO's options, in Redis' order of checks (SORT_RO has no STORE). */
function sortOptions(argv: Buffer[], readOnly: boolean): SortOptions {
  let desc = false;
  let alpha = false;
  let by: Buffer | undefined;
  let limit: SortOptions['limit'];
  let store: Buffer | undefined;
  const get: Buffer[] = [];
  for (let j = 2; j < argv.length; j++) {
    const left = argv.length - j - 1;
    const option = word(argv[j]);
    if (option === 'ASC') desc = false;
    else if (option === 'DESC') desc = true;
    else if (option === 'ALPHA') alpha = true;
    else if (option === 'LIMIT' && left >= 2) {
      limit = { offset: int(argv[j + 1]), count: int(argv[j + 2]) };
      j += 2;
    } else if (!readOnly && option === 'STORE' && left >= 1) store = argv[++j];
    else if (option === 'BY' && left >= 1) by = argv[++j];
    else if (option === 'GET' && left >= 1) get.push(argv[++j]);
    else throw syntaxError();
  }
  return {
    desc,
    alpha,
    get,
    ...(by === undefined ? {} : { by }),
    ...(limit === undefined ? {} : { limit }),
    ...(store === undefined ? {} : { store }),
  };
}

function sortCommand(readOnly: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    const result = sort(c.server.keyspace, c.db, argv[1], sortOptions(argv, readOnly));
    if (typeof result === 'number') {
      c.reply.integer(result);
      return;
    }
    c.reply.array(result.length);
    for (const value of result) c.reply.bulk(value);
  };
}

export const keyCommands: CommandSpec[] = [
  keyCommand({
    name: 'sort',
    arity: -2,
    flags: W,
    group: 'generic',
    summary:
      'Sorts a list, set or sorted set (BY, LIMIT, GET, ASC|DESC, ALPHA), optionally storing the result.',
    run: sortCommand(false),
  }),
  keyCommand({
    name: 'sort_ro',
    arity: -2,
    flags: R,
    group: 'generic',
    since: '7.0.0',
    summary: 'SORT without STORE (served by read-only replicas).',
    run: sortCommand(true),
  }),
  command({
    name: 'del',
    arity: -2,
    flags: W,
    ...multiKey,
    group: 'generic',
    summary: 'Deletes one or more keys.',
    run: (c, argv) => c.reply.integer(c.server.keyspace.del(c.db, argv.slice(1))),
  }),
  command({
    name: 'unlink',
    arity: -2,
    flags: W | F,
    ...multiKey,
    group: 'generic',
    since: '4.0.0',
    run: (c, argv) => c.reply.integer(c.server.keyspace.del(c.db, argv.slice(1))),
  }),
  command({
    name: 'exists',
    arity: -2,
    flags: R | F,
    ...multiKey,
    group: 'generic',
    run: (c, argv) => c.reply.integer(c.server.keyspace.exists(c.db, argv.slice(1))),
  }),
  command({
    name: 'touch',
    arity: -2,
    flags: R | F,
    ...multiKey,
    group: 'generic',
    since: '3.2.1',
    run: (c, argv) => c.reply.integer(c.server.keyspace.exists(c.db, argv.slice(1))),
  }),
  keyCommand({
    name: 'type',
    arity: 2,
    flags: R | F,
    group: 'generic',
    run: (c, argv) => c.reply.simple(c.server.keyspace.type(c.db, argv[1])),
  }),
  keyCommand({ name: 'expire', arity: -3, flags: W | F, group: 'generic', run: expireCommand('s', false) }),
  keyCommand({
    name: 'pexpire',
    arity: -3,
    flags: W | F,
    group: 'generic',
    since: '2.6.0',
    run: expireCommand('ms', false),
  }),
  keyCommand({
    name: 'expireat',
    arity: -3,
    flags: W | F,
    group: 'generic',
    since: '1.2.0',
    run: expireCommand('s', true),
  }),
  keyCommand({
    name: 'pexpireat',
    arity: -3,
    flags: W | F,
    group: 'generic',
    since: '2.6.0',
    run: expireCommand('ms', true),
  }),
  keyCommand({
    name: 'ttl',
    arity: 2,
    flags: R | F,
    group: 'generic',
    run: (c, argv) => {
      const ms = c.server.keyspace.pttl(c.db, argv[1]);
      c.reply.integer(ms < 0 ? ms : Math.floor((ms + 500) / 1000));
    },
  }),
  keyCommand({
    name: 'pttl',
    arity: 2,
    flags: R | F,
    group: 'generic',
    since: '2.6.0',
    run: (c, argv) => c.reply.integer(c.server.keyspace.pttl(c.db, argv[1])),
  }),
  keyCommand({
    name: 'expiretime',
    arity: 2,
    flags: R | F,
    group: 'generic',
    since: '7.0.0',
    run: (c, argv) => {
      const at = c.server.keyspace.expireTime(c.db, argv[1]);
      c.reply.integer(at < 0 ? at : Math.floor(at / 1000));
    },
  }),
  keyCommand({
    name: 'pexpiretime',
    arity: 2,
    flags: R | F,
    group: 'generic',
    since: '7.0.0',
    run: (c, argv) => c.reply.integer(c.server.keyspace.expireTime(c.db, argv[1])),
  }),
  keyCommand({
    name: 'persist',
    arity: 2,
    flags: W | F,
    group: 'generic',
    since: '2.2.0',
    run: (c, argv) => c.reply.integer(c.server.keyspace.persist(c.db, argv[1])),
  }),
  command({
    name: 'keys',
    arity: 2,
    flags: R,
    group: 'generic',
    run: (c, argv) => {
      const keys = c.server.keyspace.keys(c.db, argv[1]);
      c.reply.array(keys.length);
      for (const key of keys) c.reply.bulk(key);
    },
  }),
  command({ name: 'scan', arity: -2, flags: R, group: 'generic', since: '2.8.0', run: scanCommand }),
  command({
    name: 'randomkey',
    arity: 1,
    flags: R,
    group: 'generic',
    run: (c) => c.reply.bulk(c.server.keyspace.randomKey(c.db) ?? null),
  }),
  command({
    name: 'rename',
    arity: 3,
    flags: W,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'generic',
    run: (c, argv) => {
      c.server.keyspace.rename(c.db, argv[1], argv[2]);
      c.reply.ok();
    },
  }),
  command({
    name: 'renamenx',
    arity: 3,
    flags: W | F,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'generic',
    run: (c, argv) => c.reply.integer(c.server.keyspace.rename(c.db, argv[1], argv[2], true) ? 1 : 0),
  }),
  command({
    name: 'dbsize',
    arity: 1,
    flags: R | F,
    group: 'server',
    run: (c) => c.reply.integer(c.server.keyspace.dbSize(c.db)),
  }),
  command({
    name: 'flushdb',
    arity: -1,
    flags: W,
    group: 'server',
    run: (c, argv) => {
      flushMode(argv);
      c.server.keyspace.flushDb(c.db);
      c.reply.ok();
    },
  }),
  command({
    name: 'swapdb',
    arity: 3,
    flags: W,
    group: 'server',
    since: '4.0.0',
    summary: 'Swaps two databases: every key of one is then in the other.',
    run: (c, argv) => {
      const index = (arg: Buffer, which: string): number => {
        try {
          return int(arg);
        } catch {
          throw respError(`invalid ${which} DB index`);
        }
      };
      const [db, other] = [index(argv[1], 'first'), index(argv[2], 'second')];
      if ([db, other].some((n) => n < 0 || n >= DATABASES)) throw respError('DB index is out of range');
      c.server.keyspace.swapDb(db, other);
      c.reply.ok();
    },
  }),
  command({
    name: 'flushall',
    arity: -1,
    flags: W | Flag.Admin,
    group: 'server',
    run: (c, argv) => {
      flushMode(argv);
      c.server.keyspace.flushAll();
      c.reply.ok();
    },
  }),
  command({
    name: 'copy',
    arity: -3,
    flags: W,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'generic',
    since: '6.2.0',
    run: copyCommand,
  }),
  keyCommand({ name: 'move', arity: 3, flags: W | F, group: 'generic', run: moveCommand }),
];
