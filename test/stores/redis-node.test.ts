// Runs the store contract against the Redis store through node-redis (`redis` package) clients
// speaking RESP2 and RESP3, and checks that ioredis and node-redis records are interchangeable.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdempotencyEngine } from '../../src/idempotency/engine.js';
import { createRedisStore } from '../../src/stores/redis.js';
import { describeStoreContract } from './contract.js';

const filePrefix = `retrysafe-test:${randomBytes(6).toString('hex')}:`;
const resp2 = createClient({ socket: { host: '127.0.0.1', port: 6379 } });
const resp3 = createClient({ socket: { host: '127.0.0.1', port: 6379 }, RESP: 3 });
let stores = 0;

beforeAll(async () => {
  await Promise.all([resp2.connect(), resp3.connect()]);
});

afterAll(async () => {
  const keys = await resp2.keys(`${filePrefix}*`);
  if (keys.length > 0) await resp2.del(keys);
  resp2.destroy();
  resp3.destroy();
});

function freshStore(client: typeof resp2 | typeof resp3) {
  stores++;
  return createRedisStore({ client, prefix: `${filePrefix}${stores}:` });
}

for (const [protocol, client] of [
  ['RESP2', resp2],
  ['RESP3', resp3],
] as const) {
  describeStoreContract(
    `redis (node-redis, ${protocol})`,
    {
      create: async () => {
        const store = freshStore(client);
        return { store, ttlMs: (scopeKey) => resp2.pTTL(store.keyFor(scopeKey)), cleanup: async () => {} };
      },
      // Nothing listens on port 1; no reconnects and no offline queue, so a command fails at once.
      unavailable: async () => {
        const down = createClient({
          socket: { host: '127.0.0.1', port: 1, reconnectStrategy: false },
          disableOfflineQueue: true,
        });
        down.on('error', () => {});
        await down.connect().catch(() => {});
        return { store: createRedisStore({ client: down }), cleanup: async () => {} };
      },
    },
    { expiry: 'ttl', transactional: false },
  );

  it(`reads a stored record back with its bytes over ${protocol}`, async () => {
    const store = freshStore(client);
    const engine = createIdempotencyEngine({ store });
    const request = { scope: 't', method: 'POST', route: '/o', path: '/o', key: 'k', body: { n: 1 } };
    const first = await engine.begin(request);
    if (first.outcome !== 'executed') throw new Error(`expected executed, got ${first.outcome}`);
    const body = Uint8Array.from({ length: 256 }, (_, index) => index);
    await first.execution.commit(async () => ({ status: 201, headers: {}, body }));
    expect(await store.get(first.execution.scopeKey)).toMatchObject({
      state: 'completed',
      recordId: first.execution.recordId,
      response: { status: 201, headers: {}, body },
    });
    expect(await store.get('no such scope')).toBeUndefined();
  });
}

describe('redis store across clients', () => {
  it('replays through node-redis a binary response stored through ioredis', async () => {
    const io = new Redis({ host: '127.0.0.1', port: 6379 });
    try {
      const prefix = `${filePrefix}shared:`;
      const engineIo = createIdempotencyEngine({ store: createRedisStore({ client: io, prefix }) });
      const engineNode = createIdempotencyEngine({ store: createRedisStore({ client: resp2, prefix }) });
      const request = { scope: 't', method: 'POST', route: '/o', path: '/o', key: 'k', body: { n: 1 } };
      const body = Uint8Array.from({ length: 256 }, (_, index) => index);
      const first = await engineIo.begin(request);
      if (first.outcome !== 'executed') throw new Error(`expected executed, got ${first.outcome}`);
      await first.execution.commit(async () => ({ status: 201, headers: { etag: '"1"' }, body }));
      const replay = await engineNode.begin(request);
      expect(replay).toEqual({
        outcome: 'replayed',
        recordId: first.execution.recordId,
        response: { status: 201, headers: { etag: '"1"' }, body },
      });
    } finally {
      await io.quit();
    }
  });
});
