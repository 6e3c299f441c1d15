// /users: profiles created with POST (201 + Location, or 303 for HTML forms), read with GET
// (ETag, 304), replaced with PUT under If-Match or created by PUT with If-None-Match: *, and
// deleted under If-Match. One file per handler; the PUT/DELETE precondition hook is shared.
import type { FastifyInstance } from 'fastify';
import type { ServiceData } from '../../data/types.js';
import type { TestHooks } from '../../test-hooks.js';
import { createUserRoute } from './create.js';
import { deleteUserRoute } from './delete.js';
import { readUserRoutes } from './read.js';
import { replaceUserRoute } from './replace.js';

export function userRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks): void {
  app.decorateRequest('userWrite', null);
  createUserRoute(app, data, hooks);
  readUserRoutes(app, data);
  replaceUserRoute(app, data, hooks);
  deleteUserRoute(app, data);
}
