/**
 * The RDB file format's numbers (Redis' rdb.h, up to RDB 12): top-level
 * opcodes, value types, and the special string encodings.
 */

export const Opcode = {
  /** One function library: its code as one string (Redis 7.0 GA). */
  Function2: 0xf5,
  /** The pre-GA 7.0 function format, which Redis 7.0 itself refuses. */
  FunctionPreGa: 0xf6,
  ModuleAux: 0xf7,
  Idle: 0xf8,
  Freq: 0xf9,
  Aux: 0xfa,
  ResizeDb: 0xfb,
  ExpireTimeMs: 0xfc,
  ExpireTime: 0xfd,
  SelectDb: 0xfe,
  Eof: 0xff,
} as const;

export const ValueType = {
  String: 0,
  List: 1,
  Set: 2,
  /** Scores as length-prefixed ASCII. */
  ZSet: 3,
  Hash: 4,
  /** Scores as binary doubles, highest first. */
  ZSet2: 5,
  ModulePreGa: 6,
  Module2: 7,
  HashZipmap: 9,
  ListZiplist: 10,
  SetIntset: 11,
  ZSetZiplist: 12,
  HashZiplist: 13,
  ListQuicklist: 14,
  StreamListpacks: 15,
  HashListpack: 16,
  ZSetListpack: 17,
  ListQuicklist2: 18,
  StreamListpacks2: 19,
  SetListpack: 20,
  StreamListpacks3: 21,
} as const;

/** Quicklist 2 node containers. */
export const QuicklistContainer = { Plain: 1, Packed: 2 } as const;

/** `11xxxxxx` length bytes: the low bits say how the string is encoded. */
export const StringEncoding = { Int8: 0, Int16: 1, Int32: 2, Lzf: 3 } as const;

/** Module value opcodes (values written through the module API are tagged with them). */
export const ModuleOpcode = { Eof: 0, SInt: 1, UInt: 2, Float: 3, Double: 4, String: 5 } as const;

/** Oldest and newest RDB versions this reader accepts. */
export const MIN_RDB_VERSION = 1;
export const MAX_RDB_VERSION = 12;

/** Redis' proto-max-bulk-len: no string of a valid RDB is longer. */
export const MAX_STRING_BYTES = 512 * 1024 * 1024;
