// What a job handler is given: the job, its derived key, named steps and calls over the job's
// checkpoints, a fenced completion in the handler's own transaction, and an abort signal.
import type { StepCall } from '../steps.js';

export interface JobInfo<Payload = unknown> {
  id: string;
  topic: string;
  payload: Payload;
  /** 1 on the first run; a takeover after a crash counts as the next attempt. */
  attempt: number;
  maxAttempts: number;
  createdAtMs: number;
}

export interface JobContext<Tx, Payload = unknown> {
  job: JobInfo<Payload>;
  /** `job:<id>`: the prefix of every derived key (`job:<id>:<step>`). */
  key: string;
  /**
   * Runs `work` in one transaction with its checkpoint in the job's row (fenced), unless an
   * earlier attempt finished `name`: then returns that attempt's result without running it.
   */
  step<T>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T>;
  /**
   * An external call outside any transaction, with the derived key `job:<id>:<name>` to send as
   * its Idempotency-Key; its result is checkpointed, so a later attempt does not call again.
   */
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T>;
  /**
   * Runs `work` and marks the job done in one transaction, fenced: if another run took the job
   * over, the whole transaction rolls back and this throws `JobLeaseLostError`. Returning from
   * the handler without calling it completes the job on its own.
   */
  complete<T>(work: (tx: Tx) => T | Promise<T>): Promise<T>;
  /** Aborted when this run loses the job (its lease) or the runner stops and its grace ended. */
  signal: AbortSignal;
}

/**
 * Handles the jobs of one topic. Declared as a method so a handler written for a specific
 * payload type (`JobContext<Tx, { orderId: string }>`) fits the runner's `handlers` map.
 */
export type JobHandler<Tx, Payload = unknown> = {
  handle(context: JobContext<Tx, Payload>): unknown;
}['handle'];
