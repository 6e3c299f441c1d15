// README example: payments on Express 5. A retried POST with the same Idempotency-Key answers
// the first 201 again; the charge and the stored answer commit in one SQLite transaction.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  createExpressIdempotency,
  methodNotAllowed,
  problemErrorHandler,
  problemNotFound,
} from 'retrysafe/express';
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
  const retrysafe = createExpressIdempotency<SqliteDatabase>({
    store,
    scope: (req) => accountOf(req.get('x-account-id')), // keys never cross accounts
  });
  const app = express();

  app.post(
    '/payments',
    retrysafe.route('required', async (ctx, req) => {
      const { cents } = paymentInput(ctx.body); // ctx.body: the JSON body, read once by retrysafe
      const id = ctx.idFor('payment'); // the same id on every retry of this key
      return ctx.commit((db) => insertPayment(db, accountOf(req.get('x-account-id')), { id, cents }));
    }),
  );
  app.get('/payments/:id', (req, res) => {
    res.json(findPayment(store.db, accountOf(req.get('x-account-id')), req.params.id));
  });
  app.get('/payments', (req, res) => {
    res.json(listPayments(store.db, accountOf(req.get('x-account-id'))));
  });

  // After the routes: 405 + Allow for a known path, 404 otherwise, every error as problem+json.
  app.use(methodNotAllowed(app), problemNotFound(), problemErrorHandler());
  return { app, store };
}

export async function startPayments(port = 0, database = ':memory:'): Promise<RunningPayments> {
  const { app, store } = buildPaymentsApp(database);
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
