/**
 * LCS: the longest common subsequence of two strings by the classic dynamic
 * programming table, walked back from the end as Redis 7.0 walks it, so the
 * subsequence chosen among equally long ones, and the matching ranges IDX
 * reports (last first), are Redis' own.
 */
import { DoppelError, ErrorKind } from '../../errors.js';

/** One contiguous run common to both strings: inclusive byte ranges in `a` and `b`. */
export interface LcsMatch {
  readonly a: readonly [number, number];
  readonly b: readonly [number, number];
  readonly length: number;
}

export interface LcsResult {
  readonly length: number;
  /** The subsequence itself (computed unless only the length was asked for). */
  readonly sequence: Buffer | null;
  /** The runs, from the end of the strings backwards, of at least `minMatchLength` bytes. */
  readonly matches: LcsMatch[];
}

/** Redis refuses an LCS table larger than proto-max-bulk-len (512 MB). */
const MAX_TABLE_BYTES = 512 * 1024 * 1024;

export function lcs(a: Buffer, b: Buffer, options: { sequence: boolean; minMatchLength: number }): LcsResult {
  const width = b.length + 1;
  if ((a.length + 1) * width * 4 > MAX_TABLE_BYTES) {
    throw new DoppelError(
      ErrorKind.BadRequest,
      'Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len',
    );
  }
  // table[i * width + j]: the LCS length of a[0..i) and b[0..j).
  const table = new Uint32Array((a.length + 1) * width);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      table[i * width + j] =
        a[i - 1] === b[j - 1]
          ? table[(i - 1) * width + j - 1] + 1
          : Math.max(table[(i - 1) * width + j], table[i * width + j - 1]);
    }
  }
  const length = table[a.length * width + b.length];
  if (!options.sequence) return { length, sequence: null, matches: [] };

  const sequence = Buffer.alloc(length);
  const matches: LcsMatch[] = [];
  let left = length;
  // The run being extended backwards; `runA` null: none open.
  let runA: [number, number] | null = null;
  let runB: [number, number] = [0, 0];
  let i = a.length;
  let j = b.length;
  while (i > 0 && j > 0) {
    let close = false;
    if (a[i - 1] === b[j - 1]) {
      sequence[--left] = a[i - 1];
      if (runA === null) {
        runA = [i - 1, i - 1];
        runB = [j - 1, j - 1];
      } else if (runA[0] === i && runB[0] === j) {
        runA[0]--;
        runB[0]--;
      } else {
        close = true;
      }
      // A run that reached the first byte of either string ends here.
      if (runA[0] === 0 || runB[0] === 0) close = true;
      i--;
      j--;
    } else {
      if (table[(i - 1) * width + j] > table[i * width + j - 1]) i--;
      else j--;
      if (runA !== null) close = true;
    }
    if (close && runA !== null) {
      const runLength = runA[1] - runA[0] + 1;
      if (runLength >= options.minMatchLength) {
        matches.push({ a: [runA[0], runA[1]], b: [runB[0], runB[1]], length: runLength });
      }
      runA = null;
    }
  }
  return { length, sequence, matches };
}
