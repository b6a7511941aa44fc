import { DoppelError, ErrorKind } from '../../errors.js';

/**
 * Keyspace errors. The keyspace is Redis-compatible, so reasons keep Redis'
 * exact wording; `errorName` carries Redis' error code when it is not `ERR`
 * (the RESP front door prints `-<code> <reason>`).
 */
const bad = (reason: string, errorName?: string): DoppelError =>
  new DoppelError(ErrorKind.BadRequest, reason, errorName === undefined ? {} : { errorName });

export const wrongType = (): DoppelError =>
  bad('Operation against a key holding the wrong kind of value', 'WRONGTYPE');
export const notInteger = (): DoppelError => bad('value is not an integer or out of range');
export const notFloat = (): DoppelError => bad('value is not a valid float');
export const overflow = (): DoppelError => bad('increment or decrement would overflow');
export const nanOrInfinity = (): DoppelError => bad('increment would produce NaN or Infinity');
export const hashNotInteger = (): DoppelError => bad('hash value is not an integer');
export const hashNotFloat = (): DoppelError => bad('hash value is not a float');
export const noSuchKey = (): DoppelError => new DoppelError(ErrorKind.NotFound, 'no such key');
export const indexOutOfRange = (): DoppelError => bad('index out of range');
export const tooBig = (): DoppelError => bad('string exceeds maximum allowed size (proto-max-bulk-len)');
export const scoreNaN = (): DoppelError => bad('resulting score is not a number (NaN)');
export const keyTooLong = (): DoppelError =>
  bad('key or member is too long (Doppel stores keys and members of up to 1900 bytes)');

/** Largest string value (Redis' proto-max-bulk-len). */
export const MAX_STRING_BYTES = 512 * 1024 * 1024;
export const notSortable = (): DoppelError => bad("One or more scores can't be converted into double");
