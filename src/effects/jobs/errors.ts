// The errors a job handler meets or throws: a lease it lost, a retry it asks for, a shutdown.

/**
 * This run no longer holds the job: its lease lapsed and another runner took it over, or the
 * runner released it at shutdown. `rolled-back`: the write that found out was fenced inside the
 * handler's transaction, so none of that transaction was kept. `may-be-kept`: found outside a
 * transaction (a heartbeat, a checkpoint after a call), so earlier writes may stand.
 */
export class JobLeaseLostError extends Error {
  override name = 'JobLeaseLostError';
  readonly jobId: string;
  readonly writes: 'rolled-back' | 'may-be-kept';
  constructor(jobId: string, writes: 'rolled-back' | 'may-be-kept') {
    super(
      writes === 'rolled-back'
        ? `job ${jobId} was taken over by another run (its lease lapsed), so this transaction was rolled back; the other run finishes the job`
        : `job ${jobId} was taken over by another run (its lease lapsed); stop working on it, the other run finishes the job`,
    );
    this.jobId = jobId;
    this.writes = writes;
  }
}

/**
 * Thrown by a handler: try again after exactly `delayMs` (no backoff, no jitter). It still
 * counts as an attempt, so a job that always asks to wait is dead after its last attempt.
 */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  readonly delayMs: number;
  constructor(delayMs: number, message = `retry in ${delayMs} ms`, options?: { cause?: unknown }) {
    if (!Number.isFinite(delayMs) || delayMs < 0)
      throw new TypeError(`RetryLaterError needs a finite delay in milliseconds ≥ 0, got ${delayMs}`);
    super(message, options);
    this.delayMs = delayMs;
  }
}

/** The reason a handler's signal aborts when the runner stops and the grace period ended. */
export class JobRunnerStoppedError extends Error {
  override name = 'JobRunnerStoppedError';
  constructor(graceMs: number) {
    super(
      `the job runner stopped and the job did not finish within graceMs (${graceMs} ms): it was released and will run again, its attempt not counted`,
    );
  }
}

/** `last_error` of a job whose lease lapsed on its last attempt: marked dead instead of claimed. */
export const leaseLapsedOnLastAttempt =
  'the lease lapsed on the last attempt (the worker crashed, was killed or stalled past its lease)';
