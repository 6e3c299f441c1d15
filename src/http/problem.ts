// Problem details (RFC 9457) and the one error family every retrysafe part throws.
// Each error knows its HTTP status, problem type and extra headers, so adapters only translate.

/** Problem types are stable URNs: clients match on them; they are not meant to be fetched. */
export const problemTypePrefix = 'urn:retrysafe:problem:';

export interface FieldError {
  /** JSON Pointer (RFC 6901) into the request body. */
  pointer: string;
  detail: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface ProblemErrorOptions {
  status: number;
  /** Short slug; becomes `urn:retrysafe:problem:<slug>`. */
  type: string;
  title: string;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  extensions?: Record<string, unknown>;
  cause?: unknown;
}

/** Base of every error retrysafe raises on purpose. `name` is a literal per subclass. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(options: ProblemErrorOptions) {
    super(options.detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.type = problemTypePrefix + options.type;
    this.title = options.title;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  toProblem(): ProblemBody {
    const body: ProblemBody = {
      ...this.extensions,
      type: this.type,
      title: this.title,
      status: this.status,
      detail: this.message,
    };
    if (this.errors !== undefined) body.errors = this.errors;
    return body;
  }
}

export class BadRequestError extends ProblemError {
  override name = 'BadRequestError';
  constructor(detail: string, type = 'bad-request', errors?: FieldError[]) {
    super({ status: 400, type, title: 'Bad request', detail, ...(errors ? { errors } : {}) });
  }
}

export class UnauthorizedError extends ProblemError {
  override name = 'UnauthorizedError';
  constructor(detail: string, realm: string, tokenError?: 'invalid_token') {
    const challenge = `Bearer realm="${realm}"${tokenError ? `, error="${tokenError}"` : ''}`;
    super({
      status: 401,
      type: 'unauthorized',
      title: 'Unauthorized',
      detail,
      headers: { 'www-authenticate': challenge },
    });
  }
}

export class ForbiddenError extends ProblemError {
  override name = 'ForbiddenError';
  constructor(detail: string) {
    super({ status: 403, type: 'forbidden', title: 'Forbidden', detail });
  }
}

export class NotFoundError extends ProblemError {
  override name = 'NotFoundError';
  constructor(detail: string) {
    super({ status: 404, type: 'not-found', title: 'Not found', detail });
  }
}

export class ConflictError extends ProblemError {
  override name = 'ConflictError';
  constructor(detail: string, type = 'conflict', extensions?: Record<string, unknown>) {
    super({ status: 409, type, title: 'Conflict', detail, ...(extensions ? { extensions } : {}) });
  }
}

export class PreconditionFailedError extends ProblemError {
  override name = 'PreconditionFailedError';
  constructor(detail: string) {
    super({ status: 412, type: 'precondition-failed', title: 'Precondition failed', detail });
  }
}

export class PreconditionRequiredError extends ProblemError {
  override name = 'PreconditionRequiredError';
  constructor(detail: string) {
    super({ status: 428, type: 'precondition-required', title: 'Precondition required', detail });
  }
}

export class ValidationError extends ProblemError {
  override name = 'ValidationError';
  constructor(errors: FieldError[], detail = 'The request body breaks the schema or a business rule.') {
    super({ status: 422, type: 'validation', title: 'Unprocessable content', detail, errors });
  }
}

export class ServiceUnavailableError extends ProblemError {
  override name = 'ServiceUnavailableError';
  constructor(detail: string, retryAfterSeconds: number, cause?: unknown) {
    super({
      status: 503,
      type: 'service-unavailable',
      title: 'Service unavailable',
      detail,
      headers: { 'retry-after': String(retryAfterSeconds) },
      cause,
    });
  }
}

/** A problem for a bare status, used for errors that carry nothing more specific. */
export function problemForStatus(status: number, detail: string, type = 'http-error'): ProblemBody {
  return { type: problemTypePrefix + type, title: statusTitle(status), status, detail };
}

const statusTitles: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  408: 'Request timeout',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Content too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  417: 'Expectation failed',
  422: 'Unprocessable content',
  428: 'Precondition required',
  429: 'Too many requests',
  431: 'Request header fields too large',
  500: 'Internal server error',
  503: 'Service unavailable',
};

export function statusTitle(status: number): string {
  return statusTitles[status] ?? (status >= 500 ? 'Server error' : 'Client error');
}

export const problemContentType = 'application/problem+json; charset=utf-8';
