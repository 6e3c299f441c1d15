// README example: a checkout in steps on Fastify. The order, the charge (an external call with
// the derived key `<record id>:charge`) and the paid order with its outbox event are three
// steps: a retry after a failed charge resumes at the charge, never making a second order.
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createJobRunner } from 'retrysafe/effects';
import { idempotency, problemServerOptions, useProblemDetails } from 'retrysafe/fastify';
import { ServiceUnavailableError } from 'retrysafe/http';
import { createSqliteJobQueue } from 'retrysafe/jobs/sqlite';
import { createSqliteStore, createSqliteUnitOfWork, type SqliteDatabase } from 'retrysafe/stores/sqlite';

/** Whatever charges cards: it must take an idempotency key (Stripe, Adyen, … all do). */
export type Charge = (key: string, cents: number) => Promise<{ chargeId: string }>;

export async function buildCheckoutApp(charge: Charge, onOrderPaid: (orderId: string) => void) {
  const unitOfWork = createSqliteUnitOfWork(':memory:');
  const store = createSqliteStore({ database: unitOfWork });
  const jobs = createSqliteJobQueue({ database: unitOfWork }); // the outbox, in the same file
  unitOfWork.db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, cents INTEGER NOT NULL, charge TEXT)');
  const app = Fastify({ ...problemServerOptions });
  useProblemDetails(app);
  await app.register(idempotency<SqliteDatabase>, { store, scope: () => 'shop' });

  app.post<{ Body: { cents: number } }>(
    '/orders',
    { config: { idempotency: 'required' } },
    async (request, reply) => {
      const run = request.idempotency!;
      const id = run.idFor('order');
      // 1. Writes and their checkpoint in one transaction; a retry gets the saved result back.
      await run.step('order', (db: SqliteDatabase) => {
        db.prepare('INSERT INTO orders (id, cents) VALUES (?, ?)').run(id, request.body.cents);
      });
      // 2. Outside any transaction, with a key that is the same on every retry of this request.
      const { chargeId } = await run.call('charge', async ({ key }) => {
        try {
          return await charge(key, request.body.cents);
        } catch {
          throw new ServiceUnavailableError('The card processor did not answer: retry with the same key.', 1);
        }
      });
      // 3. The last writes, an outbox event and the stored 201 commit together.
      return reply.idempotent(async (db: SqliteDatabase) => {
        db.prepare('UPDATE orders SET charge = ? WHERE id = ?').run(chargeId, id);
        await jobs.enqueue(db, {
          topic: 'order.paid',
          id: run.idFor('order.paid'),
          payload: { orderId: id },
        });
        return { status: 201, headers: { location: `/orders/${id}` }, body: { id, chargeId } };
      });
    },
  );

  // The events leave through a job runner (here to a callback; in production a broker relay).
  const runner = createJobRunner<SqliteDatabase>({
    queue: jobs,
    handlers: { 'order.paid': ({ job }) => onOrderPaid((job.payload as { orderId: string }).orderId) },
  });
  app.addHook('onReady', () => runner.start());
  app.addHook('onClose', async () => {
    await runner.stop();
    await unitOfWork.close();
  });
  return { app, orders: () => unitOfWork.db.prepare('SELECT * FROM orders').all() };
}

export async function startCheckout(charge: Charge, onOrderPaid: (orderId: string) => void) {
  const { app, orders } = await buildCheckoutApp(charge, onOrderPaid);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, orders, close: () => app.close() };
}
