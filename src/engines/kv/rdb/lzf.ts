/**
 * LZF decompression (the `0xC3` string encoding of RDB files; Redis' lzf_d.c
 * format). Replica-side profiles of Redis full syncs spend most of their CPU
 * here, so it writes into one preallocated Buffer and copies literal runs
 * with `copy` rather than byte by byte.
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
      input.copy(out, op, ip, ip + run);
      ip += run;
      op += run;
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
    if (op - ref >= len) {
      out.copy(out, op, ref, ref + len);
      op += len;
    } else {
      for (let i = 0; i < len; i++) out[op++] = out[ref++];
    }
  }
  if (op !== length) throw new RdbError(`LZF: decompressed ${op} bytes, expected ${length}`);
  return out;
}
