// End-to-end beyond one machine: three service processes sharing one PostgreSQL database
// (and, in the second suite, idempotency records in Redis) stay exactly-once.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'multi', quantity: 1, unitPriceCents: 100 }], currency: 'EUR' };

type Post = ReturnType<typeof api>;

/** Runs `tasks` with at most `limit` in flight. */
async function inBatches<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  }
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

/** POSTs until the answer is not 409 in-use (a bounded number of times), as a retrying client would. */
async function postUntilSettled(client: Post, key: string) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const r = await client('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    if (r.status !== 409) return r;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`key ${key} stayed in use`);
}

function describeCluster(name: string, options: { redis: boolean }) {
  describe(name, () => {
    let db: TestDatabase;
    let redisPrefix: string | undefined;
    let services: StartedService[] = [];
    let clients: Post[] = [];

    beforeAll(async () => {
      db = await createTestDatabase('retrysafe_multi');
      const env: Record<string, string> = {};
      if (options.redis) {
        redisPrefix = `retrysafe-test:${randomBytes(4).toString('hex')}:`;
        env.REDIS_URL = 'redis://127.0.0.1:6379';
        env.REDIS_KEY_PREFIX = redisPrefix;
      }
      // Started together: migrations and demo-key seeding must cope with racing processes.
      services = await Promise.all([0, 1, 2].map(() => startService({ databaseUrl: db.url, env })));
      clients = services.map((s) => api(s.url));
    });

    afterAll(async () => {
      await Promise.all(services.map((s) => s.stop()));
      await db?.drop();
      if (redisPrefix) {
        const redis = new Redis('redis://127.0.0.1:6379');
        const keys = await redis.keys(`${redisPrefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      }
    });

    async function ordersInDatabase(): Promise<number> {
      const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM orders');
      return Number(rows[0]!.n);
    }

    it('creates exactly one order for 200 requests with one key spread across 3 processes at once', async () => {
      const before = await ordersInDatabase();
      const key = randomUUID();
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          clients[i % 3]!('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } }),
        ),
      );
      const created = responses.filter((r) => r.status === 201);
      expect(created.length + responses.filter((r) => r.status === 409).length).toBe(200);
      expect(new Set(created.map((r) => r.json.id)).size).toBe(1);
      expect(created.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
      expect(await ordersInDatabase()).toBe(before + 1);
    });

    it('creates exactly 1,000 orders for 1,000 keys each sent twice to different processes', async () => {
      const before = await ordersInDatabase();
      const prefix = randomUUID();
      const pairs = await inBatches(1000, 40, async (i) => {
        const key = `${prefix}-${i}`;
        const [first, second] = await Promise.all([
          postUntilSettled(clients[i % 3]!, key),
          postUntilSettled(clients[(i + 1) % 3]!, key),
        ]);
        return { first, second };
      });
      for (const { first, second } of pairs) {
        expect(first.status).toBe(201);
        expect(second.status).toBe(201);
        expect(second.json.id).toBe(first.json.id);
      }
      expect(new Set(pairs.map((p) => p.first.json.id)).size).toBe(1000);
      expect(await ordersInDatabase()).toBe(before + 1000);
    });
  });
}

describeCluster('three processes sharing PostgreSQL', { redis: false });
describeCluster('three processes sharing PostgreSQL, idempotency records in Redis', { redis: true });
