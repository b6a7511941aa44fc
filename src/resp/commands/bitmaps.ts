/** Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP. */
import * as bitmaps from '../../engines/kv/bitmaps.js';
import { MAX_STRING_BYTES } from '../../engines/kv/kv-errors.js';
import { get } from '../../engines/kv/strings.js';
import { int, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

/** A bit offset: 0 up to the last bit of the largest string. */
function bitOffset(arg: Buffer): number {
  let offset: number;
  try {
    offset = int(arg);
  } catch {
    offset = -1;
  }
  if (offset < 0 || offset >= MAX_STRING_BYTES * 8)
    throw respError('bit offset is not an integer or out of range');
  return offset;
}

function unit(arg: Buffer | undefined): bitmaps.RangeUnit {
  if (arg === undefined) return 'byte';
  const given = word(arg);
  if (given === 'BYTE') return 'byte';
  if (given === 'BIT') return 'bit';
  throw syntaxError();
}

function bitcountCommand(c: Client, argv: Buffer[]): void {
  const ks = c.server.keyspace;
  // As Redis: a missing key counts 0 (and a key of another type is refused) before the range is read.
  if (get(ks, c.db, argv[1]) === null) {
    c.reply.integer(0);
    return;
  }
  if (argv.length === 2) {
    c.reply.integer(bitmaps.bitCount(ks, c.db, argv[1]));
    return;
  }
  if (argv.length !== 4 && argv.length !== 5) throw syntaxError();
  const range = { start: int(argv[2]), end: int(argv[3]), unit: unit(argv[4]) };
  c.reply.integer(bitmaps.bitCount(ks, c.db, argv[1], range));
}

function bitposCommand(c: Client, argv: Buffer[]): void {
  const bit = int(argv[2]);
  if (bit !== 0 && bit !== 1) throw respError('The bit argument must be 1 or 0.');
  if (argv.length > 6) throw syntaxError();
  const ks = c.server.keyspace;
  if (get(ks, c.db, argv[1]) === null) {
    c.reply.integer(bit === 1 ? -1 : 0);
    return;
  }
  const range = {
    ...(argv.length > 3 ? { start: int(argv[3]) } : {}),
    ...(argv.length > 4 ? { end: int(argv[4]) } : {}),
    unit: unit(argv[5]),
  };
  c.reply.integer(bitmaps.bitPos(ks, c.db, argv[1], bit, range));
}

function bitopCommand(c: Client, argv: Buffer[]): void {
  const operation = word(argv[1]).toLowerCase();
  if (operation !== 'and' && operation !== 'or' && operation !== 'xor' && operation !== 'not')
    throw syntaxError();
  const sources = argv.slice(3);
  if (operation === 'not' && sources.length !== 1) {
    throw respError('BITOP NOT must be called with a single source key.');
  }
  c.reply.integer(bitmaps.bitOp(c.server.keyspace, c.db, operation, argv[2], sources));
}

export const bitmapCommands: CommandSpec[] = [
  keyCommand({
    name: 'setbit',
    arity: 4,
    flags: W,
    group: 'bitmap',
    since: '2.2.0',
    run: (c, argv) => {
      const offset = bitOffset(argv[2]);
      const value = argv[3].toString('latin1');
      if (value !== '0' && value !== '1') throw respError('bit is not an integer or out of range');
      c.reply.integer(bitmaps.setBit(c.server.keyspace, c.db, argv[1], offset, value === '1'));
    },
  }),
  keyCommand({
    name: 'getbit',
    arity: 3,
    flags: R | F,
    group: 'bitmap',
    since: '2.2.0',
    run: (c, argv) => c.reply.integer(bitmaps.getBit(c.server.keyspace, c.db, argv[1], bitOffset(argv[2]))),
  }),
  keyCommand({
    name: 'bitcount',
    arity: -2,
    flags: R,
    group: 'bitmap',
    since: '2.6.0',
    run: bitcountCommand,
  }),
  keyCommand({ name: 'bitpos', arity: -3, flags: R, group: 'bitmap', since: '2.8.7', run: bitposCommand }),
  command({
    name: 'bitop',
    arity: -4,
    flags: W,
    firstKey: 2,
    lastKey: -1,
    step: 1,
    group: 'bitmap',
    since: '2.6.0',
    run: bitopCommand,
  }),
];
