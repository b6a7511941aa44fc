/** A malformed, truncated or unsupported RDB payload. */
export class RdbError extends Error {
  override readonly name = 'RdbError';
}
