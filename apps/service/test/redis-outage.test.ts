// End-to-end: the service on SQLite with idempotency records in Redis reached through a
// loopback proxy the test cuts and stalls. Regressions: /healthz said 200 while every keyed
// write answered 503 (now /readyz checks Redis), a stalled Redis hung requests, and a SQL
// transaction that could not start (SQLITE_BUSY) answered 500 instead of 503.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const order = { items: [{ sku: 'redis-outage', quantity: 1, unitPriceCents: 100 }], currency: 'USD' };
const answerBoundMs = 20_000;

let proxy: TcpProxy;
let service: StartedService;

beforeAll(async () => {
  proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
  service = await startService({
    env: {
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      REDIS_KEY_PREFIX: `retrysafe-test-outage-${randomUUID()}:`,
      REDIS_COMMAND_TIMEOUT_MS: '500',
      REDIS_CONNECT_TIMEOUT_MS: '500',
      READY_TIMEOUT_MS: '1000',
    },
  });
}, 60_000);
afterAll(async () => {
  await service?.stop();
  await proxy?.close();
});

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

function expectUnavailable(answer: { status: number; headers: Headers }) {
  expect(answer.status).toBe(503);
  expect(answer.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
}

async function untilReady(): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await fetch(`${service.url}/readyz`)).status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the service did not become ready again');
}

const post = (key: string) =>
  api(service.url)('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });

describe('Redis outage (records in Redis)', () => {
  it('/readyz answers a 503 problem naming Redis while it is cut, /healthz stays live, and both recover', async () => {
    const ready = await api(service.url)('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks).toEqual({ database: 'ok', redis: 'ok' });
    proxy.cut();
    const down = await bounded(api(service.url)('/readyz'));
    expectUnavailable(down);
    expect(down.json.checks.database).toBe('ok');
    expect(down.json.checks.redis).not.toBe('ok');
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expectUnavailable(await bounded(post(randomUUID())));
    proxy.restore();
    await untilReady();
    expect((await post(randomUUID())).status).toBe(201);
  }, 60_000);

  it('answers 503 instead of hanging while Redis is stalled, and recovers', async () => {
    await untilReady();
    proxy.stall();
    expectUnavailable(await bounded(post(randomUUID())));
    expectUnavailable(await bounded(api(service.url)('/readyz')));
    proxy.restore();
    await untilReady();
    expect((await post(randomUUID())).status).toBe(201);
  }, 60_000);

  it('answers 503 with Retry-After, not 500, when the SQL transaction cannot start (SQLITE_BUSY)', async () => {
    await untilReady();
    // Another process's write lock on the service's SQLite file, held past busy_timeout.
    const other = new Database(service.dbPath);
    other.exec('BEGIN IMMEDIATE');
    try {
      expectUnavailable(await bounded(post(randomUUID())));
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect((await post(randomUUID())).status).toBe(201);
  }, 60_000);
});
