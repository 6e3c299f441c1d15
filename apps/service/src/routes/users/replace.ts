// PUT /users/{id}: full replacement under If-Match (compare-and-set on the ETag the
// precondition hook checked), or creation at a client-chosen UUID with If-None-Match: *.
import type { FastifyInstance } from 'fastify';
import { ConflictError, PreconditionFailedError, prefersMinimal, ValidationError } from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { buildUser, type UserInput, userPath } from '../../domain/users.js';
import { idParamsSchema, problemResponses, userReplaceSchema, userSchema } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';
import { validateParamsFirst } from '../../validation.js';
import { changedMeanwhile, created, type IdParams, representation, usernameTaken } from './answers.js';
import { userWritePreconditions } from './preconditions.js';

type ReplaceBody = UserInput & { id?: string; version?: number; createdAt?: string; updatedAt?: string };

export function replaceUserRoute<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks): void {
  app.put<IdParams & { Body: ReplaceBody }>(
    '/users/:id',
    {
      // The id is validated before the precondition hook looks it up (a NUL in it was a 500 on PostgreSQL).
      preValidation: [validateParamsFirst, userWritePreconditions(data.users, 'replace')],
      schema: {
        summary: 'Replace a user (or create one at a client-chosen UUID)',
        description:
          'Requires If-Match with the current ETag (428 without, 412 when stale). With If-None-Match: * at an unused UUID it creates the user (201). Fields left out are cleared. Prefer: return=minimal answers 204.',
        tags: ['users'],
        params: idParamsSchema,
        body: userReplaceSchema,
        response: {
          200: userSchema,
          201: userSchema,
          ...problemResponses(400, 401, 403, 404, 409, 412, 415, 422, 428),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const { id } = request.params;
      const { current, intent } = request.userWrite!;
      const { id: bodyId, version, createdAt: _c, updatedAt: _u, ...input } = request.body;
      if (bodyId !== undefined && bodyId !== id) {
        throw new ValidationError([
          { pointer: '/id', detail: `must be ${id}, the id in the path, or be left out` },
        ]);
      }
      if (version !== undefined && current !== undefined && version !== current.version) {
        throw new ConflictError(
          `The body says version ${version} but user ${id} is at version ${current.version}: reload it and try again.`,
          'stale-version',
        );
      }
      await hooks.beforeWrites(request);
      const user = buildUser(tenant, id, input, current);
      return reply.idempotent<Tx>(async (tx) => {
        if (intent === 'create') {
          const result = await data.users.insert(tx, user);
          if (!result.ok && result.reason === 'id-taken')
            throw new PreconditionFailedError(`User ${id} already exists.`);
          if (!result.ok && result.reason === 'username-taken')
            throw usernameTaken(user.username, result.existingId);
          return created(user, userPath(id));
        }
        const result = await data.users.replace(tx, user, current!.etag);
        if (!result.ok && result.reason === 'stale') throw changedMeanwhile(id);
        if (!result.ok && result.reason === 'username-taken')
          throw usernameTaken(user.username, result.existingId);
        if (prefersMinimal(request.headers.prefer)) return { status: 204, headers: { etag: user.etag } };
        return representation(200, user);
      });
    },
  );
}
