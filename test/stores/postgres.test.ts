// Runs the store contract against the PostgreSQL store on the real server at 127.0.0.1:5432,
// in a throwaway database (a schema per file inside it) dropped afterwards; plus the store's own
// checks: migrations, the unit of work's connection failures, long table names.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore, postgresMigrationSql } from '../../src/stores/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { describeStoreContract } from './contract.js';

const connection = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const schema = 'store_test';
let database: TestDatabase;
let pool: pg.Pool;
let tables = 0;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_store');
  pool = new pg.Pool({ connectionString: database.url, max: 10 });
  // Teardown drops the database WITH (FORCE), which terminates a connection still closing;
  // pg reports that on the pool, and an unheard 'error' event would fail the whole run.
  pool.on('error', () => {});
  await pool.query(`CREATE SCHEMA ${schema}`);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

async function freshStore() {
  tables++;
  const store = createPostgresStore<pg.PoolClient>({ pool, tableName: `${schema}.idempotency_${tables}` });
  await store.migrate();
  return store;
}

describeStoreContract<pg.PoolClient>(
  'postgres',
  {
    create: async () => {
      const store = await freshStore();
      const orders = `${schema}.orders_${tables}`;
      await pool.query(`CREATE TABLE ${orders} (id text PRIMARY KEY)`);
      return {
        store,
        // The INSERT the release before record formats ran: format_version and data take their defaults.
        writeFormat1Record: async (record) => {
          await pool.query(
            `INSERT INTO ${store.tableName} (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms,
               expires_at_ms, status, headers, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [
              record.scopeKey,
              record.recordId,
              record.fingerprint,
              record.token,
              record.response ? 'completed' : 'claimed',
              record.leaseExpiresAtMs,
              record.expiresAtMs,
              record.response?.status ?? null,
              record.response ? JSON.stringify(record.response.headers) : null,
              record.response ? Buffer.from(record.response.body) : null,
            ],
          );
        },
        business: {
          insert: async (tx, id) => {
            await tx.query(`INSERT INTO ${orders} (id) VALUES ($1)`, [id]);
          },
          count: async () => Number((await pool.query(`SELECT count(*) AS n FROM ${orders}`)).rows[0].n),
        },
        cleanup: async () => {},
      };
    },
    writesFormat1: true,
    // Nothing listens on port 1: every connection attempt is refused at once.
    unavailable: async () => {
      const downPool = new pg.Pool({ ...connection, port: 1, connectionTimeoutMillis: 2_000 });
      downPool.on('error', () => {});
      return { store: createPostgresStore({ pool: downPool }), cleanup: () => downPool.end() };
    },
  },
  { expiry: 'reaper', transactional: true, exactScopeBound: false },
);

describe('postgres store', () => {
  it('migrates idempotently, even from several processes at once, and indexes expires_at_ms', async () => {
    tables++;
    const store = createPostgresStore({ pool, tableName: `${schema}.idempotency_${tables}` });
    await Promise.all(Array.from({ length: 5 }, () => store.migrate()));
    await store.migrate();
    const [, table] = store.tableName.split('.');
    const indexes = await pool.query(
      'SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2',
      [schema, table],
    );
    expect(indexes.rows.map((row: { indexdef: string }) => row.indexdef)).toContainEqual(
      expect.stringMatching(/\(expires_at_ms\)$/),
    );
  });

  it('ships its migration as SQL for migration tools', () => {
    const sql = postgresMigrationSql('app.idempotency');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS app.idempotency');
    expect(sql).toContain(
      'CREATE INDEX IF NOT EXISTS idempotency_expires_at_ms ON app.idempotency (expires_at_ms)',
    );
  });

  it('refuses a table name that is not an identifier, so it can never inject SQL', () => {
    expect(() => createPostgresStore({ pool, tableName: 'records; DROP TABLE users' })).toThrow(TypeError);
    expect(() => postgresMigrationSql('a.b.c')).toThrow(TypeError);
  });

  it('returns every checked-out client to the pool, whether the work commits or throws', async () => {
    const store = await freshStore();
    const smallPool = new pg.Pool({ connectionString: database.url, max: 1 });
    const smallStore = createPostgresStore<pg.PoolClient>({ pool: smallPool, tableName: store.tableName });
    try {
      // With one connection, a single leaked client would make the next transaction wait forever.
      for (let attempt = 0; attempt < 3; attempt++) {
        await expect(
          smallStore.transaction(async () => Promise.reject(new Error('work failed'))),
        ).rejects.toThrow('work failed');
        expect(
          await smallStore.transaction(async (tx) => (await tx.query('SELECT 1 AS one')).rows[0].one),
        ).toBe(1);
      }
      expect(smallPool.idleCount).toBe(1);
    } finally {
      await smallPool.end();
    }
  });

  it('runs all of the work on one connection, inside one transaction', async () => {
    const store = await freshStore();
    const ids = 'SELECT pg_backend_pid() AS pid, txid_current()::text AS txid';
    const [first, second] = await store.transaction(async (tx) => [
      (await tx.query(ids)).rows[0],
      (await tx.query(ids)).rows[0],
    ]);
    // Outside a transaction every statement gets its own transaction id; inside, they share one.
    expect(second).toEqual(first);
  });
});
