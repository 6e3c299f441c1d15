// DELETE /users/{id}: under If-Match, through the same precondition hook as PUT; the delete
// is a compare-and-set on the ETag that hook checked, so a change in between is 412.
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { idParamsSchema, problemResponses } from '../../schemas.js';
import { validateParamsFirst } from '../../validation.js';
import { changedMeanwhile, type IdParams } from './answers.js';
import { userWritePreconditions } from './preconditions.js';

export function deleteUserRoute<Tx>(app: FastifyInstance, data: ServiceData<Tx>): void {
  app.delete<IdParams>(
    '/users/:id',
    {
      preValidation: [validateParamsFirst, userWritePreconditions(data.users, 'delete')],
      schema: {
        summary: 'Delete a user',
        description: 'Requires If-Match with the current ETag.',
        tags: ['users'],
        params: idParamsSchema,
        response: {
          204: { type: 'null', description: 'Deleted' },
          ...problemResponses(401, 403, 404, 412, 428),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const { id } = request.params;
      const { current } = request.userWrite!;
      const deleted = await data.transaction((tx) => data.users.delete(tx, tenant, id, current!.etag));
      if (!deleted) throw changedMeanwhile(id);
      return reply.code(204).send();
    },
  );
}
