// The errors of operation work: a permanent failure a job throws to end its operation as failed
// at once, and the signal `runOperation` uses to stop work whose cancel was asked for.

/**
 * Thrown by operation work: the operation fails now with this code and message (shown to the
 * client), without retrying the job. Anything else thrown is retried until the job's last attempt.
 */
export class OperationFailedError extends Error {
  override name = 'OperationFailedError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Thrown by a guarded step or call once a cancel was requested; `runOperation` ends the operation as canceled. */
export class OperationCanceledError extends Error {
  override name = 'OperationCanceledError';
  readonly operationId: string;
  constructor(operationId: string) {
    super(`operation ${operationId} was asked to cancel: its work stops before the next step`);
    this.operationId = operationId;
  }
}

/** The message a failed operation shows when its job ran out of attempts (the error itself stays in the job's last_error). */
export function attemptsExhaustedMessage(attempts: number): string {
  return `the work failed on each of its ${attempts} attempts`;
}

export const attemptsExhaustedCode = 'internal-error';
