// README example: payments on Hono, served on Node by @hono/node-server. A retried POST with the
// same Idempotency-Key answers the first 201 again; the charge and the stored answer commit in
// one SQLite transaction.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createHonoIdempotency, problemNotFound, problemOnError } from 'retrysafe/hono';
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

export function buildPaymentsApp(database = ':memory:') {
  const store = openPaymentsStore(database);
  const retrysafe = createHonoIdempotency<SqliteDatabase>({
    store,
    scope: (c) => accountOf(c.req.header('x-account-id')), // keys never cross accounts
  });
  const app = new Hono();

  app.post(
    '/payments',
    retrysafe.route('required', async (ctx, c) => {
      const { cents } = paymentInput(ctx.body); // ctx.body: the JSON body, read once by retrysafe
      const id = ctx.idFor('payment'); // the same id on every retry of this key
      return ctx.commit((db) => insertPayment(db, accountOf(c.req.header('x-account-id')), { id, cents }));
    }),
  );
  app.get('/payments/:id', (c) =>
    c.json(findPayment(store.db, accountOf(c.req.header('x-account-id')), c.req.param('id'))),
  );
  app.get('/payments', (c) => c.json(listPayments(store.db, accountOf(c.req.header('x-account-id')))));

  app.notFound(problemNotFound(app)); // 405 + Allow for a known path, 404 otherwise
  app.onError(problemOnError()); // every error as problem+json
  return { app, store };
}

export async function startPayments(port = 0, database = ':memory:'): Promise<RunningPayments> {
  const { app, store } = buildPaymentsApp(database);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
