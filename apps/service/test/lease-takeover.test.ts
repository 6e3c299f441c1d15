// A request that outlives its lease while another request with the same key takes over:
// with records in the SQL database the late one's fenced commit rolls back; with records in
// Redis its SQL commit cannot be fenced, so created rows take their id from the idempotency
// record and a second run finds the first run's row. Either way: one key, one order, one
// user, and the key's answer is the 201 (never "username taken" for the caller's own user).
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'stall', quantity: 1, unitPriceCents: 100 }], currency: 'EUR' };
const redisPrefix = `retrysafe-test:${randomBytes(4).toString('hex')}:`;
const services: StartedService[] = [];

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  const redis = createClient({ url: 'redis://127.0.0.1:6379' });
  await redis.connect();
  const keys = await redis.keys(`${redisPrefix}*`);
  if (keys.length > 0) await redis.del(keys);
  await redis.quit();
});

describe.each([
  ['records in SQLite', {}, { fenced: true }],
  [
    'records in Redis',
    { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: redisPrefix },
    { fenced: false },
  ],
])('lease takeover with %s', (_name, env, { fenced }) => {
  it('creates one order when the first request outlives its lease and a retry takes over', async () => {
    const service = await startService({ env: { ...env, IDEMPOTENCY_LEASE_MS: '500' } });
    services.push(service);
    const client = api(service.url);
    const key = `stall-${randomBytes(4).toString('hex')}`;
    // Held inside its handler, after its claim and before its writes, far past the lease.
    const stalled = client('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key, 'x-test-delay-ms': '2500' },
    });
    let retry: Awaited<ReturnType<typeof client>> | undefined;
    for (let i = 0; i < 100; i++) {
      retry = await client('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
      if (retry.status !== 409) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(retry?.status).toBe(201); // the retry took the expired lease over and executed
    const first = await stalled;
    if (fenced) {
      // Its fenced commit matched nothing, so its whole transaction rolled back: 409, retry.
      expect(first.status).toBe(409);
      expect(first.json.type).toBe('urn:retrysafe:problem:idempotency-key-in-use');
    } else if (first.status === 201) {
      // Unfenced, it ran to the end: its insert found the retry's order (the same record id).
      expect(first.json.id).toBe(retry!.json.id);
    } else {
      expect(first.status).toBeGreaterThanOrEqual(400);
    }

    const list = await client('/orders');
    expect(list.json.data.map((o: { id: string }) => o.id)).toEqual([retry!.json.id]);
    const again = await client('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(retry!.json.id);
  });

  it('creates one user, and answers 201 for it, when the first request commits after its lease ended', async () => {
    const service = await startService({ env: { ...env, IDEMPOTENCY_LEASE_MS: '500' } });
    services.push(service);
    const client = api(service.url);
    const key = `late-${randomBytes(4).toString('hex')}`;
    const body = { username: `late_${randomBytes(3).toString('hex')}`, email: 'late@example.com' };
    // Held inside its transaction after its insert, past the lease: with records in Redis a
    // retry takes the key over meanwhile and runs the handler again.
    const stalled = client('/users', {
      method: 'POST',
      body,
      headers: { 'idempotency-key': key, 'x-test-delay-after-writes-ms': '2500' },
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    let retry: Awaited<ReturnType<typeof client>> | undefined;
    for (let i = 0; i < 100; i++) {
      retry = await client('/users', { method: 'POST', body, headers: { 'idempotency-key': key } });
      if (retry.status !== 409 || retry.json.type !== 'urn:retrysafe:problem:idempotency-key-in-use') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await stalled;
    // Never "username taken" for the caller's own user: the key's answer is the 201.
    expect(retry?.status).toBe(201);
    const users = (await client('/users?limit=100')).json.data.filter(
      (u: { username: string }) => u.username === body.username,
    );
    expect(users).toHaveLength(1);
    expect(retry!.json.id).toBe(users[0].id);
    const again = await client('/users', { method: 'POST', body, headers: { 'idempotency-key': key } });
    expect(again.status).toBe(201);
    expect(again.json.id).toBe(users[0].id);
  });
});
