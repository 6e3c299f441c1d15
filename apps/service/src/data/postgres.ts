// The reference service's data on PostgreSQL: users, orders and API keys beside the
// idempotency records, so several service processes share one database and an order and its
// stored response still commit in one transaction of the one unit of work, which also applies
// every part's migrations. Every call is bounded (PostgresLimits), so a stalled server answers
// 503 instead of hanging a request. `pg` is loaded only when this is used.
import type { Pool, PoolClient } from 'pg';
import { createPostgresJobQueue } from 'retrysafe/jobs/postgres';
import { createPostgresOperations } from 'retrysafe/operations/postgres';
import { createPostgresUnitOfWork, PostgresIdempotencyStore } from 'retrysafe/stores/postgres';
import { defaultPostgresLimits, type PostgresLimits } from '../config.js';
import { postgresImports } from '../imports/postgres.js';
import { operationsRetentionFromEnv } from '../imports/settings.js';
import { postgresApiKeys } from './postgres/api-keys.js';
import { postgresServiceMigrations } from './postgres/migrations.js';
import { postgresOrders } from './postgres/orders.js';
import { postgresUsers } from './postgres/users.js';
import type { ServiceData } from './types.js';
import { asUnavailable, guardEnqueue, guardUnavailable } from './unavailable.js';

export { postgresServiceMigrations } from './postgres/migrations.js';

export async function openPostgresServiceData(
  url: string,
  limits: PostgresLimits = defaultPostgresLimits,
): Promise<ServiceData<PoolClient>> {
  const { default: pg } = await import('pg');
  const pool: Pool = new pg.Pool({
    connectionString: url,
    max: limits.poolMax,
    connectionTimeoutMillis: limits.connectTimeoutMs,
    statement_timeout: limits.statementTimeoutMs,
    lock_timeout: limits.lockTimeoutMs,
    query_timeout: limits.queryTimeoutMs,
    // TCP keepalive: a peer that vanished is noticed even on an idle connection.
    keepAlive: true,
  });
  // An idle client that loses its server emits 'error'; without a listener it would crash the process.
  pool.on('error', () => {});
  // So may a client inside `pool.query` whose backend is terminated mid-query: pg-pool listens
  // there with `once`, and the second 'error' (the FATAL message, then the closed socket) found
  // no listener and crashed the process under chaos's backend kills. The query itself still
  // fails with the error, and the pool discards the client.
  pool.on('connect', (client) => client.on('error', () => {}));
  const unitOfWork = createPostgresUnitOfWork<PoolClient>(pool).register(...postgresServiceMigrations);
  const store = new PostgresIdempotencyStore<PoolClient>({ unitOfWork });
  // The outbox in the same database: a job or event commits with the order that caused it.
  const jobs = guardEnqueue(createPostgresJobQueue<PoolClient>({ database: unitOfWork }));
  // Operations in the same database too: an operation, its job and the request's record commit together.
  const operations = createPostgresOperations<PoolClient>({
    database: unitOfWork,
    jobs,
    retentionMs: operationsRetentionFromEnv(),
  });
  // Migrations may legitimately outlast the statement timeout (an index on a large table, a
  // wait for another process's migration lock): they run on a short-lived pool without it.
  const migrationPool: Pool = new pg.Pool({
    connectionString: url,
    max: 1,
    connectionTimeoutMillis: limits.connectTimeoutMs,
  });
  migrationPool.on('error', () => {});
  migrationPool.on('connect', (client) => client.on('error', () => {}));
  try {
    await createPostgresUnitOfWork<PoolClient>(migrationPool).migrate(unitOfWork.migrations);
  } catch (error) {
    await pool.end();
    throw error;
  } finally {
    await migrationPool.end();
  }
  return {
    store,
    jobs,
    async transaction(work) {
      try {
        return await unitOfWork.transaction(work);
      } catch (error) {
        // A statement of the work timed out or lost its server: the unit of work rolled back.
        throw asUnavailable(error);
      }
    },
    users: guardUnavailable(postgresUsers(pool)),
    // A class: its methods live on the prototype, which guardUnavailable does not wrap (the routes do).
    operations,
    orders: guardUnavailable(postgresOrders(pool)),
    imports: guardUnavailable(postgresImports(pool)),
    apiKeys: guardUnavailable(postgresApiKeys(pool, unitOfWork)),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}
