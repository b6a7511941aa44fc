/**
 * Decoders of the compact blobs Redis stores as one RDB string: listpacks
 * (7.0's small hashes, sets of 7.2, sorted sets and list nodes), ziplists
 * (the same before 7.0), intsets and zipmaps. Each returns the entries in
 * order, integers rendered as the decimal strings Redis would return for
 * them. Every read is bounds-checked: a corrupt blob is an RdbError, never
 * a crash or an endless loop.
 */
import { RdbError } from './rdb-error.js';

const decimal = (n: number | bigint): Buffer => Buffer.from(String(n), 'latin1');

function need(blob: Buffer, at: number, n: number, what: string): void {
  if (at + n > blob.length) throw new RdbError(`${what}: entry runs past the end of the blob`);
}

/** Size of a listpack entry's back-length field for an entry of `size` bytes (encoding + data). */
function backlenBytes(size: number): number {
  if (size <= 127) return 1;
  if (size < 16383) return 2;
  if (size < 2097151) return 3;
  if (size < 268435455) return 4;
  return 5;
}

/** The entries of a listpack: `u32 total bytes, u16 count, entries…, 0xFF`. */
export function listpackEntries(blob: Buffer): Buffer[] {
  if (blob.length < 7) throw new RdbError('listpack: too short');
  if (blob.readUInt32LE(0) !== blob.length) throw new RdbError('listpack: total length mismatch');
  const declared = blob.readUInt16LE(4);
  const out: Buffer[] = [];
  let at = 6;
  for (;;) {
    need(blob, at, 1, 'listpack');
    const b = blob[at];
    if (b === 0xff) break;
    let entry: Buffer;
    let size: number;
    if (b < 0x80) {
      entry = decimal(b);
      size = 1;
    } else if ((b & 0xc0) === 0x80) {
      const len = b & 0x3f;
      need(blob, at, 1 + len, 'listpack');
      entry = blob.subarray(at + 1, at + 1 + len);
      size = 1 + len;
    } else if ((b & 0xe0) === 0xc0) {
      need(blob, at, 2, 'listpack');
      const raw = ((b & 0x1f) << 8) | blob[at + 1];
      entry = decimal(raw >= 4096 ? raw - 8192 : raw);
      size = 2;
    } else if ((b & 0xf0) === 0xe0) {
      need(blob, at, 2, 'listpack');
      const len = ((b & 0x0f) << 8) | blob[at + 1];
      need(blob, at, 2 + len, 'listpack');
      entry = blob.subarray(at + 2, at + 2 + len);
      size = 2 + len;
    } else {
      switch (b) {
        case 0xf0: {
          need(blob, at, 5, 'listpack');
          const len = blob.readUInt32LE(at + 1);
          need(blob, at, 5 + len, 'listpack');
          entry = blob.subarray(at + 5, at + 5 + len);
          size = 5 + len;
          break;
        }
        case 0xf1:
          need(blob, at, 3, 'listpack');
          entry = decimal(blob.readInt16LE(at + 1));
          size = 3;
          break;
        case 0xf2:
          need(blob, at, 4, 'listpack');
          entry = decimal(blob.readIntLE(at + 1, 3));
          size = 4;
          break;
        case 0xf3:
          need(blob, at, 5, 'listpack');
          entry = decimal(blob.readInt32LE(at + 1));
          size = 5;
          break;
        case 0xf4:
          need(blob, at, 9, 'listpack');
          entry = decimal(blob.readBigInt64LE(at + 1));
          size = 9;
          break;
        default:
          throw new RdbError(`listpack: invalid entry encoding 0x${b.toString(16)}`);
      }
    }
    at += size + backlenBytes(size);
    if (at > blob.length) throw new RdbError('listpack: entry runs past the end of the blob');
    out.push(entry);
  }
  if (at !== blob.length - 1) throw new RdbError('listpack: data after the end marker');
  if (declared !== 65535 && declared !== out.length) throw new RdbError('listpack: entry count mismatch');
  return out;
}

/** The entries of a ziplist: `u32 bytes, u32 tail, u16 count, entries…, 0xFF` (RDB before 7.0). */
export function ziplistEntries(blob: Buffer): Buffer[] {
  if (blob.length < 11) throw new RdbError('ziplist: too short');
  if (blob.readUInt32LE(0) !== blob.length) throw new RdbError('ziplist: total length mismatch');
  const declared = blob.readUInt16LE(8);
  const out: Buffer[] = [];
  let at = 10;
  for (;;) {
    need(blob, at, 1, 'ziplist');
    if (blob[at] === 0xff) break;
    // The previous entry's length: 1 byte, or 0xFE and 4 bytes.
    at += blob[at] === 0xfe ? 5 : 1;
    need(blob, at, 1, 'ziplist');
    const b = blob[at];
    const kind = b >>> 6;
    if (kind === 0) {
      const len = b & 0x3f;
      need(blob, at, 1 + len, 'ziplist');
      out.push(blob.subarray(at + 1, at + 1 + len));
      at += 1 + len;
    } else if (kind === 1) {
      need(blob, at, 2, 'ziplist');
      const len = ((b & 0x3f) << 8) | blob[at + 1];
      need(blob, at, 2 + len, 'ziplist');
      out.push(blob.subarray(at + 2, at + 2 + len));
      at += 2 + len;
    } else if (kind === 2) {
      need(blob, at, 5, 'ziplist');
      const len = blob.readUInt32BE(at + 1);
      need(blob, at, 5 + len, 'ziplist');
      out.push(blob.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    } else {
      let width: number;
      let value: number | bigint;
      switch (b) {
        case 0xc0:
          need(blob, at, 3, 'ziplist');
          value = blob.readInt16LE(at + 1);
          width = 2;
          break;
        case 0xd0:
          need(blob, at, 5, 'ziplist');
          value = blob.readInt32LE(at + 1);
          width = 4;
          break;
        case 0xe0:
          need(blob, at, 9, 'ziplist');
          value = blob.readBigInt64LE(at + 1);
          width = 8;
          break;
        case 0xf0:
          need(blob, at, 4, 'ziplist');
          value = blob.readIntLE(at + 1, 3);
          width = 3;
          break;
        case 0xfe:
          need(blob, at, 2, 'ziplist');
          value = blob.readInt8(at + 1);
          width = 1;
          break;
        default:
          if (b >= 0xf1 && b <= 0xfd) {
            value = (b & 0x0f) - 1;
            width = 0;
          } else throw new RdbError(`ziplist: invalid entry encoding 0x${b.toString(16)}`);
      }
      out.push(decimal(value));
      at += 1 + width;
    }
  }
  if (at !== blob.length - 1) throw new RdbError('ziplist: data after the end marker');
  if (declared !== 65535 && declared !== out.length) throw new RdbError('ziplist: entry count mismatch');
  return out;
}

/** The members of an intset: `u32 width (2, 4, 8), u32 count, sorted LE integers`. */
export function intsetMembers(blob: Buffer): Buffer[] {
  if (blob.length < 8) throw new RdbError('intset: too short');
  const width = blob.readUInt32LE(0);
  const count = blob.readUInt32LE(4);
  if (width !== 2 && width !== 4 && width !== 8) throw new RdbError(`intset: invalid width ${width}`);
  if (blob.length !== 8 + width * count) throw new RdbError('intset: length does not match its count');
  const out: Buffer[] = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const at = 8 + i * width;
    out[i] = decimal(
      width === 2 ? blob.readInt16LE(at) : width === 4 ? blob.readInt32LE(at) : blob.readBigInt64LE(at),
    );
  }
  return out;
}

/** The field/value pairs of a zipmap (hashes of RDB files before Redis 2.6). */
export function zipmapPairs(blob: Buffer): Buffer[] {
  if (blob.length < 2) throw new RdbError('zipmap: too short');
  const out: Buffer[] = [];
  let at = 1;
  const length = (): number => {
    need(blob, at, 1, 'zipmap');
    const b = blob[at];
    if (b < 254) {
      at += 1;
      return b;
    }
    if (b === 254) {
      need(blob, at, 5, 'zipmap');
      const n = blob.readUInt32LE(at + 1);
      at += 5;
      return n;
    }
    throw new RdbError('zipmap: invalid length');
  };
  for (;;) {
    need(blob, at, 1, 'zipmap');
    if (blob[at] === 0xff) break;
    const keyLen = length();
    need(blob, at, keyLen, 'zipmap');
    const field = blob.subarray(at, at + keyLen);
    at += keyLen;
    const valueLen = length();
    need(blob, at, 1, 'zipmap');
    const free = blob[at];
    at += 1;
    need(blob, at, valueLen + free, 'zipmap');
    out.push(field, blob.subarray(at, at + valueLen));
    at += valueLen + free;
  }
  return out;
}
