// Runs the store contract against the Redis store through a node-redis (`redis` package) client,
// and checks that records written by ioredis and node-redis are interchangeable.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdempotencyEngine } from '../../src/idempotency/engine.js';
import { createRedisStore } from '../../src/stores/redis.js';
import { describeStoreContract } from './contract.js';

const filePrefix = `retrysafe-test:${randomBytes(6).toString('hex')}:`;
const client = createClient({ socket: { host: '127.0.0.1', port: 6379 } });
let stores = 0;

beforeAll(async () => {
  await client.connect();
});

afterAll(async () => {
  const keys = await client.keys(`${filePrefix}*`);
  if (keys.length > 0) await client.del(keys);
  client.destroy();
});

function freshStore() {
  stores++;
  return createRedisStore({ client, prefix: `${filePrefix}${stores}:` });
}

describeStoreContract(
  'redis (node-redis)',
  {
    create: async () => {
      const store = freshStore();
      return { store, ttlMs: (scopeKey) => client.pTTL(store.keyFor(scopeKey)), cleanup: async () => {} };
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

describe('redis store across clients', () => {
  it('replays through node-redis a binary response stored through ioredis', async () => {
    const io = new Redis({ host: '127.0.0.1', port: 6379 });
    try {
      const prefix = `${filePrefix}shared:`;
      const engineIo = createIdempotencyEngine({ store: createRedisStore({ client: io, prefix }) });
      const engineNode = createIdempotencyEngine({ store: createRedisStore({ client, prefix }) });
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
