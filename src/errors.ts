/**
 * The closed set of error kinds every layer speaks. Engines and services throw
 * `DoppelError`; each front door maps a kind to its wire format in exactly one
 * function (HTTP/CouchDB: `http/couch/error-mapper.ts`).
 */
export const ErrorKind = {
  /** The request is malformed: bad JSON, wrong types, bad parameters. */
  BadRequest: 'bad_request',
  /** The caller is not authenticated. */
  Unauthorized: 'unauthorized',
  /** The caller is authenticated but not allowed, or the target refuses writes. */
  Forbidden: 'forbidden',
  /** A database, document, attachment or route does not exist. */
  NotFound: 'not_found',
  /** An update lost a race against another revision. */
  Conflict: 'conflict',
  /** A database of that name already exists. */
  DatabaseExists: 'file_exists',
  /** A precondition on the request failed (e.g. an attachment stub with no body). */
  PreconditionFailed: 'precondition_failed',
  /** The request body is larger than the configured limit. */
  TooLarge: 'too_large',
  /** The method is not allowed on this path. */
  MethodNotAllowed: 'method_not_allowed',
  /** The request's media type is not supported. */
  UnsupportedMediaType: 'bad_content_type',
  /** A user-supplied function failed or timed out. */
  FunctionError: 'function_error',
  /** The node cannot take the request right now (shutting down, queue full). */
  Unavailable: 'unavailable',
  /** A bug or a storage failure; the cause is kept for the log. */
  Internal: 'internal',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

export class DoppelError extends Error {
  override readonly name = 'DoppelError';
  constructor(
    readonly kind: ErrorKind,
    readonly reason: string,
    options?: ErrorOptions & { readonly errorName?: string },
  ) {
    super(reason, options);
    this.errorName = options?.errorName;
  }
  /**
   * Some CouchDB errors carry a name other than their kind's default
   * (`missing_stub`, `invalid_json`, `db_not_found` …); front doors prefer it.
   */
  readonly errorName: string | undefined;
}

export const badRequest = (reason: string, errorName?: string): DoppelError =>
  new DoppelError(ErrorKind.BadRequest, reason, errorName === undefined ? {} : { errorName });
export const notFound = (reason = 'missing'): DoppelError => new DoppelError(ErrorKind.NotFound, reason);
export const conflict = (reason = 'Document update conflict.'): DoppelError =>
  new DoppelError(ErrorKind.Conflict, reason);
export const forbidden = (reason: string): DoppelError => new DoppelError(ErrorKind.Forbidden, reason);
export const unauthorized = (reason: string): DoppelError => new DoppelError(ErrorKind.Unauthorized, reason);

/** Any thrown value as a DoppelError; unknown errors become `internal`, keeping the cause. */
export function asDoppelError(err: unknown): DoppelError {
  if (err instanceof DoppelError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DoppelError(ErrorKind.Internal, message, { cause: err });
}
