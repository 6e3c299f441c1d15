// Several processes reap one PostgreSQL table at once. With the per-scope bound on, each
// deleted record also updates its scope's counter row, and two reapers deleting records of the
// same scopes in different orders took those rows in different orders: a deadlock (40P01) that
// failed one of them. One reaper at a time (an advisory lock) deletes; the others skip a round.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../../src/stores/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let database: TestDatabase;
const pools: pg.Pool[] = [];

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_reapers');
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await database.drop();
});

describe('postgres store: concurrent reapers', () => {
  it('never deadlocks on the scope counters, and together delete every expired record exactly once', async () => {
    const store = createPostgresStore({ pool: database.pool, tableName: 'reaped' });
    await store.migrate();
    const nowMs = Date.now();
    const records = 3_000;
    for (let i = 0; i < records; i++) {
      const claimed = await store.claim({
        scopeKey: `k${i}`,
        fingerprint: 'f',
        token: randomUUID(),
        recordId: randomUUID(),
        nowMs,
        leaseExpiresAtMs: nowMs + 1,
        // Expiry times interleave the scopes, so a batch in expiry order spans many of them.
        expiresAtMs: nowMs + 10 + ((i * 7919) % records),
        scopeLimit: { scope: `tenant-${i % 40}`, maxRecords: 1_000 },
      });
      expect(claimed.claimed).toBe(true);
    }
    // Four "processes": a pool and a store each, reaping in small batches at once.
    const reapers = Array.from({ length: 4 }, () => {
      const pool = new pg.Pool({ connectionString: database.url, max: 2 });
      pools.push(pool);
      return createPostgresStore({ pool, tableName: 'reaped' });
    });
    const later = nowMs + 10 + records;
    const deleted = await Promise.all(
      reapers.map(async (reaper) => {
        let total = 0;
        // Until the table is empty: a round that found the lock taken deletes nothing.
        for (let round = 0; round < 1_000; round++) {
          total += await reaper.reap(later, 50);
          const left = await database.pool.query('SELECT count(*)::int AS n FROM reaped');
          if (left.rows[0].n === 0) break;
        }
        return total;
      }),
    );
    expect(deleted.reduce((sum, n) => sum + n, 0)).toBe(records);
    const counters = await database.pool.query(
      'SELECT coalesce(sum(records), 0)::int AS n FROM reaped_scopes',
    );
    expect(counters.rows[0].n).toBe(0);
  }, 60_000);
});
