// The reference service's data on PostgreSQL: users, orders and API keys beside the
// idempotency records, so several service processes share one database and an order and its
// stored response still commit in one transaction of the one unit of work, which also applies
// every part's migrations. `pg` is loaded only when this is used.
import type { Pool, PoolClient } from 'pg';
import { createPostgresUnitOfWork, PostgresIdempotencyStore } from 'retrysafe/stores/postgres';
import { postgresApiKeys } from './postgres/api-keys.js';
import { postgresServiceMigrations } from './postgres/migrations.js';
import { postgresOrders } from './postgres/orders.js';
import { postgresUsers } from './postgres/users.js';
import type { ServiceData } from './types.js';

export { postgresServiceMigrations } from './postgres/migrations.js';

export async function openPostgresServiceData(url: string): Promise<ServiceData<PoolClient>> {
  const { default: pg } = await import('pg');
  const pool: Pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client that loses its server emits 'error'; without a listener it would crash the process.
  pool.on('error', () => {});
  const unitOfWork = createPostgresUnitOfWork<PoolClient>(pool).register(...postgresServiceMigrations);
  const store = new PostgresIdempotencyStore<PoolClient>({ unitOfWork });
  try {
    await unitOfWork.migrate();
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    store,
    transaction: (work) => unitOfWork.transaction(work),
    users: postgresUsers(pool),
    orders: postgresOrders(pool),
    apiKeys: postgresApiKeys(pool, unitOfWork),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}
