// POST /orders: a checkout in three steps under the request's idempotency record. (1) The
// pending order and its completer job commit together; (2) the charge is made at the provider
// with the derived key `<record id>:charge`, outside any transaction, and checkpointed; (3) the
// order is marked paid with its shipment and `order.paid` event, in the transaction that also
// stores the 201. A provider that fails or times out answers 503 with Retry-After: the record
// keeps its checkpoints, so the client's retry with the same key resumes at the charge (which
// the provider replays if it had charged), and the completer finishes what a client abandons.
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../auth.js';
import {
  type ChargeMade,
  type CheckoutDeps,
  chargeOrder,
  checkChargeable,
  finishCheckout,
  placeOrder,
} from '../../checkout/checkout.js';
import {
  buildOrder,
  type OrderInput,
  orderPath,
  type StoredOrder,
  serializeOrder,
  totalOf,
} from '../../domain/orders.js';
import { orderInputSchema, orderSchema, problemResponses } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';

const json = 'application/json; charset=utf-8';

export function createOrderRoute<Tx>(app: FastifyInstance, deps: CheckoutDeps<Tx>, hooks: TestHooks): void {
  app.post<{ Body: OrderInput }>(
    '/orders',
    {
      config: { idempotency: 'required' },
      // Before the key is claimed, like the schema: an order no charge could pay is a 422 that
      // is not stored, and nothing runs.
      preHandler: async (request) => checkChargeable(totalOf(request.body.items)),
      schema: {
        summary: 'Check out an order: place it, charge it, mark it paid',
        description:
          'Requires Idempotency-Key. The order is placed, charged once at the payment provider (with the key `<record id>:charge`) and marked paid with its shipment. If the provider fails or times out the answer is 503 with Retry-After: retry with the same key and the checkout resumes at the charge, never charging twice. The same key and body again replays the first answer with Idempotent-Replayed: true; the same key with another body is 422; while the first is running, 409 with Retry-After.',
        tags: ['orders'],
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': { type: 'string', description: '1–255 printable ASCII characters.' },
          },
        },
        body: orderInputSchema,
        response: { 201: orderSchema, ...problemResponses(400, 401, 403, 409, 415, 422, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const context = request.idempotency!;
      await hooks.beforeWrites(request);
      // Derived from the idempotency record: every run of one key checks out the same order,
      // and charges it with the same key.
      const orderId = context.idFor('order');
      const chargeKey = `${context.recordId}:charge`;
      const placed = await context.step<StoredOrder, Tx>('order', (tx) =>
        placeOrder(tx, deps, buildOrder(tenant, request.body, orderId, chargeKey)),
      );
      await hooks.holdAt(request, 'after-order');
      const charge = await context.call<ChargeMade>('charge', async () => {
        const made = await chargeOrder(deps, placed);
        // The charge is made and not yet checkpointed: a crash here is the hardest case.
        await hooks.holdAt(request, 'after-charge');
        return made;
      });
      await hooks.holdAt(request, 'after-charge-checkpoint');
      return reply.idempotent<Tx>(async (tx) => {
        const paid = await finishCheckout(tx, deps, tenant, orderId, charge);
        await hooks.afterWrites(request);
        return {
          status: 201,
          headers: { location: orderPath(paid.id), etag: paid.etag, 'content-type': json },
          body: serializeOrder(paid),
        };
      });
    },
  );
}
