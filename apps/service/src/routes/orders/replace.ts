// PUT /orders/{id}: replaces the items of a paid, unshipped order under If-Match and charges or
// refunds the difference exactly once. The change is reserved on the order first (its ETag
// changes, so a concurrent PUT of the same version is 412 or 409 before it can reach the
// provider), the payments are made with keys derived from the order and the version replaced,
// and the change is applied in the transaction that stores the 200. The same PUT again resumes
// a pending change or, once applied, answers 200 with the order (rule 33), moving nothing.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ResponseDraft } from 'retrysafe';
import { NotFoundError, PreconditionRequiredError, prefersMinimal } from 'retrysafe/http';
import { principalOf } from '../../auth.js';
import {
  applyChange,
  ChangeInProgressError,
  type ChangeRequest,
  changedMeanwhile,
  checkChangePrecondition,
  decideChange,
  movePayments,
  reserveChange,
} from '../../checkout/adjust.js';
import type { CheckoutDeps } from '../../checkout/checkout.js';
import type { ServiceData } from '../../data/types.js';
import { type OrderInput, orderInputDigest, type StoredOrder, serializeOrder } from '../../domain/orders.js';
import { idParamsSchema, orderInputSchema, orderSchema, problemResponses } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';
import { validateParamsFirst } from '../../validation.js';

type ReplaceOrder = { Params: { id: string }; Body: OrderInput };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the PUT /orders/{id} hooks: the order its preconditions were checked against. */
    orderChange: { order: StoredOrder; change: ChangeRequest | undefined } | null;
  }
}

const json = 'application/json; charset=utf-8';

export function replaceOrderRoute<Tx>(app: FastifyInstance, deps: CheckoutDeps<Tx>, hooks: TestHooks): void {
  app.decorateRequest('orderChange', null);
  app.put<ReplaceOrder>(
    '/orders/:id',
    {
      config: { idempotency: 'optional' },
      // Existence, 428 and 412 before the body is validated (the id is checked before it is
      // looked up); what depends on the body before the key is claimed, so none of it is stored.
      preValidation: [validateParamsFirst, changePreconditions(deps.data)],
      preHandler: async (request: FastifyRequest<ReplaceOrder>) => decideBeforeClaim(request),
      schema: {
        summary: "Replace a paid order's items, charging or refunding the difference once",
        description:
          "Requires If-Match with the order's current ETag (428 without, 412 when stale). Only a paid order that has not shipped (409 order-not-paid / order-shipped), in its own currency (422). The difference is charged or refunded at the payment provider with keys derived from the order and the version replaced. The same PUT again (same If-Match and body, or the same Idempotency-Key) answers 200 and never moves money twice; another body while a change is under way is 409 change-in-progress with Retry-After. A provider failure is 503 with Retry-After: retry the same PUT. Prefer: return=minimal answers 204.",
        tags: ['orders'],
        params: idParamsSchema,
        headers: {
          type: 'object',
          properties: {
            'if-match': { type: 'string', description: "The order's current ETag." },
            'idempotency-key': { type: 'string', description: 'Optional; 1–255 printable ASCII characters.' },
          },
        },
        body: orderInputSchema,
        response: {
          200: orderSchema,
          204: { type: 'null', description: 'Replaced (Prefer: return=minimal); the new ETag is in ETag.' },
          ...problemResponses(400, 401, 403, 404, 409, 412, 415, 422, 428, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const { id } = request.params;
      const { change } = request.orderChange!;
      await hooks.beforeWrites(request);
      // Decided again in a transaction: the order may have moved since the hooks read it.
      const decision = await deps.data
        .transaction((tx) => reserveChange(tx, deps, tenant, id, change!))
        .catch((error: unknown) => {
          // Lost a race the hooks did not see. A 409 with Retry-After must not be stored as this
          // key's answer (its retries would replay it forever): the ETag moved under it, a 412.
          if (error instanceof ChangeInProgressError) throw changedMeanwhile(request.orderChange!.order);
          throw error;
        });
      if (decision.kind === 'applied') return reply.idempotent<Tx>(() => answer(request, decision.order));
      const made = await movePayments(deps, decision.order, decision.change);
      // The money moved, the change is not applied: a crash here leaves it to the retry or the completer.
      await hooks.holdAt(request, 'after-adjust');
      return reply.idempotent<Tx>(async (tx) => {
        const applied = await applyChange(tx, deps, tenant, id, decision.change, made);
        if (applied === undefined) throw changedMeanwhile(decision.order);
        await hooks.afterWrites(request);
        return answer(request, applied);
      });
    },
  );
}

function changePreconditions<Tx>(data: ServiceData<Tx>) {
  return async function checkChangePreconditions(
    request: FastifyRequest<ReplaceOrder>,
    _reply: FastifyReply,
  ): Promise<void> {
    const { id } = request.params;
    const order = await data.orders.get(principalOf(request).tenant, id);
    if (order === undefined) throw new NotFoundError(`There is no order ${id}.`);
    const ifMatch = request.headers['if-match'];
    if (ifMatch === undefined)
      throw new PreconditionRequiredError(
        `Replacing order ${id} requires If-Match with its current ETag: GET it, then send If-Match: <ETag>.`,
      );
    checkChangePrecondition(order, ifMatch);
    request.orderChange = { order, change: undefined };
  };
}

/** The body's refusals (409, 412, 422) before the key is claimed: none of them is stored. */
function decideBeforeClaim(request: FastifyRequest<ReplaceOrder>): void {
  const checked = request.orderChange!;
  const change: ChangeRequest = {
    ifMatch: request.headers['if-match']!,
    input: request.body,
    bodyDigest: orderInputDigest(request.body),
  };
  decideChange(checked.order, change);
  checked.change = change;
}

function answer(request: FastifyRequest, order: StoredOrder): ResponseDraft {
  if (prefersMinimal(request.headers.prefer)) return { status: 204, headers: { etag: order.etag } };
  return { status: 200, headers: { etag: order.etag, 'content-type': json }, body: serializeOrder(order) };
}
