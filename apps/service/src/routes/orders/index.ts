// /orders: the checkout (POST), reading one order, and the list (of one import's orders with ?importId=).
import type { FastifyInstance } from 'fastify';
import type { CheckoutDeps } from '../../checkout/checkout.js';
import { orderRepresentation } from '../../domain/orders.js';
import { importedOrdersPage } from '../../imports/list.js';
import { orderSchema } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';
import { listRoute } from '../list.js';
import { createOrderRoute } from './create.js';
import { readOrderRoute } from './read.js';
import { replaceOrderRoute } from './replace.js';

export function orderRoutes<Tx>(app: FastifyInstance, deps: CheckoutDeps<Tx>, hooks: TestHooks): void {
  createOrderRoute(app, deps, hooks);
  readOrderRoute(app, deps.data);
  replaceOrderRoute(app, deps, hooks);
  listRoute(app, {
    path: '/orders',
    summary: 'List orders, oldest first',
    tag: 'orders',
    itemSchema: orderSchema,
    filters: {
      importId: { type: 'string', maxLength: 128, description: 'Only the orders this import created.' },
    },
    list: (tenant, afterSeq, limit, { importId }) =>
      importId === undefined
        ? deps.data.orders.list(tenant, afterSeq, limit)
        : importedOrdersPage(deps.data, tenant, importId, afterSeq, limit),
    represent: orderRepresentation,
  });
}
