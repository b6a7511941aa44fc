/**
 * CRC-64/Jones, the checksum at the end of an RDB file (Redis' crc64.c):
 * reflected polynomial 0xad93d23594c935a9, initial value 0, no final xor.
 * JavaScript has no fast 64-bit integers, so the state is kept as two 32-bit
 * halves and the table as two Uint32Arrays.
 */

const REFLECTED_POLY_HI = 0x95ac9329;
const REFLECTED_POLY_LO = 0xac4bc9b5;

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);

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
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}

/** A running CRC-64/Jones. */
export class Crc64 {
  #hi = 0;
  #lo = 0;

  update(bytes: Uint8Array, from = 0, to = bytes.length): void {
    let hi = this.#hi;
    let lo = this.#lo;
    for (let i = from; i < to; i++) {
      const index = (lo ^ bytes[i]) & 0xff;
      // crc = T[index] ^ (crc >>> 8), on the two halves.
      lo = (TABLE_LO[index] ^ ((lo >>> 8) | (hi << 24))) >>> 0;
      hi = (TABLE_HI[index] ^ (hi >>> 8)) >>> 0;
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
