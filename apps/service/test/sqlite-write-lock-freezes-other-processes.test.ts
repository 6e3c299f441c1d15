// End-to-end regression for issue 10 item 6: one SQLite process's write lock froze the others.
// Another connection (another process, in production) holds the file's write lock for longer
// than the service's lock-wait bound (5 s): while a keyed POST waits for it, /healthz and a GET
// answer — before the POST does, so while the lock is still held — and the POST answers a 503
// problem with Retry-After; once the lock is free, the same key creates exactly one order.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'write-lock', quantity: 1, unitPriceCents: 100 }], currency: 'USD' };

let service: StartedService;

beforeAll(async () => {
  service = await startService();
}, 60_000);
afterAll(async () => {
  await service?.stop();
});

it('answers /healthz and reads while another process holds the write lock, and the keyed POST a 503', async () => {
  const call = api(service.url);
  const post = (key: string) =>
    call('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
  const existing = await post(randomUUID());
  expect(existing.status).toBe(201);
  const key = randomUUID();

  const other = new Database(service.dbPath);
  other.exec('BEGIN IMMEDIATE');
  let postAnswered = false;
  try {
    const waiting = post(key).finally(() => {
      postAnswered = true;
    });
    // Lets the POST reach its wait for the lock (before the fix, a synchronous 5 s busy wait).
    await sleep(500);
    const health = await fetch(`${service.url}/healthz`);
    const read = await call(`/orders/${existing.json.id}`);
    // Ordering, not timing: both answered while the POST still waited for the lock we hold.
    expect(postAnswered).toBe(false);
    expect(health.status).toBe(200);
    expect(read.status).toBe(200);
    expect(read.json.id).toBe(existing.json.id);

    const refused = await waiting;
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  } finally {
    other.exec('ROLLBACK');
    other.close();
  }

  const created = await post(key);
  expect(created.status).toBe(201);
  const replayed = await post(key);
  expect(replayed.status).toBe(201);
  expect(replayed.headers.get('idempotent-replayed')).toBe('true');
  expect(replayed.json.id).toBe(created.json.id);
  const reader = new Database(service.dbPath, { readonly: true });
  try {
    const { n } = reader.prepare('SELECT count(*) AS n FROM orders WHERE id = ?').get(created.json.id) as {
      n: number;
    };
    expect(n).toBe(1);
    expect(reader.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 2 });
  } finally {
    reader.close();
  }
}, 60_000);
