// What a store's statements mean, decided once for both dialects: a refused cancel read back as
// its outcome, and a create that met an existing id.
import { ConflictError } from '../http/problem.js';
import { isTerminal } from './status.js';
import type { CancelOutcome, Operation } from './types.js';

/** `changed`: the row the cancel UPDATE returned; `current`: the row read back when it changed nothing. */
export function cancelOutcome(changed: Operation | undefined, current: Operation | undefined): CancelOutcome {
  if (changed !== undefined)
    return { outcome: changed.status === 'canceled' ? 'canceled' : 'cancel-requested', operation: changed };
  if (current === undefined) return { outcome: 'not-found', operation: undefined };
  // Refused: it ended already, or it runs with a cancel requested before.
  return { outcome: isTerminal(current.status) ? 'terminal' : 'cancel-requested', operation: current };
}

/**
 * The id was taken: the same scope gets the existing operation (a retried create enqueues
 * nothing), another scope's id is a conflict that reveals nothing of it.
 */
export function existingForCreate(existing: Operation | undefined, id: string, scope: string): Operation {
  if (existing === undefined)
    throw new Error(`creating operation ${id} conflicted with a row it cannot find`);
  if (existing.scope !== scope)
    throw new ConflictError(`operation id ${id} is taken: choose another id`, 'operation-id-taken');
  return existing;
}

/** The job of a new operation already existed: an old job kept past the operation's own retention. */
export function jobIdTakenError(operationId: string, jobId: string): Error {
  return new ConflictError(
    `operation ${operationId} cannot be created: its job id ${jobId} is still held by an earlier job; choose another operation id`,
    'operation-id-taken',
  );
}
