/**
 * CRC-64/Jones, the checksum at the end of an RDB file (Redis' crc64.c):
 * reflected polynomial 0xad93d23594c935a9, initial value 0, no final xor.
 * JavaScript has no fast 64-bit integers, so the state is kept as two 32-bit
 * halves and the table as two Uint32Arrays.
 */

const REFLECTED_POLY_HI = 0x95ac9329;
const REFLECTED_POLY_LO = 0xac4bc9b5;

/**
 * Slicing-by-8: `TABLES_*[k * 256 + b]` is the CRC of byte `b` followed by `k` zero
 * bytes, so eight input bytes take eight independent lookups instead of a chain of
 * eight (an RDB's checksum is read over every byte it holds).
 */
const TABLES_HI = new Uint32Array(8 * 256);
const TABLES_LO = new Uint32Array(8 * 256);

for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let bit = 0; bit < 8; bit++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry !== 0) {
      hi = (hi ^ REFLECTED_POLY_HI) >>> 0;
      lo = (lo ^ REFLECTED_POLY_LO) >>> 0;
    }
  }
  TABLES_HI[i] = hi;
  TABLES_LO[i] = lo;
}
for (let k = 1; k < 8; k++) {
  for (let i = 0; i < 256; i++) {
    // T[k][i] = T[0][T[k-1][i] & 0xff] ^ (T[k-1][i] >>> 8)
    const hi = TABLES_HI[(k - 1) * 256 + i];
    const lo = TABLES_LO[(k - 1) * 256 + i];
    const index = lo & 0xff;
    TABLES_LO[k * 256 + i] = (TABLES_LO[index] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
    TABLES_HI[k * 256 + i] = (TABLES_HI[index] ^ (hi >>> 8)) >>> 0;
  }
}

/** A running CRC-64/Jones. */
export class Crc64 {
  #hi = 0;
  #lo = 0;

  update(bytes: Uint8Array, from = 0, to = bytes.length): void {
    const tHi = TABLES_HI;
    const tLo = TABLES_LO;
    let hi = this.#hi;
    let lo = this.#lo;
    let i = from;
    for (; i + 8 <= to; i += 8) {
      const a = lo ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
      const b = hi ^ (bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24));
      const i7 = 7 * 256 + (a & 0xff);
      const i6 = 6 * 256 + ((a >>> 8) & 0xff);
      const i5 = 5 * 256 + ((a >>> 16) & 0xff);
      const i4 = 4 * 256 + (a >>> 24);
      const i3 = 3 * 256 + (b & 0xff);
      const i2 = 2 * 256 + ((b >>> 8) & 0xff);
      const i1 = 256 + ((b >>> 16) & 0xff);
      const i0 = b >>> 24;
      lo = (tLo[i7] ^ tLo[i6] ^ tLo[i5] ^ tLo[i4] ^ tLo[i3] ^ tLo[i2] ^ tLo[i1] ^ tLo[i0]) >>> 0;
      hi = (tHi[i7] ^ tHi[i6] ^ tHi[i5] ^ tHi[i4] ^ tHi[i3] ^ tHi[i2] ^ tHi[i1] ^ tHi[i0]) >>> 0;
    }
    for (; i < to; i++) {
      const index = (lo ^ bytes[i]) & 0xff;
      // crc = T[index] ^ (crc >>> 8), on the two halves.
      lo = (tLo[index] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (tHi[index] ^ (hi >>> 8)) >>> 0;
    }
    this.#hi = hi;
    this.#lo = lo;
  }

  /** True when the checksum equals the 8 little-endian bytes at `bytes[at]` (as RDB stores it). */
  matches(bytes: Uint8Array, at: number): boolean {
    const lo = (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
    const hi = (bytes[at + 4] | (bytes[at + 5] << 8) | (bytes[at + 6] << 16) | (bytes[at + 7] << 24)) >>> 0;
    return lo === this.#lo && hi === this.#hi;
  }

  /** The checksum as a BigInt (tests, logs). */
  get value(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }
}

export function crc64(bytes: Uint8Array): bigint {
  const crc = new Crc64();
  crc.update(bytes);
  return crc.value;
}
