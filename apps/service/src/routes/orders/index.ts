// /orders: the duplicate-order problem. POST requires an Idempotency-Key; the order row and
// the stored 201 commit in one transaction, so a retry replays instead of ordering twice.
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from 'retrysafe/http';
import { principalOf } from '../auth.js';
import type { ServiceData } from '../data/types.js';
import {
  buildOrder,
  type OrderInput,
  orderPath,
  orderRepresentation,
  serializeOrder,
} from '../domain/orders.js';
import { idParamsSchema, orderInputSchema, orderSchema, problemResponses } from '../schemas.js';
import type { TestHooks } from '../test-hooks.js';
import { listRoute } from './list.js';

const json = 'application/json; charset=utf-8';

export function orderRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks): void {
  app.post<{ Body: OrderInput }>(
    '/orders',
    {
      config: { idempotency: 'required' },
      schema: {
        summary: 'Place an order',
        description:
          'Requires Idempotency-Key. The same key and body again replays the first answer with Idempotent-Replayed: true; the same key with another body is 422; while the first is running, 409 with Retry-After.',
        tags: ['orders'],
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': { type: 'string', description: '1–255 printable ASCII characters.' },
          },
        },
        body: orderInputSchema,
        response: { 201: orderSchema, ...problemResponses(400, 401, 403, 409, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      await hooks.beforeWrites(request);
      // Derived from the idempotency record: every run of one key creates the same order.
      const order = buildOrder(tenant, request.body, request.idempotency!.idFor('order'));
      return reply.idempotent<Tx>(async (tx) => {
        const stored = await data.orders.insertOnce(tx, order);
        await hooks.afterWrites(request);
        return {
          status: 201,
          headers: { location: orderPath(stored.id), etag: stored.etag, 'content-type': json },
          body: serializeOrder(stored),
        };
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    {
      schema: {
        summary: 'Read an order',
        tags: ['orders'],
        params: idParamsSchema,
        response: { 200: orderSchema, ...problemResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const order = await data.orders.get(principalOf(request).tenant, request.params.id);
      if (!order) throw new NotFoundError(`There is no order ${request.params.id}.`);
      return reply.header('etag', order.etag).type(json).send(serializeOrder(order));
    },
  );

  listRoute(app, {
    path: '/orders',
    summary: 'List orders, oldest first',
    tag: 'orders',
    itemSchema: orderSchema,
    list: (tenant, afterSeq, limit) => data.orders.list(tenant, afterSeq, limit),
    represent: orderRepresentation,
  });
}
