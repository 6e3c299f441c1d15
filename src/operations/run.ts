// The job side of an operation: `runOperation` inside a job handler marks it running, guards each
// step and call with a cancel check, reports progress, and ends it succeeded, failed or canceled.
// Every transition is the store's conditional update, so a late or repeated run changes nothing.
import type { JobContext } from '../effects/jobs/context.js';
import { JobLeaseLostError } from '../effects/jobs/errors.js';
import type { StepCall } from '../effects/steps.js';
import { ProblemError, problemTypePrefix } from '../http/problem.js';
import {
  attemptsExhaustedCode,
  attemptsExhaustedMessage,
  OperationCanceledError,
  OperationFailedError,
} from './errors.js';
import { isTerminal } from './status.js';
import type {
  Operation,
  OperationError,
  OperationJobPayload,
  OperationProgress,
  OperationStore,
} from './types.js';

export interface OperationWork<Tx, Input> {
  /** The operation as this run started it. */
  operation: Operation;
  input: Input;
  /** `job:<id>`: the prefix of the derived keys of the job's calls. */
  key: string;
  /** The job's step, after a cancel check: throws `OperationCanceledError` once a cancel was asked for. */
  step<T>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T>;
  /** The job's call (derived key `job:<id>:<name>`), after the same cancel check. */
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T>;
  /** Records progress while the operation runs (percent never goes down). */
  progress(progress: OperationProgress): Promise<void>;
  /** Whether a cancel was asked for: for long loops inside one step or call. */
  cancelled(): Promise<boolean>;
  /** The job's signal: aborted when this run loses the job or the runner stops. */
  signal: AbortSignal;
}

/**
 * Runs an operation's work inside its job's handler and resolves with the operation as it ended
 * (undefined if it was reaped). The work returns the result's location.
 * - Not started: it moves to running; already ended (canceled before it started, or a repeated
 *   run): nothing runs.
 * - A cancel asked for is seen before each step and call: the operation ends canceled, the job done.
 *   A cancel that arrives after the last step loses: the work is done, so it ends succeeded.
 * - Success commits `succeeded` with the job's completion, in one transaction.
 * - `OperationFailedError`, or a 4xx `ProblemError` (the input cannot succeed), fails it at once
 *   with that code and message; the job is done. Any other error is retried by the job runner and
 *   fails the operation (`internal-error`, a message that reveals nothing) on the last attempt.
 */
export async function runOperation<Tx, Input>(
  context: JobContext<Tx, OperationJobPayload<Input>>,
  store: OperationStore<Tx>,
  work: (work: OperationWork<Tx, Input>) => Promise<string>,
): Promise<Operation | undefined> {
  const id = operationIdOf(context);
  const started = await store.start(id);
  const operation = started.operation;
  if (operation === undefined || isTerminal(operation.status)) return operation;
  const cancelRequested = async () => (await store.getById(id))?.cancelRequested === true;
  const guard = async () => {
    if (await cancelRequested()) throw new OperationCanceledError(id);
  };
  let location: string;
  try {
    if (operation.cancelRequested) throw new OperationCanceledError(id);
    location = await work({
      operation,
      input: context.job.payload.input,
      key: context.key,
      step: async (name, step) => {
        await guard();
        return context.step(name, step);
      },
      call: async (name, call) => {
        await guard();
        return context.call(name, call);
      },
      progress: async (progress) => {
        await store.progress(id, progress);
      },
      cancelled: cancelRequested,
      signal: context.signal,
    });
  } catch (error) {
    if (error instanceof OperationCanceledError && error.operationId === id)
      return end(context, (tx) => store.confirmCanceled(id, tx));
    if (error instanceof JobLeaseLostError) throw error;
    const permanent = permanentError(error);
    if (permanent !== undefined) return end(context, (tx) => store.fail(id, permanent, tx));
    if (context.job.attempt >= context.job.maxAttempts) {
      // The runner marks the job dead on this throw; the operation ends failed first.
      await store.fail(id, {
        code: attemptsExhaustedCode,
        message: attemptsExhaustedMessage(context.job.attempt),
      });
    }
    throw error;
  }
  return end(context, (tx) => store.succeed(id, location, tx));
}

/** The operation's id from its job's payload; a job enqueued by hand without it is a bug, said plainly. */
function operationIdOf(context: JobContext<unknown, OperationJobPayload<unknown>>): string {
  const id = (context.job.payload as Partial<OperationJobPayload> | null)?.operationId;
  if (typeof id !== 'string')
    throw new OperationFailedError(
      'not-an-operation-job',
      `job ${context.job.id} has no operationId in its payload: enqueue operation jobs with store.create`,
    );
  return id;
}

/** The transition and the job's completion in one fenced transaction; the operation as it ended. */
async function end<Tx>(
  context: JobContext<Tx, unknown>,
  transition: (tx: Tx) => Promise<{ operation: Operation | undefined }>,
): Promise<Operation | undefined> {
  const outcome = await context.complete(transition);
  return outcome.operation;
}

/** The error as the client sees it when it ends the operation at once; undefined when it may pass on a retry. */
function permanentError(error: unknown): OperationError | undefined {
  if (error instanceof OperationFailedError) return { code: error.code, message: error.message };
  if (error instanceof ProblemError && error.status >= 400 && error.status < 500) {
    const code = error.type.startsWith(problemTypePrefix)
      ? error.type.slice(problemTypePrefix.length)
      : error.type;
    return { code, message: error.message };
  }
  return undefined;
}
