// PUT /orders/{id} when the service process is SIGKILLed after the provider moved the money and
// before the change was applied: a restarted process on the same SQLite file or PostgreSQL
// database finishes it — on
// the client's retry of the same PUT, or by the change's completer job when the client never
// comes back — and the provider (a real simulator, shared across the restarts) moved money once.
// Needs `npm run build` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PaymentsSim, startPaymentsSim } from '../src/payments/sim.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';
import { items, paidOrder, put } from './orders-replace-helpers.js';

let sim: PaymentsSim;
const started: StartedService[] = [];
const databases: TestDatabase[] = [];

beforeAll(async () => {
  sim = await startPaymentsSim();
});
afterAll(async () => {
  for (const service of started.reverse()) await service.stop();
  for (const database of databases) await database.drop();
  await sim?.close();
});

type Backend = 'sqlite' | 'postgres';

/** A service process on a fresh database, or on `db` (a restart of the same service). */
async function start(backend: Backend, env: Record<string, string>, db?: string): Promise<StartedService> {
  let where: { dbPath: string } | { databaseUrl: string } | object = {};
  if (db !== undefined) where = backend === 'sqlite' ? { dbPath: db } : { databaseUrl: db };
  else if (backend === 'postgres') {
    const database = await createTestDatabase('retrysafe_replace_crash');
    databases.push(database);
    where = { databaseUrl: database.url };
  }
  const service = await startService({
    env: { PAYMENTS_URL: sim.url, JOBS_POLL_INTERVAL_MS: '100', ...env },
    ...where,
  });
  started.push(service);
  return service;
}

/** Resolves once the service logs that it holds a request at `point` (bounded). */
async function heldAt(service: StartedService, point: string): Promise<void> {
  for (let poll = 0; poll < 300; poll++) {
    if (service.logRecords().some((record) => record.msg === `test hook: holding at ${point}`)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the service never held a request at ${point}`);
}

/** Starts a PUT held after its payments, waits for the hold, and SIGKILLs the process. */
async function killAfterPayments(service: StartedService, id: string, etag: string, body: unknown) {
  const held = put(api(service.url), id, etag, body, {
    'x-test-hold-at': 'after-adjust',
    'x-test-hold-ms': '60000',
  }).then(
    (answer) => `answered ${answer.status}`,
    () => 'no answer',
  );
  await heldAt(service, 'after-adjust');
  await service.kill('SIGKILL');
  // The connection died with the process: the client saw no answer.
  expect(await held).toBe('no answer');
}

describe.each<Backend>(['sqlite', 'postgres'])(
  'PUT /orders/{id} across a SIGKILL between the payments and the apply on %s',
  (backend) => {
    it('the retried PUT in a new process answers 200 and the provider charged once', async () => {
      const first = await start(backend, { CHECKOUT_COMPLETER_DELAY_MS: '600000' });
      const order = await paidOrder(api(first.url), items(['globe', 1, 2000]));
      const body = items(['globe', 2, 2000], ['map', 1, 300]);
      const before = sim.stats();
      await killAfterPayments(first, order.id, order.etag, body);
      expect(sim.stats().charges - before.charges).toBe(1);

      const second = await start(backend, { CHECKOUT_COMPLETER_DELAY_MS: '600000' }, first.dbPath);
      const pending = await api(second.url)(`/orders/${order.id}`);
      expect(pending.json).toMatchObject({ version: 1, totalCents: 2000, pendingChange: { version: 2 } });
      const retried = await put(api(second.url), order.id, order.etag, body);
      expect(retried.status).toBe(200);
      expect(retried.json).toMatchObject({ version: 2, totalCents: 4300, payment: { paidCents: 4300 } });
      const again = await put(api(second.url), order.id, order.etag, body);
      expect(again.status).toBe(200);
      expect(again.text).toBe(retried.text);
      const after = sim.stats();
      expect(after.charges - before.charges).toBe(1);
      expect(after.chargedAmount - before.chargedAmount).toBe(2300);
      const charges = await fetch(`${sim.url}/charges?reference=${order.id}`).then((response) =>
        response.json(),
      );
      expect(charges.data.map((charge: { amount: number }) => charge.amount).sort()).toEqual([2000, 2300]);
    });

    it('with no retry, the completer in the new process applies the change, and the provider refunded once', async () => {
      const env = { CHECKOUT_COMPLETER_DELAY_MS: '1000' };
      const first = await start(backend, env);
      const order = await paidOrder(api(first.url), items(['tent', 1, 8000]));
      const before = sim.stats();
      await killAfterPayments(first, order.id, order.etag, items(['tent', 1, 5000]));
      expect(sim.stats().refunds - before.refunds).toBe(1);

      const second = await start(backend, env, first.dbPath);
      let read = await api(second.url)(`/orders/${order.id}`);
      for (let poll = 0; poll < 200 && read.json.version === 1; poll++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        read = await api(second.url)(`/orders/${order.id}`);
      }
      expect(read.json).toMatchObject({ version: 2, totalCents: 5000, payment: { paidCents: 5000 } });
      expect(read.json.pendingChange).toBeUndefined();
      const after = sim.stats();
      expect(after.refunds - before.refunds).toBe(1);
      expect(after.refundedAmount - before.refundedAmount).toBe(3000);
      expect(after.charges).toBe(before.charges);
      // The client coming back late with the same PUT gets the applied order; nothing moves.
      const late = await put(api(second.url), order.id, order.etag, items(['tent', 1, 5000]));
      expect(late.status).toBe(200);
      expect(late.text).toBe(read.text);
      expect(sim.stats()).toEqual(after);
    });
  },
);
