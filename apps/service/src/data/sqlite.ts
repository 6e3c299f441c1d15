// The reference service's data on SQLite: users, orders and API keys in the same file as the
// idempotency records, so an order and its stored response commit in one transaction of the
// one unit of work, which also applies every part's migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSqliteUnitOfWork, type SqliteDatabase, SqliteIdempotencyStore } from 'retrysafe/stores/sqlite';
import { sqliteApiKeys } from './sqlite/api-keys.js';
import { sqliteServiceMigrations } from './sqlite/migrations.js';
import { sqliteOrders } from './sqlite/orders.js';
import { sqliteUsers } from './sqlite/users.js';
import type { ServiceData } from './types.js';

export { sqliteServiceMigrations } from './sqlite/migrations.js';

export function openSqliteServiceData(path: string): ServiceData<SqliteDatabase> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const unitOfWork = createSqliteUnitOfWork(path).register(...sqliteServiceMigrations);
  // The store registers and applies its own migrations; then the service's.
  const store = new SqliteIdempotencyStore({ database: unitOfWork });
  unitOfWork.migrate();
  const { db } = unitOfWork;
  return {
    store,
    transaction: (work) => unitOfWork.transaction(work),
    users: sqliteUsers(db),
    orders: sqliteOrders(db),
    apiKeys: sqliteApiKeys(unitOfWork),
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      await unitOfWork.close();
    },
  };
}
