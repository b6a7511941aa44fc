/** Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO. */
import * as bitmaps from '../../engines/kv/bitmaps.js';
import { MAX_STRING_BYTES } from '../../engines/kv/kv-errors.js';
import { get } from '../../engines/kv/strings.js';
import { parseInt64 } from '../../engines/kv/numbers.js';
import { int, int64, word } from '../args.js';
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

const BAD_TYPE =
  'Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.';

/** A BITFIELD type: `i1`…`i64` or `u1`…`u63`. */
function fieldType(arg: Buffer): { signed: boolean; bits: number } {
  const signed = arg[0] === 0x69; // i
  if (!signed && arg[0] !== 0x75) throw respError(BAD_TYPE);
  const bits = parseInt64(arg.subarray(1));
  if (typeof bits !== 'number' || bits < 1 || bits > (signed ? 64 : 63)) throw respError(BAD_TYPE);
  return { signed, bits };
}

/** A BITFIELD offset in bits, or `#n`: the n-th field of this width. */
function fieldOffset(arg: Buffer, bits: number): number {
  const multiple = arg[0] === 0x23; // #
  const n = parseInt64(multiple ? arg.subarray(1) : arg);
  const offset = typeof n === 'number' ? (multiple ? n * bits : n) : -1;
  if (offset < 0 || Math.floor(offset / 8) >= MAX_STRING_BYTES)
    throw respError('bit offset is not an integer or out of range');
  return offset;
}

/** BITFIELD's operations, checked in full before any runs (as Redis: one bad argument and nothing is done). */
function bitfieldOps(argv: Buffer[]): bitmaps.BitfieldOp[] {
  const ops: bitmaps.BitfieldOp[] = [];
  let overflow: bitmaps.Overflow = 'wrap';
  for (let j = 2; j < argv.length; j++) {
    const left = argv.length - j - 1;
    const name = word(argv[j]);
    if (name === 'OVERFLOW' && left >= 1) {
      const how = word(argv[++j]);
      if (how !== 'WRAP' && how !== 'SAT' && how !== 'FAIL')
        throw respError('Invalid OVERFLOW type specified');
      overflow = how === 'WRAP' ? 'wrap' : how === 'SAT' ? 'sat' : 'fail';
      continue;
    }
    const kind = name === 'GET' && left >= 2 ? 'get' : name === 'SET' && left >= 3 ? 'set' : 'incrby';
    if (kind === 'incrby' && (name !== 'INCRBY' || left < 3)) throw syntaxError();
    const { signed, bits } = fieldType(argv[j + 1]);
    const offset = fieldOffset(argv[j + 2], bits);
    const value = kind === 'get' ? 0n : BigInt(int64(argv[j + 3]));
    ops.push({ kind, signed, bits, offset, value, overflow });
    j += kind === 'get' ? 2 : 3;
  }
  return ops;
}

function bitfieldCommand(readOnly: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    const ops = bitfieldOps(argv);
    if (readOnly && ops.some((op) => op.kind !== 'get'))
      throw respError('BITFIELD_RO only supports the GET subcommand');
    const results = bitmaps.bitfield(c.server.keyspace, c.db, argv[1], ops);
    c.reply.array(results.length);
    for (const result of results) {
      if (result === null) c.reply.nullBulk();
      else c.reply.integer(result);
    }
  };
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
    name: 'bitfield',
    arity: -2,
    flags: W,
    group: 'bitmap',
    since: '3.2.0',
    summary: 'Reads, sets and increments integer fields of any width and offset in a string.',
    run: bitfieldCommand(false),
  }),
  keyCommand({
    name: 'bitfield_ro',
    arity: -2,
    flags: R | F,
    group: 'bitmap',
    since: '6.0.0',
    summary: 'BITFIELD with GET operations only (served by read-only replicas).',
    run: bitfieldCommand(true),
  }),
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
