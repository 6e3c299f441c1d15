// End-to-end: the service on PostgreSQL through a loopback proxy the test cuts and stalls.
// Regressions: an outage answered 500 (the API-key lookup failing raw, reads failing raw), and
// a stalled server hanging requests for the whole stall. Every such answer must be a 503
// problem with Retry-After, /readyz must say so, and the service must recover by itself.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const order = { items: [{ sku: 'outage', quantity: 1, unitPriceCents: 100 }], currency: 'USD' };
/** Upper bound for one answer: a request that hangs past it fails the test instead of the run. */
const answerBoundMs = 20_000;

let database: TestDatabase;
let proxy: TcpProxy;
let service: StartedService;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_outage');
  proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
  service = await startService({
    databaseUrl: proxy.through(database.url),
    env: {
      PG_CONNECT_TIMEOUT_MS: '500',
      PG_STATEMENT_TIMEOUT_MS: '1000',
      PG_QUERY_TIMEOUT_MS: '1500',
      READY_TIMEOUT_MS: '1000',
    },
  });
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await proxy?.close();
  await database?.drop();
});

function call(token: string) {
  const asKey = api(service.url, token);
  return (path: string, init: Parameters<typeof asKey>[1] = {}) =>
    asKey(path, { ...init, headers: { ...init.headers } });
}

async function bounded<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${answerBoundMs} ms`)), answerBoundMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function expectUnavailable(answer: { status: number; headers: Headers; json: { status?: number } }) {
  expect(answer.status).toBe(503);
  expect(answer.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(answer.json.status).toBe(503);
}

async function untilRecovered(): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const ready = await fetch(`${service.url}/readyz`);
    if (ready.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the service did not become ready again');
}

describe('PostgreSQL outage', () => {
  it('answers 503 problem with Retry-After, not 500, for reads, writes and the API-key lookup while the database is cut, and recovers', async () => {
    const asA = call('demo-writer-a');
    expect((await asA('/orders')).status).toBe(200); // demo-writer-a is now cached
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);

    proxy.cut();
    const key = randomUUID();
    // demo-writer-b was never looked up: its key lookup meets the dead database.
    expectUnavailable(await bounded(call('demo-writer-b')('/orders')));
    expectUnavailable(await bounded(asA('/orders')));
    expectUnavailable(await bounded(asA(`/users/${randomUUID()}`)));
    expectUnavailable(
      await bounded(asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } })),
    );
    expectUnavailable(
      await bounded(asA('/users', { method: 'POST', body: { username: 'outage', email: 'o@example.com' } })),
    );
    const ready = await bounded(api(service.url)('/readyz'));
    expectUnavailable(ready);
    expect(ready.json.checks.database).not.toBe('ok');
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);

    proxy.restore();
    await untilRecovered();
    const retried = await asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key },
    });
    expect(retried.status).toBe(201);
    expect(
      (await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } })).status,
    ).toBe(201);
    const { rows } = await database.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM orders WHERE tenant = 'a'`,
    );
    expect(Number(rows[0]!.n)).toBe(1);
  }, 60_000);

  it('answers 503 instead of hanging while the database is stalled (connections open, nothing answered), and recovers', async () => {
    const asA = call('demo-writer-a');
    expect((await asA('/orders')).status).toBe(200);
    proxy.stall();
    expectUnavailable(await bounded(asA('/orders')));
    expectUnavailable(
      await bounded(
        asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': randomUUID() } }),
      ),
    );
    expectUnavailable(await bounded(api(service.url)('/readyz')));
    expect((await bounded(fetch(`${service.url}/healthz`))).status).toBe(200);
    proxy.restore();
    await untilRecovered();
    expect((await asA('/orders')).status).toBe(200);
  }, 60_000);
});
