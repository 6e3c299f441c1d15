// The operation store contract on the PostgreSQL server at 127.0.0.1:5432, in a throwaway
// database (tables per case) dropped afterwards; plus what is PostgreSQL's own: the migration
// part, and a wait in one process woken by a change another pool (process) made, by polling.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPostgresJobQueue } from '../../src/effects/jobs/postgres.js';
import { createPostgresOperations } from '../../src/operations/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { describeOperationStoreContract } from './contract.js';

const schema = 'operations_test';
let database: TestDatabase;
let pool: pg.Pool;
let tables = 0;

beforeAll(async () => {
  database = await createTestDatabase('retrysafe_operations');
  pool = newPool();
  await pool.query(`CREATE SCHEMA ${schema}`);
});

afterAll(async () => {
  await pool.end();
  await database.drop();
});

function newPool(): pg.Pool {
  // Enough connections for the property test's racing workers to really overlap.
  const created = new pg.Pool({ connectionString: database.url, max: 8 });
  // Teardown drops the database WITH (FORCE): a connection still closing reports it here.
  created.on('error', () => {});
  return created;
}

async function freshStore(options: {
  now?: () => number;
  retentionMs?: number;
  waitPollMs?: number;
  on?: pg.Pool;
}) {
  const n = ++tables;
  const on = options.on ?? pool;
  const queue = createPostgresJobQueue<pg.PoolClient>({
    database: on,
    tableName: `${schema}.jobs_${n}`,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  await queue.migrate();
  const store = createPostgresOperations<pg.PoolClient>({
    database: on,
    jobs: queue,
    tableName: `${schema}.operations_${n}`,
    allowShortRetention: true,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
    ...(options.waitPollMs === undefined ? {} : { waitPollMs: options.waitPollMs }),
  });
  await store.migrate();
  const rowsTable = `${schema}.rows_${n}`;
  await pool.query(`CREATE TABLE ${rowsTable} (id text PRIMARY KEY, tag text NOT NULL)`);
  return { queue, store, rowsTable };
}

describeOperationStoreContract<pg.PoolClient>('postgres', {
  async create(options) {
    const { queue, store, rowsTable } = await freshStore(options);
    return {
      store,
      queue,
      insertRow: async (tx, id, tag) => {
        await tx.query(`INSERT INTO ${rowsTable} (id, tag) VALUES ($1, $2)`, [id, tag]);
      },
      rows: async () =>
        (await pool.query(`SELECT id, tag FROM ${rowsTable} ORDER BY id COLLATE "C"`)).rows as never,
      worker: {
        dialect: 'postgres',
        location: database.url,
        jobsTable: queue.tableName,
        operationsTable: store.tableName,
        rowsTable,
        topic: 'operation.export',
      },
      cleanup: async () => {},
    };
  },
});

it('registers its table as a migration part, and migrating again finds nothing to do', async () => {
  const { store } = await freshStore({});
  const applied = await store.unitOfWork.applied();
  expect(applied.map((row) => `${row.part} v${row.version}`)).toContain(
    `retrysafe.operations:${store.tableName} v1`,
  );
  expect(await store.unitOfWork.migrate(store.migrations)).toEqual({ applied: [] });
});

it('ends a wait on a change made through another pool (another process), found by polling', async () => {
  const other = newPool();
  try {
    const { store } = await freshStore({ waitPollMs: 50 });
    const elsewhere = createPostgresOperations<pg.PoolClient>({
      database: other,
      jobs: createPostgresJobQueue<pg.PoolClient>({ database: other, tableName: `${schema}.jobs_${tables}` }),
      tableName: store.tableName,
    });
    const operation = await store.transaction((tx) =>
      store.create(tx, { scope: 't', kind: 'import', jobTopic: 'operation.import', jobPayload: {} }),
    );
    const waiting = store.waitFor('t', operation.id, { timeoutMs: 100_000 });
    await elsewhere.start(operation.id);
    await elsewhere.succeed(operation.id, '/imports/1');
    expect(await waiting).toMatchObject({ status: 'succeeded', resourceLocation: '/imports/1' });
  } finally {
    await other.end();
  }
}, 10_000);
