// README example: payments on Fastify. A retried POST with the same Idempotency-Key answers the
// first 201 again; the charge and the stored answer commit in one SQLite transaction.
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { idempotency, problemServerOptions, useProblemDetails } from 'retrysafe/fastify';
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import {
  accountOf,
  findPayment,
  insertPayment,
  listPayments,
  openPaymentsStore,
  paymentInput,
  type RunningPayments,
} from './payments-shared.js';

export async function buildPaymentsApp(database = ':memory:') {
  const store = openPaymentsStore(database);
  const app = Fastify({ ...problemServerOptions });
  useProblemDetails(app); // every failure as problem+json, 405 + Allow included; before the routes
  await app.register(idempotency<SqliteDatabase>, {
    store,
    scope: (request) => accountOf(request.headers['x-account-id'] as string | undefined),
  });
  const account = (request: { headers: Record<string, unknown> }) =>
    accountOf(request.headers['x-account-id'] as string | undefined);

  app.post('/payments', { config: { idempotency: 'required' } }, async (request, reply) => {
    const { cents } = paymentInput(request.body);
    const id = request.idempotency!.idFor('payment'); // the same id on every retry of this key
    return reply.idempotent((db: SqliteDatabase) => insertPayment(db, account(request), { id, cents }));
  });
  app.get<{ Params: { id: string } }>('/payments/:id', async (request) =>
    findPayment(store.db, account(request), request.params.id),
  );
  app.get('/payments', async (request) => listPayments(store.db, account(request)));

  app.addHook('onClose', () => store.close());
  return app;
}

export async function startPayments(port = 0, database = ':memory:'): Promise<RunningPayments> {
  const app = await buildPaymentsApp(database);
  await app.listen({ host: '127.0.0.1', port });
  const address = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}
