// /refunds: money back on a charge, never more than is left on it. Keyed like a charge; the
// bound is checked in the refund's own transaction by one statement, so concurrent refunds
// cannot both pass it.
import type { FastifyInstance } from 'fastify';
import { NotFoundError, ValidationError } from 'retrysafe/http';
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import type { PaymentsData } from '../data.js';
import type { FaultInjector } from '../faults.js';
import { idParamsSchema, refundInputSchema } from '../schemas.js';
import type { RefundInput } from '../types.js';

const json = 'application/json; charset=utf-8';

export function refundPath(id: string): string {
  return `/refunds/${encodeURIComponent(id)}`;
}

export function refundRoutes(
  app: FastifyInstance,
  data: PaymentsData,
  faults: FaultInjector | undefined,
): void {
  app.post<{ Body: RefundInput }>(
    '/refunds',
    {
      config: { idempotency: 'required' },
      schema: { body: refundInputSchema },
      ...faults?.hooks(),
    },
    async (request, reply) => {
      const draft = {
        id: `re_${request.idempotency!.idFor('refund')}`,
        charge: request.body.charge,
        amount: request.body.amount,
        reference: request.body.reference,
        status: 'succeeded' as const,
        createdAt: new Date().toISOString(),
      };
      return reply.idempotent<SqliteDatabase>(async (tx) => {
        const result = data.refund(tx, draft);
        // A 4xx thrown here rolls the transaction back; the answer is stored and replayed.
        if (result.outcome === 'no-such-charge') {
          throw new ValidationError(
            [{ pointer: '/charge', detail: `is not a charge of this provider` }],
            `There is no charge ${draft.charge} to refund; nothing was refunded.`,
          );
        }
        if (result.outcome === 'exceeds-remaining') {
          throw new ValidationError(
            [{ pointer: '/amount', detail: `must be at most ${result.remaining}, what is left to refund` }],
            `Charge ${draft.charge} has ${result.remaining} left to refund, less than ${draft.amount}; nothing was refunded.`,
          );
        }
        const { refund } = result;
        return {
          status: 201,
          headers: { location: refundPath(refund.id), 'content-type': json },
          body: refund,
        };
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/refunds/:id',
    { schema: { params: idParamsSchema } },
    async (request, reply) => {
      const refund = data.getRefund(request.params.id);
      if (refund === undefined) throw new NotFoundError(`There is no refund ${request.params.id}.`);
      return reply.type(json).send(refund);
    },
  );
}
