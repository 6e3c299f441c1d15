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
  /** Query parameters besides limit and cursor that narrow the list; kept in the next link. */
  filters?: Record<string, object>;
  list(tenant: string, afterSeq: number, limit: number, filters: Record<string, string>): Promise<Page<T>>;
  represent(item: T): Record<string, unknown>;
}

export function listRoute<T>(app: FastifyInstance, options: ListRouteOptions<T>): void {
  const querystring = options.filters
    ? { ...listQuerySchema, properties: { ...listQuerySchema.properties, ...options.filters } }
    : listQuerySchema;
  app.get<{ Querystring: { limit: number; cursor?: string } & Record<string, string> }>(
    options.path,
    {
      schema: {
        summary: options.summary,
        tags: [options.tag],
        querystring,
        response: { 200: listSchema(options.itemSchema), ...problemResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const { limit, cursor, ...filters } = request.query;
      const page = await options.list(principalOf(request).tenant, decodeCursor(cursor), limit, filters);
      const { body, link } = pageResponse(
        options.path,
        limit,
        page.items.map(options.represent),
        page.nextAfterSeq,
      );
      const narrowed = new URLSearchParams(filters).toString();
      if (link)
        reply.header(
          'link',
          narrowed === '' ? link : link.replace('>; rel="next"', `&${narrowed}>; rel="next"`),
        );
      return body;
    },
  );
}
