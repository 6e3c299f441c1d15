// End-to-end on PostgreSQL with real processes. Regressions: a backend terminated while a
// request held its transaction crashed the whole service process (an unheard 'error' event on
// the checked-out client), and racing identical create-by-PUTs answered 409 username-taken
// instead of 412 for the losers (the username was checked before the id).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAdminUrl, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'terminated', quantity: 2, unitPriceCents: 150 }], currency: 'USD' };

let database: TestDatabase;
let service: StartedService;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_pgfaults');
  // Terminating the service's backends must not take this pool's idle clients down with an unheard error.
  database.pool.on('error', () => {});
  service = await startService({ databaseUrl: database.url });
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await database?.drop();
});

/** pg_terminate_backend for every backend on the test database (the service's pool). */
async function terminateBackends(): Promise<number> {
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  try {
    const name = new URL(database.url).pathname.slice(1);
    const { rows } = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    return rows.length;
  } finally {
    await admin.end();
  }
}

describe('PostgreSQL faults', () => {
  it('survives pg_terminate_backend while a request holds its transaction: 503 problem with Retry-After, and a retry makes exactly one order', async () => {
    const asA = api(service.url);
    const key = randomUUID();
    const held = asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key, 'x-test-delay-after-writes-ms': '3000' },
    });
    for (let i = 0; i < 200 && !service.logs.some((l) => l.includes('holding the transaction')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(await terminateBackends()).toBeGreaterThan(0);
    const answer = await held;
    expect(answer.status).toBe(503);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(service.process.exitCode).toBeNull();
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);

    let retried = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    // The lease of the broken attempt may still be running (409 in use) until it is released.
    for (let i = 0; i < 100 && retried.status !== 201; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      retried = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    }
    expect(retried.status).toBe(201);
    const again = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    expect(again.status).toBe(201);
    expect(again.json.id).toBe(retried.json.id);
    const { rows } = await database.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM orders WHERE tenant = 'a'`,
    );
    expect(Number(rows[0]!.n)).toBe(1);
  }, 60_000);

  it('answers 412 (never 409 username-taken) to the losers of ~50 racing identical create-by-PUTs', async () => {
    const asA = api(service.url);
    const id = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        asA(`/users/${id}`, {
          method: 'PUT',
          body: { username: `race_${id.slice(0, 8)}`, email: 'race@example.com' },
          headers: { 'if-none-match': '*' },
        }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(49);
  }, 60_000);
});
