// The one precondition hook for PUT and DELETE on /users/{id}: existence and If-Match /
// If-None-Match are decided before the body is validated (RFC 9110 §13.2.1), and the row they
// were checked against is handed to the handler, so it writes with compare-and-set on that ETag.
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  BadRequestError,
  evaluateWritePreconditions,
  PreconditionRequiredError,
  type WriteIntent,
} from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import type { UserRepository } from '../../data/types.js';
import type { StoredUser } from '../../domain/users.js';
import { type IdParams, userNotFound } from './answers.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the precondition hook: the row the preconditions were checked against. */
    userWrite: { current: StoredUser | undefined; intent: WriteIntent } | null;
  }
}

/** `replace` (PUT) may create at an unused UUID with If-None-Match: *; `delete` needs the row. */
export function userWritePreconditions(users: UserRepository<unknown>, write: 'replace' | 'delete') {
  return async function checkUserWritePreconditions(
    request: FastifyRequest<IdParams>,
    _reply: FastifyReply,
  ): Promise<void> {
    const { id } = request.params;
    const current = await users.get(principalOf(request).tenant, id);
    const ifMatch = request.headers['if-match'];
    const ifNoneMatch = write === 'replace' ? request.headers['if-none-match'] : undefined;
    if (write === 'delete' && !current) throw userNotFound(id);
    if (!current && ifMatch === undefined && ifNoneMatch === undefined) {
      throw new PreconditionRequiredError(
        `User ${id} does not exist. To create it at this id, send If-None-Match: * (the id must be a UUID).`,
      );
    }
    if (write === 'delete' && ifMatch === undefined) {
      throw new PreconditionRequiredError(`Deleting user ${id} requires If-Match with its current ETag.`);
    }
    const intent = evaluateWritePreconditions({
      ifMatch,
      ifNoneMatch,
      currentEtag: current?.etag,
      resource: `User ${id}`,
      requireIfMatch: true,
    });
    if (intent === 'create' && !uuidPattern.test(id)) {
      throw new BadRequestError(
        `A user created with PUT needs a UUID as its id; ${id} is not one.`,
        'invalid-id',
      );
    }
    request.userWrite = { current, intent };
  };
}
