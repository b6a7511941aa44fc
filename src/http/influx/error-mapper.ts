import { asDoppelError, ErrorKind, type DoppelError } from '../../errors.js';

/** InfluxDB 2's error codes, by status. */
const CODES: Record<ErrorKind, { status: number; code: string }> = {
  [ErrorKind.BadRequest]: { status: 400, code: 'invalid' },
  [ErrorKind.Unauthorized]: { status: 401, code: 'unauthorized' },
  [ErrorKind.Forbidden]: { status: 403, code: 'forbidden' },
  [ErrorKind.NotFound]: { status: 404, code: 'not found' },
  [ErrorKind.MethodNotAllowed]: { status: 405, code: 'method not allowed' },
  [ErrorKind.Conflict]: { status: 409, code: 'conflict' },
  // InfluxDB answers a duplicate bucket or name with 422 "conflict".
  [ErrorKind.DatabaseExists]: { status: 422, code: 'conflict' },
  [ErrorKind.PreconditionFailed]: { status: 412, code: 'invalid' },
  [ErrorKind.TooLarge]: { status: 413, code: 'request too large' },
  [ErrorKind.UnsupportedMediaType]: { status: 415, code: 'unsupported media type' },
  [ErrorKind.FunctionError]: { status: 500, code: 'internal error' },
  [ErrorKind.Unavailable]: { status: 503, code: 'unavailable' },
  [ErrorKind.Internal]: { status: 500, code: 'internal error' },
};

export interface InfluxErrorBody {
  code: string;
  message: string;
  /** Line protocol errors: the first bad line (InfluxDB's `LineProtocolError.line`). */
  line?: number;
}

export interface InfluxErrorResponse {
  readonly status: number;
  readonly body: InfluxErrorBody;
  readonly error: DoppelError;
}

/** The one place where errors become InfluxDB's `{"code", "message"}` with its status. */
export function toInfluxError(err: unknown): InfluxErrorResponse {
  const fastifyCode = (err as { code?: unknown }).code;
  const fastifyStatus = (err as { statusCode?: unknown }).statusCode;
  const error = asDoppelError(err);
  if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE' || fastifyStatus === 413) {
    return {
      status: 413,
      body: { code: 'request too large', message: 'the request body is too large' },
      error,
    };
  }
  const { status, code } = CODES[error.kind];
  const message =
    error.kind === ErrorKind.Internal ? 'an internal error occurred; see the node log' : error.reason;
  return { status, body: { code, message }, error };
}
