// Issue 10 item 2, with real processes: records in Redis, orders in one SQLite file shared by
// two service processes. A request outlives its lease inside its transaction; a takeover on
// the other process fails (every write there is an injected 5xx) and releases the key; the
// slow request then commits its order. The client's retry must find that order — one key, one
// order — and the slow request must not be told that nothing from it was kept.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'failed-takeover', quantity: 1, unitPriceCents: 100 }], currency: 'EUR' };
const redisPrefix = `retrysafe-test:${randomBytes(4).toString('hex')}:`;
const directory = mkdtempSync(join(tmpdir(), 'retrysafe-failed-takeover-'));
const services: StartedService[] = [];

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  rmSync(directory, { recursive: true, force: true });
  const redis = createClient({ url: 'redis://127.0.0.1:6379' });
  await redis.connect();
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(keys);
  await redis.quit();
});

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a failed takeover made a second order with Redis records', () => {
  it('creates exactly one order when a takeover fails and releases while the slow first run still commits', async () => {
    const dbPath = join(directory, 'service.db');
    const env = {
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: redisPrefix,
      IDEMPOTENCY_LEASE_MS: '500',
    };
    // Started one after the other: the second opens the file the first migrated.
    const healthy = await startService({ dbPath, env });
    services.push(healthy);
    const failing = await startService({ dbPath, env: { ...env, RETRYSAFE_TEST_FAIL_RATE: '1' } });
    services.push(failing);
    const slowClient = api(healthy.url);
    const failingClient = api(failing.url);
    const key = `failed-takeover-${randomBytes(4).toString('hex')}`;
    const headers = { 'idempotency-key': key };

    // Held inside its SQLite transaction after inserting the order, far past its 500 ms lease.
    const slow = slowClient('/orders', {
      method: 'POST',
      body: order,
      headers: { ...headers, 'x-test-delay-after-writes-ms': '3000' },
    });
    await until('the slow request to hold its transaction', () =>
      healthy.logs.some((line) => line.includes('test hook: holding the transaction after its writes')),
    );
    // The takeover on the other process: once the lease lapses it runs, fails with a 5xx, and
    // releases the key (before the fix: deleting the record and its id).
    let takeover: Awaited<ReturnType<typeof failingClient>> | undefined;
    await until('the takeover to run', async () => {
      takeover = await failingClient('/orders', { method: 'POST', body: order, headers });
      return takeover.status !== 409;
    });
    expect(takeover?.status).toBeGreaterThanOrEqual(500);

    // The slow request commits its order; its answer must not claim that nothing was kept.
    const first = await slow;
    expect(first.status).toBe(409);
    expect(first.json.type).toBe('urn:retrysafe:problem:idempotency-key-in-use');
    expect(first.json.detail).not.toMatch(/nothing from this attempt was kept/);

    // The client's retry runs under the same record, so it finds the slow run's order.
    const retry = await slowClient('/orders', { method: 'POST', body: order, headers });
    expect(retry.status).toBe(201);
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT id FROM orders').all() as { id: string }[];
      expect(rows.map((row) => row.id)).toEqual([retry.json.id]);
    } finally {
      db.close();
    }
    const again = await slowClient('/orders', { method: 'POST', body: order, headers });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(retry.json.id);
  });
});
