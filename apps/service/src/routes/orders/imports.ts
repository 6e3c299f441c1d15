// POST /orders/imports: a bulk import of up to 10,000 orders as a 202 operation. The envelope
// is checked before anything is stored (400/413/415/422); the operation, its job and the
// import's input then commit in the request's transaction with its idempotency record, so the
// same key replays the same 202 and operation id. GET /orders/imports/{id}: what it did.
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from 'retrysafe/http';
import { acceptedResponse } from 'retrysafe/operations';
import { principalOf } from '../../auth.js';
import type { ServiceData } from '../../data/types.js';
import { asUnavailable } from '../../data/unavailable.js';
import { type ImportEnvelope, importEnvelope, ndjsonMediaType, parseNdjson } from '../../imports/envelope.js';
import type { ImportJobInput } from '../../imports/job.js';
import { importBodyLimitBytes, importJobTopic, maxImportOrders } from '../../imports/settings.js';
import { idParamsSchema, problemResponses } from '../../schemas.js';
import type { TestHooks } from '../../test-hooks.js';
import { operationSchema } from '../operation-resources.js';

export const importOperationKind = 'orders.import';

const fieldErrorsSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['pointer', 'detail'],
    properties: { pointer: { type: 'string' }, detail: { type: 'string' } },
  },
} as const;

const importSchema = {
  type: 'object',
  required: ['id', 'total', 'created', 'failed', 'errors', 'operation'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', description: 'Its operation’s status; absent once the operation was reaped.' },
    operation: { type: 'string', description: 'The operation’s URL.' },
    total: { type: 'integer', description: 'Orders in the request.' },
    created: { type: 'integer' },
    failed: { type: 'integer' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'errors'],
        properties: {
          index: { type: 'integer', description: '0-based, in the input.' },
          errors: fieldErrorsSchema,
        },
      },
    },
    callbackUrl: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

export function orderImportRoutes<Tx>(app: FastifyInstance, data: ServiceData<Tx>, hooks: TestHooks) {
  // Its own context: NDJSON is taken here only, so other routes keep answering 415 to it.
  return app.register(async (scope) => {
    scope.addContentTypeParser(
      ndjsonMediaType,
      { parseAs: 'string', bodyLimit: importBodyLimitBytes },
      parseNdjson,
    );
    const envelopes = new WeakMap<object, ImportEnvelope>();

    scope.post(
      '/orders/imports',
      {
        config: { idempotency: 'required' },
        bodyLimit: importBodyLimitBytes,
        // Before the key is claimed: an envelope that cannot start an import is a 422 that is
        // not stored, and nothing runs.
        preHandler: async (request) => {
          envelopes.set(request, importEnvelope(request.body));
        },
        schema: {
          summary: 'Import up to 10,000 orders as a long-running operation',
          description: `Requires Idempotency-Key. The body: a JSON array of orders (each as for POST /orders), \`{ "orders": [...], "callbackUrl": "https://…" }\`, or \`${ndjsonMediaType}\` (one order per line), at most ${maxImportOrders} orders and ${importBodyLimitBytes / 1024 / 1024} MiB. Answers 202 with Location and Operation-Location at /operations/{id} and Retry-After; the same key and body replays the same 202. Each order is checked in the job: good ones are created as \`placed\` (imported orders are not charged), bad ones reported by index at /orders/imports/{id}, and listed with GET /orders?importId={id}. The callbackUrl is recorded only (delivery comes with webhooks).`,
          tags: ['orders', 'operations'],
          headers: {
            type: 'object',
            properties: {
              'idempotency-key': { type: 'string', description: '1–255 printable ASCII characters.' },
            },
          },
          response: {
            202: {
              ...operationSchema,
              headers: {
                location: { type: 'string' },
                'operation-location': { type: 'string' },
                'retry-after': { type: 'integer' },
              },
            },
            ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
          },
        },
      },
      async (request, reply) => {
        const { tenant } = principalOf(request);
        const { orders, callbackUrl } = envelopes.get(request) ?? importEnvelope(request.body);
        const context = request.idempotency!;
        await hooks.beforeWrites(request);
        // Derived from the idempotency record: every run of one key starts the same operation.
        const id = context.idFor('import');
        const input = JSON.stringify(orders);
        return reply.idempotent<Tx>(async (tx) => {
          const operation = await data.operations.create<ImportJobInput>(tx, {
            id,
            scope: tenant,
            kind: importOperationKind,
            jobTopic: importJobTopic,
            jobPayload: { tenant, total: orders.length },
          });
          await data.imports.insert(
            tx,
            {
              tenant,
              id,
              total: orders.length,
              callbackUrl,
              createdAt: new Date(operation.createdAtMs).toISOString(),
            },
            input,
          );
          await hooks.afterWrites(request);
          return acceptedResponse(operation);
        });
      },
    );

    scope.get<{ Params: { id: string } }>(
      '/orders/imports/:id',
      {
        schema: {
          summary: 'What an import did: orders created, and the ones refused with their errors',
          description:
            'Counts and errors grow batch by batch while the operation runs; they are final once it succeeded. The created orders: GET /orders?importId={id}.',
          tags: ['orders'],
          params: idParamsSchema,
          response: { 200: importSchema, ...problemResponses(401, 404) },
        },
      },
      async (request) => {
        const { tenant } = principalOf(request);
        const { id } = request.params;
        const record = await data.imports.get(tenant, id);
        if (record === undefined) throw new NotFoundError(`There is no import ${id}.`);
        const [result, operation] = await Promise.all([
          data.imports.result(tenant, id),
          data.operations.get(tenant, id).catch((error: unknown) => {
            throw asUnavailable(error);
          }),
        ]);
        return {
          id,
          // The operation is reaped after its retention; the result stays.
          ...(operation === undefined ? {} : { status: operation.status }),
          operation: `/operations/${encodeURIComponent(id)}`,
          total: record.total,
          ...result,
          ...(record.callbackUrl === null ? {} : { callbackUrl: record.callbackUrl }),
          createdAt: record.createdAt,
        };
      },
    );
  });
}
