/**
 * HyperLogLogs (PFADD, PFCOUNT, PFMERGE) byte for byte as Redis 7 stores
 * them, so that a copy of a Redis primary that replays its PFADDs holds the
 * very same strings: a 16-byte header ("HYLL", the encoding, the cached
 * cardinality, little endian, its top bit set when stale), then 16,384
 * six-bit registers, either dense (12,288 bytes) or sparse (run-length
 * opcodes, up to 3,000 bytes; then dense). Elements are hashed with
 * MurmurHash64A, seed 0xadc83b19. Writes journal as the string writes they
 * amount to (SET, or SETRANGE of what changed).
 */
import type { Keyspace } from './keyspace.js';
import { DoppelError, ErrorKind } from '../../errors.js';
import { get, set, setRange } from './strings.js';

const P = 14;
const REGISTERS = 1 << P;
const Q = 64 - P;
const HEADER = 16;
const DENSE = 0;
const SPARSE = 1;
const DENSE_SIZE = HEADER + (REGISTERS * 6) / 8;
const SPARSE_MAX_BYTES = 3000;
const SPARSE_VAL_MAX_VALUE = 32;
const SPARSE_VAL_MAX_LEN = 4;
const SPARSE_ZERO_MAX_LEN = 64;
const SPARSE_XZERO_MAX_LEN = 16384;
/** 0.5 / ln 2 (Redis spells it with more digits than a double holds). */
const ALPHA_INF = 0.7213475204444817;
const CARD = 8;

const notHll = (): DoppelError =>
  new DoppelError(ErrorKind.BadRequest, 'Key is not a valid HyperLogLog string value.', {
    errorName: 'WRONGTYPE',
  });
const corrupted = (): DoppelError =>
  new DoppelError(ErrorKind.BadRequest, 'Corrupted HLL object detected', { errorName: 'INVALIDOBJ' });

// ---- hashing ------------------------------------------------------------------
// 64-bit arithmetic in two 32-bit halves: BigInt code of this shape crashes the optimizing
// compiler of Node 20 (V8 11.3: "RepresentationChangerError … UnsignedBigInt64").

const M_HI = 0xc6a4a793;
const M_LO = 0x5bd1e995;
const SEED = 0xadc83b19;

/** (hi, lo) × (M_HI, M_LO) mod 2^64, into `out`. */
function timesM(hi: number, lo: number, out: Uint32Array): void {
  const a0 = lo & 0xffff;
  const a1 = lo >>> 16;
  const b0 = M_LO & 0xffff;
  const b1 = M_LO >>> 16;
  const middle = a1 * b0 + a0 * b1;
  const low = a0 * b0 + (middle % 0x10000) * 0x10000;
  const carry = Math.floor(low / 0x100000000);
  out[1] = low >>> 0;
  out[0] = a1 * b1 + Math.floor(middle / 0x10000) + carry + Math.imul(hi, M_LO) + Math.imul(lo, M_HI);
}

const word = new Uint32Array(2);

/** MurmurHash64A (Redis' hash for HyperLogLogs), as [high, low] 32-bit halves in `out`. */
function murmurHash64A(data: Buffer, out: Uint32Array): void {
  const len = data.length;
  timesM(0, len, out);
  let hHi = out[0];
  let hLo = (out[1] ^ SEED) >>> 0;
  const whole = len - (len & 7);
  for (let i = 0; i < whole; i += 8) {
    timesM(data.readUInt32LE(i + 4), data.readUInt32LE(i), word);
    let kHi = word[0];
    let kLo = word[1];
    kLo = (kLo ^ (kHi >>> 15)) >>> 0;
    timesM(kHi, kLo, word);
    kHi = word[0];
    kLo = word[1];
    timesM((hHi ^ kHi) >>> 0, (hLo ^ kLo) >>> 0, word);
    hHi = word[0];
    hLo = word[1];
  }
  const rest = len & 7;
  if (rest > 0) {
    for (let i = rest - 1; i >= 0; i--) {
      if (i >= 4) hHi = (hHi ^ (data[whole + i] << (8 * (i - 4)))) >>> 0;
      else hLo = (hLo ^ (data[whole + i] << (8 * i))) >>> 0;
    }
    timesM(hHi, hLo, word);
    hHi = word[0];
    hLo = word[1];
  }
  hLo = (hLo ^ (hHi >>> 15)) >>> 0;
  timesM(hHi, hLo, word);
  hHi = word[0];
  hLo = word[1];
  out[0] = hHi;
  out[1] = (hLo ^ (hHi >>> 15)) >>> 0;
}

const hashed = new Uint32Array(2);

/** The register an element lands in and the run length it counts (1 + trailing zeros, at most Q + 1). */
function registerOf(element: Buffer): { index: number; count: number } {
  murmurHash64A(element, hashed);
  const [hi, lo] = hashed;
  const index = lo & (REGISTERS - 1);
  // The remaining 50 bits, with bit 50 set so that the run ends.
  const restLo = ((lo >>> P) | (hi << (32 - P))) >>> 0;
  const restHi = ((hi >>> P) | (1 << (Q - 32))) >>> 0;
  const trailingZeros = (x: number): number => 31 - Math.clz32(x & -x);
  const count = restLo !== 0 ? trailingZeros(restLo) + 1 : 32 + trailingZeros(restHi) + 1;
  return { index, count };
}

// ---- dense registers ----------------------------------------------------------

function denseGet(hll: Buffer, register: number): number {
  const at = HEADER + ((register * 6) >> 3);
  const shift = (register * 6) & 7;
  return ((hll[at] >> shift) | ((hll[at + 1] ?? 0) << (8 - shift))) & 63;
}

function denseSet(hll: Buffer, register: number, value: number): void {
  const at = HEADER + ((register * 6) >> 3);
  const shift = (register * 6) & 7;
  hll[at] = (hll[at] & ~(63 << shift)) | (value << shift);
  // The last register's second byte would be past the end (Redis' string terminator): nothing to keep there.
  if (at + 1 < hll.length) hll[at + 1] = (hll[at + 1] & ~(63 >> (8 - shift))) | (value >> (8 - shift));
}

// ---- sparse opcodes -------------------------------------------------------------

const isZero = (op: number): boolean => (op & 0xc0) === 0;
const isXZero = (op: number): boolean => (op & 0xc0) === 0x40;
const zeroLen = (op: number): number => (op & 0x3f) + 1;
const xzeroLen = (op: number, next: number): number => (((op & 0x3f) << 8) | next) + 1;
const valValue = (op: number): number => ((op >> 2) & 0x1f) + 1;
const valLen = (op: number): number => (op & 3) + 1;
const valOp = (value: number, len: number): number => 0x80 | ((value - 1) << 2) | (len - 1);

/** A run of zero registers as a ZERO or XZERO opcode. */
function zeroRun(len: number): number[] {
  if (len > SPARSE_ZERO_MAX_LEN) return [0x40 | ((len - 1) >> 8), (len - 1) & 0xff];
  return [len - 1];
}

/** Calls `visit(value, runLength)` for each run of a sparse HLL; false when the runs do not cover every register. */
function sparseRuns(hll: Buffer, visit: (value: number, len: number) => void): boolean {
  let covered = 0;
  for (let p = HEADER; p < hll.length;) {
    const op = hll[p];
    if (isZero(op)) {
      visit(0, zeroLen(op));
      covered += zeroLen(op);
      p++;
    } else if (isXZero(op)) {
      const len = xzeroLen(op, hll[p + 1] ?? 0);
      visit(0, len);
      covered += len;
      p += 2;
    } else {
      const len = valLen(op);
      if (covered + len > REGISTERS) return false;
      visit(valValue(op), len);
      covered += len;
      p++;
    }
  }
  return covered === REGISTERS;
}

function toDense(hll: Buffer): Buffer {
  if (hll[4] === DENSE) return hll;
  const dense = Buffer.alloc(DENSE_SIZE);
  hll.copy(dense, 0, 0, HEADER);
  dense[4] = DENSE;
  let register = 0;
  const valid = sparseRuns(hll, (value, len) => {
    if (value !== 0) for (let i = 0; i < len; i++) denseSet(dense, register + i, value);
    register += len;
  });
  if (!valid) throw corrupted();
  return dense;
}

/**
 * Raises register `index` to `count` in a sparse HLL, as Redis' hllSparseSet
 * does it (so the bytes come out the same): the new HLL (dense when the
 * sparse form cannot hold it) and whether a register changed.
 */
function sparseSet(hll: Buffer, index: number, count: number): { hll: Buffer; changed: boolean } {
  if (count > SPARSE_VAL_MAX_VALUE) return promote(hll, index, count);
  let p = HEADER;
  let first = 0;
  let prev = -1;
  let span = 0;
  while (p < hll.length) {
    const op = hll[p];
    span = isZero(op) ? zeroLen(op) : isXZero(op) ? xzeroLen(op, hll[p + 1] ?? 0) : valLen(op);
    if (index <= first + span - 1) break;
    prev = p;
    p += isXZero(op) ? 2 : 1;
    first += span;
  }
  if (span === 0 || p >= hll.length) throw corrupted();
  const op = hll[p];
  const zero = isZero(op);
  const xzero = isXZero(op);
  const next = p + (xzero ? 2 : 1);
  const out = Buffer.from(hll);
  if (!zero && !xzero) {
    if (valValue(op) >= count) return { hll, changed: false };
    if (valLen(op) === 1) {
      out[p] = valOp(count, 1);
      return { hll: mergeValues(out, prev < 0 ? HEADER : prev), changed: true };
    }
  }
  if (zero && zeroLen(op) === 1) {
    out[p] = valOp(count, 1);
    return { hll: mergeValues(out, prev < 0 ? HEADER : prev), changed: true };
  }
  // The general case: the opcode split around the register.
  const last = first + span - 1;
  const sequence: number[] = [];
  if (zero || xzero) {
    if (index !== first) sequence.push(...zeroRun(index - first));
    sequence.push(valOp(count, 1));
    if (index !== last) sequence.push(...zeroRun(last - index));
  } else {
    const current = valValue(op);
    if (index !== first) sequence.push(valOp(current, index - first));
    sequence.push(valOp(count, 1));
    if (index !== last) sequence.push(valOp(current, last - index));
  }
  const grown = sequence.length - (next - p);
  if (grown > 0 && hll.length + grown > SPARSE_MAX_BYTES) return promote(hll, index, count);
  const replaced = Buffer.concat([hll.subarray(0, p), Buffer.from(sequence), hll.subarray(next)]);
  return { hll: mergeValues(replaced, prev < 0 ? HEADER : prev), changed: true };
}

function promote(hll: Buffer, index: number, count: number): { hll: Buffer; changed: boolean } {
  const dense = Buffer.from(toDense(hll));
  denseSet(dense, index, count);
  return { hll: dense, changed: true };
}

/** Merges adjacent VAL opcodes of one value (within their maximum length), up to five opcodes from `from`. */
function mergeValues(hll: Buffer, from: number): Buffer {
  let out = hll;
  let p = from;
  let scan = 5;
  while (p < out.length && scan-- > 0) {
    const op = out[p];
    if (isXZero(op)) {
      p += 2;
      continue;
    }
    if (isZero(op)) {
      p++;
      continue;
    }
    const right = out[p + 1];
    if (p + 1 < out.length && (right & 0x80) !== 0 && valValue(op) === valValue(right)) {
      const len = valLen(op) + valLen(right);
      if (len <= SPARSE_VAL_MAX_LEN) {
        out = Buffer.concat([
          out.subarray(0, p),
          Buffer.from([valOp(valValue(op), len)]),
          out.subarray(p + 2),
        ]);
        // Try the merged run with the one on its right too.
        continue;
      }
    }
    p++;
  }
  return out;
}

// ---- values --------------------------------------------------------------------

/** A fresh, empty HLL: sparse, one XZERO opcode for all registers. */
function emptyHll(): Buffer {
  const hll = Buffer.alloc(HEADER + 2);
  hll.write('HYLL', 0, 'latin1');
  hll[4] = SPARSE;
  hll[HEADER] = 0x40 | ((SPARSE_XZERO_MAX_LEN - 1) >> 8);
  hll[HEADER + 1] = (SPARSE_XZERO_MAX_LEN - 1) & 0xff;
  return hll;
}

/** The key's HLL (a copy), null when missing; refuses other values with Redis' WRONGTYPE. */
function readHll(ks: Keyspace, db: number, key: Buffer): Buffer | null {
  const value = get(ks, db, key);
  if (value === null) return null;
  if (
    value.length < HEADER ||
    value.toString('latin1', 0, 4) !== 'HYLL' ||
    value[4] > SPARSE ||
    (value[4] === DENSE && value.length !== DENSE_SIZE)
  ) {
    throw notHll();
  }
  return Buffer.from(value);
}

/** Stores `after` over `before`: the whole string when its length changed, else what changed (header, registers). */
function store(ks: Keyspace, db: number, key: Buffer, before: Buffer | null, after: Buffer): void {
  if (before === null || before.length !== after.length) {
    set(ks, db, key, after, { keepTtl: true });
    return;
  }
  for (const [from, to] of [
    [0, HEADER],
    [HEADER, after.length],
  ]) {
    let first = from;
    while (first < to && before[first] === after[first]) first++;
    if (first === to) continue;
    let last = to - 1;
    while (before[last] === after[last]) last--;
    setRange(ks, db, key, first, after.subarray(first, last + 1));
  }
}

function invalidateCache(hll: Buffer): void {
  hll[CARD + 7] |= 0x80;
}

function registerHistogram(hll: Buffer): number[] {
  const histogram = new Array<number>(64).fill(0);
  if (hll[4] === DENSE) {
    for (let r = 0; r < REGISTERS; r++) histogram[denseGet(hll, r)]++;
  } else if (!sparseRuns(hll, (value, len) => (histogram[value] += len))) {
    throw corrupted();
  }
  return histogram;
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  let previous: number;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (previous !== z);
  return z;
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let previous: number;
  do {
    x = Math.sqrt(x);
    previous = z;
    y *= 0.5;
    // pow(1 - x, 2) in C: a product, rounded once.
    z -= (1 - x) * (1 - x) * y;
  } while (previous !== z);
  return z / 3;
}

/** The cardinality estimate of a register histogram (Ertl's estimator, as Redis 5 and later). */
function estimate(histogram: readonly number[]): number {
  const m = REGISTERS;
  let z = m * tau((m - histogram[Q + 1]) / m);
  for (let j = Q; j >= 1; j--) {
    z += histogram[j];
    z *= 0.5;
  }
  z += m * sigma(histogram[0] / m);
  return Math.round((ALPHA_INF * m * m) / z);
}

/** Raises `max` to every register of `hll`. */
function mergeInto(max: Uint8Array, hll: Buffer): void {
  if (hll[4] === DENSE) {
    for (let r = 0; r < REGISTERS; r++) max[r] = Math.max(max[r], denseGet(hll, r));
    return;
  }
  let register = 0;
  const valid = sparseRuns(hll, (value, len) => {
    for (let i = 0; i < len; i++, register++) if (value > max[register]) max[register] = value;
  });
  if (!valid) throw corrupted();
}

// ---- commands -------------------------------------------------------------------

/** PFADD: 1 when a register changed (or the key was created), else 0. */
export function pfadd(ks: Keyspace, db: number, key: Buffer, elements: readonly Buffer[]): number {
  const before = readHll(ks, db, key);
  let hll = before ?? emptyHll();
  let updated = before === null;
  for (const element of elements) {
    const { index, count } = registerOf(element);
    if (hll[4] === DENSE) {
      if (count > denseGet(hll, index)) {
        if (hll === before) hll = Buffer.from(hll);
        denseSet(hll, index, count);
        updated = true;
      }
    } else {
      const result = sparseSet(hll, index, count);
      hll = result.hll;
      updated ||= result.changed;
    }
  }
  if (!updated) return 0;
  if (hll === before) hll = Buffer.from(hll);
  invalidateCache(hll);
  store(ks, db, key, before, hll);
  return 1;
}

/**
 * PFCOUNT: the estimate for one key (its cached one while valid), or for the
 * union of several. Inside a write (replaying a Redis primary's stream, where
 * Redis propagates a PFCOUNT that refreshed the cache) the estimate is cached
 * in the value, as Redis does; a client's PFCOUNT only reads.
 */
export function pfcount(ks: Keyspace, db: number, keys: readonly Buffer[]): number {
  if (keys.length > 1) {
    const max = new Uint8Array(REGISTERS);
    for (const key of keys) {
      const hll = readHll(ks, db, key);
      if (hll !== null) mergeInto(max, hll);
    }
    const histogram = new Array<number>(64).fill(0);
    for (const value of max) histogram[value]++;
    return estimate(histogram);
  }
  const hll = readHll(ks, db, keys[0]);
  if (hll === null) return 0;
  if ((hll[CARD + 7] & 0x80) === 0) return Number(hll.readBigUInt64LE(CARD));
  const count = estimate(registerHistogram(hll));
  if (ks.inWrite) {
    const cached = Buffer.alloc(8);
    cached.writeBigUInt64LE(BigInt(count));
    setRange(ks, db, keys[0], CARD, cached);
  }
  return count;
}

/** PFMERGE: `destination` (itself included) raised to every register of the sources. */
export function pfmerge(ks: Keyspace, db: number, destination: Buffer, sources: readonly Buffer[]): void {
  const max = new Uint8Array(REGISTERS);
  let dense = false;
  for (const key of [destination, ...sources]) {
    const hll = readHll(ks, db, key);
    if (hll === null) continue;
    if (hll[4] === DENSE) dense = true;
    mergeInto(max, hll);
  }
  const before = readHll(ks, db, destination);
  let hll = before ?? emptyHll();
  if (dense) hll = Buffer.from(toDense(hll));
  for (let r = 0; r < REGISTERS; r++) {
    if (max[r] === 0) continue;
    if (hll[4] === DENSE) {
      if (hll === before) hll = Buffer.from(hll);
      if (max[r] > denseGet(hll, r)) denseSet(hll, r, max[r]);
    } else hll = sparseSet(hll, r, max[r]).hll;
  }
  if (hll === before) hll = Buffer.from(hll);
  invalidateCache(hll);
  store(ks, db, destination, before, hll);
}
