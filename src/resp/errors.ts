/**
 * The one place where errors become RESP error replies (`-CODE message`).
 * Engines and services throw `DoppelError`; keyspace errors already carry
 * Redis' wording, and `errorName` their code when it is not `ERR`.
 */
import { asDoppelError, DoppelError, ErrorKind } from '../errors.js';
import { ProtocolError } from './parser.js';

const CODE = /^[A-Z]+$/;

/** The text of a RESP error reply (without `-` and CRLF). */
export function toRespError(err: unknown): string {
  if (err instanceof ProtocolError) return `ERR ${err.message}`;
  const error = asDoppelError(err);
  if (error.kind === ErrorKind.Internal) return 'ERR internal error, see the node log';
  if (error.errorName !== undefined && CODE.test(error.errorName))
    return `${error.errorName} ${error.reason}`;
  switch (error.kind) {
    case ErrorKind.Unauthorized:
      return `NOAUTH ${error.reason}`;
    case ErrorKind.Forbidden:
      return `NOPERM ${error.reason}`;
    default:
      return `ERR ${error.reason}`;
  }
}

/** An `-ERR <reason>` (or `-<code> <reason>`) raised by the RESP front door itself. */
export function respError(reason: string, code?: string): DoppelError {
  return new DoppelError(ErrorKind.BadRequest, reason, code === undefined ? {} : { errorName: code });
}

/** Redis' refusal of a command the user's rights do not cover (`command` as `name` or `name|sub`). */
export const noPermission = (command: string): DoppelError =>
  respError(`this user has no permissions to run the '${command}' command`, 'NOPERM');

export const syntaxError = (): DoppelError => respError('syntax error');
export const notIntegerError = (): DoppelError => respError('value is not an integer or out of range');
export const notFloatError = (): DoppelError => respError('value is not a valid float');

export function wrongArity(name: string): DoppelError {
  return respError(`wrong number of arguments for '${name}' command`);
}

/** Redis: `unknown command 'foo', with args beginning with: 'a' 'b' `. */
export function unknownCommand(argv: readonly Buffer[]): DoppelError {
  const name = clip(argv[0]);
  const args = argv
    .slice(1)
    .map((a) => `'${clip(a)}' `)
    .join('');
  return respError(`unknown command '${name}', with args beginning with: ${args}`);
}

function clip(bytes: Buffer): string {
  const text = bytes.subarray(0, 128).toString('latin1');
  return text.replace(/[\r\n]/g, ' ');
}

export const isDoppelError = (err: unknown): err is DoppelError => err instanceof DoppelError;
