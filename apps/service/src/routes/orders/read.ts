// GET /orders/{id}: the order with its payment and shipment state.
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { serializeOrder } from '../../domain/orders.js';
import { idParamsSchema, orderSchema, problemResponses } from '../../schemas.js';

const json = 'application/json; charset=utf-8';

export function readOrderRoute<Tx>(app: FastifyInstance, data: ServiceData<Tx>): void {
  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    {
      schema: {
        summary: 'Read an order, with its payment and shipment',
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
}
