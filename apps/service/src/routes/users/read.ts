// GET /users/{id} (200 + ETag, 304 on a matching If-None-Match) and GET /users (pages).
import type { FastifyInstance } from 'fastify';
import { isNotModified } from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { serializeUser, userRepresentation } from '../../domain/users.js';
import { idParamsSchema, problemResponses, userSchema } from '../../schemas.js';
import { listRoute } from '../list.js';
import { type IdParams, userNotFound } from './answers.js';

export function readUserRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>): void {
  app.get<IdParams>(
    '/users/:id',
    {
      schema: {
        summary: 'Read a user',
        tags: ['users'],
        params: idParamsSchema,
        response: { 200: userSchema, ...problemResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const user = await data.users.get(principalOf(request).tenant, request.params.id);
      if (!user) throw userNotFound(request.params.id);
      if (isNotModified(request.headers['if-none-match'], user.etag)) {
        return reply.code(304).header('etag', user.etag).send();
      }
      return reply
        .header('etag', user.etag)
        .type('application/json; charset=utf-8')
        .send(serializeUser(user));
    },
  );

  listRoute(app, {
    path: '/users',
    summary: 'List users, oldest first',
    tag: 'users',
    itemSchema: userSchema,
    list: (tenant, afterSeq, limit) => data.users.list(tenant, afterSeq, limit),
    represent: userRepresentation,
  });
}
