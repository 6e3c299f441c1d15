// POST /users: a profile from JSON or an HTML form; 201 + Location + ETag, or 303 See Other
// for a browser form (Post/Redirect/Get). An optional Idempotency-Key makes retries replay.
import type { FastifyInstance } from 'fastify';
import { wantsSeeOther } from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { buildUser, type UserInput, userPath } from '../../domain/users.js';
import { problemResponses, userInputSchema, userSchema } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';
import { created, usernameTaken } from './answers.js';

export function createUserRoute<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks): void {
  app.post<{ Body: UserInput }>(
    '/users',
    {
      config: { idempotency: 'optional' },
      schema: {
        summary: 'Create a user',
        description:
          'JSON or an HTML form. 201 with Location and ETag; 303 See Other for a form post that accepts text/html. An optional Idempotency-Key makes retries replay.',
        tags: ['users'],
        body: userInputSchema,
        response: { 201: userSchema, ...problemResponses(400, 401, 403, 409, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      await hooks.beforeWrites(request);
      // Derived from the idempotency record when there is a key (fresh otherwise).
      const id = request.idempotency!.idFor('user');
      const seeOther = wantsSeeOther(request.headers['content-type'], request.headers.accept);
      return reply.idempotent<Tx>(async (tx) => {
        let user = buildUser(tenant, id, request.body);
        const result = await data.users.insert(tx, user);
        // A row with this key's id is an earlier run of this key (records in Redis, where a run
        // that outlived its lease may have committed): answer with it.
        const earlierRun = !result.ok && (result.reason === 'id-taken' || result.existingId === id);
        const existing = earlierRun ? await data.users.get(tenant, id) : undefined;
        if (existing) user = existing;
        else if (!result.ok) {
          if (result.reason === 'username-taken') throw usernameTaken(user.username, result.existingId);
          throw new Error('a freshly generated user id collided');
        }
        await hooks.afterWrites(request);
        const location = userPath(user.id);
        if (seeOther) {
          return {
            status: 303,
            headers: { location, 'content-type': 'text/plain; charset=utf-8' },
            body: `See ${location}`,
          };
        }
        return created(user, location);
      });
    },
  );
}
