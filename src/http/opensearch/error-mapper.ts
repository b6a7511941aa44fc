import { asDoppelError, ErrorKind, type DoppelError } from '../../errors.js';

const STATUS: Record<ErrorKind, number> = {
  [ErrorKind.BadRequest]: 400,
  [ErrorKind.Unauthorized]: 401,
  [ErrorKind.Forbidden]: 403,
  [ErrorKind.NotFound]: 404,
  [ErrorKind.MethodNotAllowed]: 405,
  // OpenSearch answers "already exists" with 400.
  [ErrorKind.Conflict]: 409,
  [ErrorKind.DatabaseExists]: 400,
  [ErrorKind.PreconditionFailed]: 412,
  [ErrorKind.TooLarge]: 413,
  [ErrorKind.UnsupportedMediaType]: 406,
  [ErrorKind.FunctionError]: 500,
  [ErrorKind.Unavailable]: 503,
  [ErrorKind.Internal]: 500,
};

/** OpenSearch exception names for each kind, unless the error names its own. */
const TYPE: Record<ErrorKind, string> = {
  [ErrorKind.BadRequest]: 'illegal_argument_exception',
  [ErrorKind.Unauthorized]: 'security_exception',
  [ErrorKind.Forbidden]: 'security_exception',
  [ErrorKind.NotFound]: 'resource_not_found_exception',
  [ErrorKind.MethodNotAllowed]: 'illegal_argument_exception',
  [ErrorKind.Conflict]: 'version_conflict_engine_exception',
  [ErrorKind.DatabaseExists]: 'resource_already_exists_exception',
  [ErrorKind.PreconditionFailed]: 'illegal_state_exception',
  [ErrorKind.TooLarge]: 'content_too_long_exception',
  [ErrorKind.UnsupportedMediaType]: 'illegal_argument_exception',
  [ErrorKind.FunctionError]: 'exception',
  [ErrorKind.Unavailable]: 'replication_exception',
  [ErrorKind.Internal]: 'exception',
};

export interface OpenSearchErrorBody {
  readonly error: {
    readonly root_cause: readonly { readonly type: string; readonly reason: string }[];
    readonly type: string;
    readonly reason: string;
  };
  readonly status: number;
}

export interface OpenSearchErrorResponse {
  readonly status: number;
  readonly body: OpenSearchErrorBody;
  readonly error: DoppelError;
}

/**
 * The one place where errors become OpenSearch's
 * `{"error": {"root_cause": [{type, reason}], type, reason}, "status": N}`.
 */
export function toOpenSearchError(err: unknown): OpenSearchErrorResponse {
  const fastifyStatus = (err as { statusCode?: unknown }).statusCode;
  const error = asDoppelError(err);
  const tooLarge = fastifyStatus === 413 || (err as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE';
  const status = tooLarge ? 413 : STATUS[error.kind];
  const type = tooLarge
    ? 'content_too_long_exception'
    : error.errorName !== undefined && error.errorName.endsWith('_exception')
      ? error.errorName
      : TYPE[error.kind];
  const reason =
    error.kind === ErrorKind.Internal ? 'An internal error occurred; see the node log.' : error.reason;
  return { status, body: { error: { root_cause: [{ type, reason }], type, reason }, status }, error };
}
