// Runs the store contract against the Redis store through an ioredis client on the real server
// at 127.0.0.1:6379, under a random key prefix deleted afterwards; plus Redis-only checks.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createIdempotencyEngine } from '../../src/idempotency/engine.js';
import { createRedisStore } from '../../src/stores/redis.js';
import { describeStoreContract } from './contract.js';

const filePrefix = `retrysafe-test:${randomBytes(6).toString('hex')}:`;
const client = new Redis({ host: '127.0.0.1', port: 6379 });
let stores = 0;

afterAll(async () => {
  const keys = await client.keys(`${filePrefix}*`);
  if (keys.length > 0) await client.del(...keys);
  await client.quit();
});

function freshStore() {
  stores++;
  return createRedisStore({ client, prefix: `${filePrefix}${stores}:` });
}

describeStoreContract(
  'redis (ioredis)',
  {
    create: async () => {
      const store = freshStore();
      return {
        store,
        ttlMs: (scopeKey) => client.pttl(store.keyFor(scopeKey)),
        // The exact bytes the release before record formats wrote: no formatVersion, no data.
        writeFormat1Record: async (record) => {
          const fields = JSON.stringify({
            scopeKey: record.scopeKey,
            recordId: record.recordId,
            fingerprint: record.fingerprint,
            leaseExpiresAtMs: record.leaseExpiresAtMs,
            expiresAtMs: record.expiresAtMs,
          });
          const value = record.response
            ? Buffer.concat([
                Buffer.from(`d:${record.token}\n${fields}\n`),
                Buffer.from(
                  `${JSON.stringify({ status: record.response.status, headers: record.response.headers, expiresAtMs: record.expiresAtMs })}\n`,
                ),
                Buffer.from(record.response.body),
              ])
            : Buffer.from(`c:${record.token}\n${fields}\n`);
          await client.set(store.keyFor(record.scopeKey), value, 'PXAT', Math.ceil(record.expiresAtMs));
        },
        cleanup: async () => {},
      };
    },
    writesFormat1: true,
    // Nothing listens on port 1; no retries and no offline queue, so a command fails at once.
    unavailable: async () => {
      const down = new Redis({
        host: '127.0.0.1',
        port: 1,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      down.on('error', () => {});
      return { store: createRedisStore({ client: down }), cleanup: async () => down.disconnect() };
    },
  },
  { expiry: 'ttl', transactional: false },
);

describe('redis store (ioredis)', () => {
  it('keeps each record in one string under the prefix, with a single Cluster hash tag', async () => {
    const store = freshStore();
    const engine = createIdempotencyEngine({ store, maxRecordsPerScope: 1_000 });
    // A scope with braces of its own must not be able to move the hash tag.
    const result = await engine.begin({
      scope: 'tenant-{x}',
      method: 'POST',
      route: '/orders',
      path: '/orders',
      key: 'k}{1',
      body: {},
    });
    expect(result.outcome).toBe('executed');
    // Besides the record, the scope's sorted set that counts its records for maxRecordsPerScope.
    expect(await client.type(store.scopeSetFor('tenant-{x}'))).toBe('zset');
    const keys = (await client.keys(`${store.prefix}*`)).filter(
      (key) => key !== store.scopeSetFor('tenant-{x}'),
    );
    expect(keys).toEqual([store.keyFor(result.outcome === 'executed' ? result.execution.scopeKey : '')]);
    expect(keys[0]).toMatch(new RegExp(`^${escapeRegExp(store.prefix)}\\{[A-Za-z0-9_-]{43}\\}$`));
    expect(await client.type(keys[0]!)).toBe('string');
  });

  it('refuses a prefix with braces, which would take over the hash tag', () => {
    expect(() => createRedisStore({ client, prefix: 'app:{shard}:' })).toThrow(TypeError);
  });

  it('keeps working after the script cache is flushed', async () => {
    const store = freshStore();
    const engine = createIdempotencyEngine({ store });
    const request = { scope: 't', method: 'POST', route: '/o', path: '/o', key: 'k', body: { n: 1 } };
    const first = await engine.begin(request);
    await client.script('FLUSH');
    expect((await engine.begin(request)).outcome).toBe('in_use');
    if (first.outcome === 'executed') await first.execution.release();
    expect((await engine.begin(request)).outcome).toBe('executed');
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
