import { asDoppelError, ErrorKind, type DoppelError } from '../../errors.js';

const STATUS: Record<ErrorKind, number> = {
  [ErrorKind.BadRequest]: 400,
  [ErrorKind.Unauthorized]: 401,
  [ErrorKind.Forbidden]: 403,
  [ErrorKind.NotFound]: 404,
  [ErrorKind.MethodNotAllowed]: 405,
  [ErrorKind.Conflict]: 409,
  [ErrorKind.DatabaseExists]: 412,
  [ErrorKind.PreconditionFailed]: 412,
  [ErrorKind.TooLarge]: 413,
  [ErrorKind.UnsupportedMediaType]: 415,
  [ErrorKind.FunctionError]: 500,
  [ErrorKind.Unavailable]: 503,
  [ErrorKind.Internal]: 500,
};

export interface CouchErrorResponse {
  readonly status: number;
  readonly body: { error: string; reason: string };
  readonly error: DoppelError;
}

/** The one place where errors become CouchDB's `{"error", "reason"}` with its status. */
export function toCouchError(err: unknown): CouchErrorResponse {
  const fastifyStatus = (err as { statusCode?: unknown }).statusCode;
  const fastifyCode = (err as { code?: unknown }).code;
  if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE' || fastifyStatus === 413) {
    return tooLarge(asDoppelError(err));
  }
  const error = asDoppelError(err);
  const status = STATUS[error.kind];
  const name = error.errorName ?? (error.kind === ErrorKind.Internal ? 'unknown_error' : error.kind);
  const reason =
    error.kind === ErrorKind.Internal ? 'An internal error occurred; see the node log.' : error.reason;
  return { status, body: { error: name, reason }, error };
}

function tooLarge(error: DoppelError): CouchErrorResponse {
  return { status: 413, body: { error: 'too_large', reason: 'the request entity is too large' }, error };
}
