// The idempotency errors: each maps to one status and problem type from PROTOCOL.md rules 5–12.
import { ProblemError } from '../http/problem.js';

export class IdempotencyKeyMissingError extends ProblemError {
  override name = 'IdempotencyKeyMissingError';
  constructor(headerName: string) {
    super({
      status: 400,
      type: 'idempotency-key-missing',
      title: 'Idempotency-Key required',
      detail: `This request needs an ${headerName} header: generate one unique value (a UUID is ideal) per logical request, send it as "${headerName}: <value>", and resend the same value on every retry.`,
    });
  }
}

export class IdempotencyKeyInvalidError extends ProblemError {
  override name = 'IdempotencyKeyInvalidError';
  constructor(headerName: string, reason: string) {
    super({
      status: 400,
      type: 'idempotency-key-invalid',
      title: 'Idempotency-Key invalid',
      detail: `The ${headerName} header ${reason}. Send 1–255 printable ASCII characters without commas, bare or as a quoted string.`,
    });
  }
}

export class IdempotencyKeyReuseError extends ProblemError {
  override name = 'IdempotencyKeyReuseError';
  constructor() {
    super({
      status: 422,
      type: 'idempotency-key-reuse',
      title: 'Idempotency-Key reused',
      detail:
        'This Idempotency-Key was already used with a different request (method, path or body). Use a new key for a new request.',
    });
  }
}

export class IdempotencyKeyInUseError extends ProblemError {
  override name = 'IdempotencyKeyInUseError';
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super({
      status: 409,
      type: 'idempotency-key-in-use',
      title: 'Idempotency-Key in use',
      detail: `A request with this Idempotency-Key is still being processed. Retry with the same key after ${retryAfterSeconds} s to get its result.`,
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The claim's lease expired and another request took the key over; this one's writes were rolled back. */
export class IdempotencyLeaseLostError extends ProblemError {
  override name = 'IdempotencyLeaseLostError';
  constructor() {
    super({
      status: 409,
      type: 'idempotency-key-in-use',
      title: 'Idempotency-Key in use',
      detail:
        'This request took longer than its lease and another request with the same Idempotency-Key took over; nothing from this attempt was kept. Retry with the same key to get the result.',
      headers: { 'retry-after': '1' },
    });
  }
}

/** The idempotency store could not be reached: never guess, answer 503. */
export class IdempotencyStoreUnavailableError extends ProblemError {
  override name = 'IdempotencyStoreUnavailableError';
  constructor(cause: unknown) {
    super({
      status: 503,
      type: 'idempotency-store-unavailable',
      title: 'Service unavailable',
      detail:
        'The idempotency store is unavailable, so this request was not executed. Retry with the same key later.',
      headers: { 'retry-after': '1' },
      cause,
    });
  }
}

/**
 * The database connection failed before COMMIT was sent (connection refused or lost, BEGIN
 * failed, the server ended the session mid-transaction): the transaction rolled back, so
 * nothing from this attempt was saved. Retry with the same key.
 */
export class TransactionUnavailableError extends ProblemError {
  override name = 'TransactionUnavailableError';
  constructor(cause: unknown) {
    super({
      status: 503,
      type: 'database-unavailable',
      title: 'Service unavailable',
      detail:
        'The database connection failed before this request could commit, so nothing from it was saved. Retry with the same Idempotency-Key later.',
      headers: { 'retry-after': '1' },
      cause,
    });
  }
}

/**
 * COMMIT was sent but its answer never arrived (the connection broke): the transaction may or
 * may not have committed. Never answered as "nothing saved": a retry with the same key either
 * replays the committed result or executes, exactly once either way.
 */
export class AmbiguousCommitError extends ProblemError {
  override name = 'AmbiguousCommitError';
  constructor(cause: unknown) {
    super({
      status: 503,
      type: 'commit-outcome-unknown',
      title: 'Service unavailable',
      detail:
        'The database connection broke while this request was committing, so it is not known whether it was saved. Retry with the same Idempotency-Key: you get the saved result if it was, or it runs once if it was not.',
      headers: { 'retry-after': '1' },
      cause,
    });
  }
}
