// /operations: the monitor of each 202 this service answered (bulk imports). A tenant sees only
// its own operations; another tenant's id is 404, like one that never existed. A monitor GET
// may long-poll with `Prefer: wait=N` (PROTOCOL rule 32); every non-terminal answer says
// when to look again with Retry-After.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotFoundError } from 'retrysafe/http';
import {
  cancelResponse,
  maxPreferWaitSeconds,
  type OperationResponseDraft,
  operationRepresentation,
  operationResponse,
  parsePreferWait,
} from 'retrysafe/operations';
import { principalOf } from '../auth.js';
import type { ServiceData } from '../data/types.js';
import { asUnavailable } from '../data/unavailable.js';
import { problemResponses } from '../schemas.js';

export const operationSchema = {
  type: 'object',
  required: ['id', 'kind', 'status', 'createdAt', 'lastUpdatedAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', description: 'What the work is, e.g. orders.import.' },
    status: { type: 'string', enum: ['notStarted', 'running', 'succeeded', 'failed', 'canceled'] },
    createdAt: { type: 'string', format: 'date-time' },
    lastUpdatedAt: { type: 'string', format: 'date-time' },
    percentComplete: { type: 'number', minimum: 0, maximum: 100 },
    processed: { type: 'integer' },
    total: { type: 'integer' },
    cancelRequested: { type: 'boolean', description: 'A cancel was asked for and has not taken effect yet.' },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    resourceLocation: { type: 'string', description: 'Where the result is, once succeeded.' },
  },
} as const;

const operationIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

const operationsListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    cursor: { type: 'string', maxLength: 500 },
  },
} as const;

const retryAfterHeader = {
  'retry-after': { type: 'integer', description: 'Seconds; only while not terminal.' },
};

export function operationResourceRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>): void {
  const operations = data.operations;
  // A shutdown ends every long-poll at once (each answers with the state as it is), so a
  // draining process is not held open by monitors waiting up to a minute.
  const closing = new AbortController();
  app.addHook('preClose', async () => {
    closing.abort();
  });

  app.get<{ Params: { id: string } }>(
    '/operations/:id',
    {
      schema: {
        summary: 'Monitor an operation (the target of a 202’s Operation-Location)',
        description: `A strong ETag of the representation; Retry-After while it has not ended. \`Prefer: wait=N\` (N ≤ ${maxPreferWaitSeconds}) holds the answer until the operation ends or N seconds pass, and echoes \`Preference-Applied: wait=N\`.`,
        tags: ['operations'],
        params: operationIdParams,
        headers: { type: 'object', properties: { prefer: { type: 'string', description: 'wait=N' } } },
        response: {
          200: { ...operationSchema, headers: retryAfterHeader },
          ...problemResponses(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const { tenant } = principalOf(request);
      const wait = parsePreferWait(request.headers.prefer);
      const operation = await unavailableAs503(async () => {
        if (wait === undefined || wait === 0) return operations.get(tenant, request.params.id);
        // The wait ends early when the client goes away: nobody is left to answer.
        const gone = new AbortController();
        const onClose = () => gone.abort();
        reply.raw.once('close', onClose);
        try {
          return await operations.waitFor(tenant, request.params.id, {
            timeoutMs: wait * 1000,
            signal: AbortSignal.any([gone.signal, closing.signal]),
          });
        } finally {
          reply.raw.off('close', onClose);
        }
      });
      if (operation === undefined) throw new NotFoundError(`There is no operation ${request.params.id}.`);
      return send(reply, operationResponse(operation, wait === undefined ? {} : { waitedSeconds: wait }));
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/operations',
    {
      schema: {
        summary: 'List your operations, newest first',
        tags: ['operations'],
        querystring: operationsListQuery,
        response: {
          200: {
            type: 'object',
            required: ['data', 'nextCursor'],
            properties: {
              data: { type: 'array', items: operationSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...problemResponses(400, 401),
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor } = request.query;
      // A cursor the store cannot read is its BadRequestError (400 invalid-cursor).
      const page = await unavailableAs503(() =>
        operations.list(principalOf(request).tenant, { limit, ...(cursor === undefined ? {} : { cursor }) }),
      );
      const nextCursor = page.nextCursor ?? null;
      if (nextCursor !== null)
        reply.header(
          'link',
          `</operations?limit=${limit}&cursor=${encodeURIComponent(nextCursor)}>; rel="next"`,
        );
      return { data: page.operations.map(operationRepresentation), nextCursor };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/operations/:id/cancel',
    {
      schema: {
        summary: 'Cancel an operation',
        description:
          '202 while the cancel takes effect (the work stops before its next step), 200 with the operation once canceled, 409 when it already ended otherwise, 404 when there is no such operation. Asking again is harmless.',
        tags: ['operations'],
        params: operationIdParams,
        response: { 200: operationSchema, 202: operationSchema, ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const outcome = await unavailableAs503(() =>
        operations.cancel(principalOf(request).tenant, request.params.id),
      );
      return send(reply, cancelResponse(outcome));
    },
  );
}

/** The store is a class (see data/sqlite.ts): an outage from it becomes the 503 every other route answers. */
async function unavailableAs503<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asUnavailable(error);
  }
}

function send(reply: FastifyReply, draft: OperationResponseDraft) {
  return reply.code(draft.status).headers(draft.headers).send(draft.body);
}
