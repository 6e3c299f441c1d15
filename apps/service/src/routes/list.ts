// One shape for every list endpoint: `?limit=&cursor=` in, `{ data, nextCursor }` and a
// `Link: rel="next"` out, scoped to the caller's tenant.
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../auth.js';
import type { Page } from '../data/types.js';
import { decodeCursor, pageResponse } from '../pagination.js';
import { listQuerySchema, listSchema, problemResponses } from '../schemas.js';

export interface ListRouteOptions<T> {
  path: string;
  summary: string;
  tag: string;
  itemSchema: object;
  list(tenant: string, afterSeq: number, limit: number): Promise<Page<T>>;
  represent(item: T): Record<string, unknown>;
}

export function listRoute<T>(app: FastifyInstance, options: ListRouteOptions<T>): void {
  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    options.path,
    {
      schema: {
        summary: options.summary,
        tags: [options.tag],
        querystring: listQuerySchema,
        response: { 200: listSchema(options.itemSchema), ...problemResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const { limit, cursor } = request.query;
      const page = await options.list(principalOf(request).tenant, decodeCursor(cursor), limit);
      const { body, link } = pageResponse(
        options.path,
        limit,
        page.items.map(options.represent),
        page.nextAfterSeq,
      );
      if (link) reply.header('link', link);
      return body;
    },
  );
}
