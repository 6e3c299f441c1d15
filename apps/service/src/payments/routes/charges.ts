// /charges: the money movement a retry must never repeat. POST requires an Idempotency-Key; the
// charge row and its stored 201 commit in one transaction, so a retry replays the first answer.
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from 'retrysafe/http';
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import { decodeCursor, encodeCursor } from '../../pagination.js';
import type { PaymentsData } from '../data.js';
import type { FaultInjector } from '../faults.js';
import { chargeInputSchema, chargeListQuerySchema, idParamsSchema } from '../schemas.js';
import type { Charge, ChargeInput, ChargePage } from '../types.js';

const json = 'application/json; charset=utf-8';

export function chargePath(id: string): string {
  return `/charges/${encodeURIComponent(id)}`;
}

export function chargeRoutes(
  app: FastifyInstance,
  data: PaymentsData,
  faults: FaultInjector | undefined,
): void {
  app.post<{ Body: ChargeInput }>(
    '/charges',
    {
      config: { idempotency: 'required' },
      schema: { body: chargeInputSchema },
      ...faults?.hooks(),
    },
    async (request, reply) => {
      const charge: Charge = {
        // Derived from the idempotency record: a run of this key after a rollback makes the same id.
        id: `ch_${request.idempotency!.idFor('charge')}`,
        amount: request.body.amount,
        currency: request.body.currency,
        reference: request.body.reference,
        status: 'succeeded',
        createdAt: new Date().toISOString(),
      };
      return reply.idempotent<SqliteDatabase>(async (tx) => {
        data.insertCharge(tx, charge);
        return {
          status: 201,
          headers: { location: chargePath(charge.id), 'content-type': json },
          body: charge,
        };
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/charges/:id',
    { schema: { params: idParamsSchema } },
    async (request, reply) => {
      const charge = data.getCharge(request.params.id);
      if (charge === undefined) throw new NotFoundError(`There is no charge ${request.params.id}.`);
      return reply.type(json).send(charge);
    },
  );

  // For audits: every charge made for one reference (an order), or all of them, oldest first.
  app.get<{ Querystring: { reference?: string; limit: number; cursor?: string } }>(
    '/charges',
    { schema: { querystring: chargeListQuerySchema } },
    async (request, reply) => {
      const { reference, limit, cursor } = request.query;
      const page = data.listCharges(reference, decodeCursor(cursor), limit);
      const nextCursor = page.nextAfterSeq === undefined ? null : encodeCursor(page.nextAfterSeq);
      if (nextCursor !== null) {
        const next = new URLSearchParams({
          ...(reference === undefined ? {} : { reference }),
          cursor: nextCursor,
        });
        next.set('limit', String(limit));
        reply.header('link', `</charges?${next}>; rel="next"`);
      }
      const body: ChargePage = { data: page.items, nextCursor };
      return reply.type(json).send(body);
    },
  );
}
