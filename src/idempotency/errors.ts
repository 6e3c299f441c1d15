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

/**
 * What is known of an attempt's writes when it fails after its claim, so no answer claims a
 * rollback it cannot know happened. `rolled-back`: the writes could only commit together with
 * the fenced completion (records in the SQL store), so none were kept. `may-be-kept`: records
 * live elsewhere (Redis, memory) and the writes committed in their own transaction first.
 */
export type AttemptWrites = 'rolled-back' | 'may-be-kept';

/** The claim's lease expired and another request took the key over before this one could settle. */
export class IdempotencyLeaseLostError extends ProblemError {
  override name = 'IdempotencyLeaseLostError';
  readonly writes: AttemptWrites;
  constructor(writes: AttemptWrites) {
    super({
      status: 409,
      type: 'idempotency-key-in-use',
      title: 'Idempotency-Key in use',
      detail:
        writes === 'rolled-back'
          ? 'This request took longer than its lease and another request with the same Idempotency-Key took over; what this attempt had not yet committed was rolled back (steps it finished stay, under the same record, and are not repeated). Retry with the same key to get the result.'
          : 'This request took longer than its lease and another request with the same Idempotency-Key took over; what this attempt wrote may have been saved, under the same record as the other run, so it is not made twice. Retry with the same key to get the result.',
      headers: { 'retry-after': '1' },
    });
    this.writes = writes;
  }
}

/**
 * The idempotency store could not be reached: never guess, answer 503. `writes` is absent when
 * the store failed before anything ran (the claim, or a transaction that never started): then
 * the request was not executed. Otherwise the request ran and its answer could not be stored.
 */
export class IdempotencyStoreUnavailableError extends ProblemError {
  override name = 'IdempotencyStoreUnavailableError';
  readonly writes: AttemptWrites | undefined;
  constructor(cause: unknown, writes?: AttemptWrites) {
    super({
      status: 503,
      type: 'idempotency-store-unavailable',
      title: 'Service unavailable',
      detail:
        writes === undefined
          ? 'The idempotency store is unavailable, so this request was not executed. Retry with the same key later.'
          : writes === 'rolled-back'
            ? 'The idempotency store failed while this request was finishing, so its writes were rolled back and nothing from it was saved. Retry with the same key later.'
            : 'The idempotency store failed after this request ran, so its answer could not be stored; what it wrote may have been saved. Retry with the same Idempotency-Key later: the retry runs under the same record, so nothing is made twice.',
      headers: { 'retry-after': '1' },
      cause,
    });
    this.writes = writes;
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
        'The database connection failed before this request could commit, so that transaction was rolled back (steps it had already finished stay, and are not repeated). Retry with the same Idempotency-Key later.',
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

/**
 * The caller already holds its maximum of idempotency records (`maxRecordsPerScope`): a new
 * key is refused before anything runs, until expired records are reaped. Keys it already holds
 * still replay and retry as usual.
 */
export class IdempotencyScopeFullError extends ProblemError {
  override name = 'IdempotencyScopeFullError';
  readonly retryAfterSeconds: number;
  constructor(maxRecords: number, retryAfterSeconds: number) {
    super({
      status: 429,
      type: 'idempotency-records-exhausted',
      title: 'Too many idempotency records',
      detail: `This account already holds ${maxRecords} idempotency records, the most it may keep at once, so this request with a new Idempotency-Key was not executed. Retry after ${retryAfterSeconds} s, when expired records have been removed; requests with keys already used still replay.`,
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The handler produced an answer larger than `maxStoredResponseBytes`. Storing half of it, or
 * none of it while the writes commit, would make a retry replay something else than the first
 * answer; so the writes were rolled back, the key released, and this 500 tells the developer.
 */
export class StoredResponseTooLargeError extends ProblemError {
  override name = 'StoredResponseTooLargeError';
  readonly bodyBytes: number;
  constructor(bodyBytes: number, maxBytes: number) {
    super({
      status: 500,
      type: 'stored-response-too-large',
      title: 'Response too large to store',
      detail: `This request's answer has a ${bodyBytes}-byte body, more than the ${maxBytes} bytes an idempotent answer may store, so it was not sent and the writes of its transaction were rolled back. Answer keyed writes with a smaller representation (for example 201 with Location) or raise maxStoredResponseBytes.`,
    });
    this.bodyBytes = bodyBytes;
  }
}
