// The reference service's data on SQLite: users, orders and API keys in the same file as the
// idempotency records, so an order and its stored response commit in one transaction of the
// one unit of work, which also applies every part's migrations. A write lock another process
// holds past busy_timeout (SQLITE_BUSY) answers 503, never 500.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSqliteJobQueue } from 'retrysafe/jobs/sqlite';
import { createSqliteOperations } from 'retrysafe/operations/sqlite';
import { createSqliteUnitOfWork, type SqliteDatabase, SqliteIdempotencyStore } from 'retrysafe/stores/sqlite';
import { operationsRetentionFromEnv } from '../imports/settings.js';
import { sqliteImports } from '../imports/sqlite.js';
import { sqliteApiKeys } from './sqlite/api-keys.js';
import { sqliteServiceMigrations } from './sqlite/migrations.js';
import { sqliteOrders } from './sqlite/orders.js';
import { sqliteUsers } from './sqlite/users.js';
import type { ServiceData } from './types.js';
import { asUnavailable, guardEnqueue, guardUnavailable } from './unavailable.js';

export { sqliteServiceMigrations } from './sqlite/migrations.js';

export function openSqliteServiceData(path: string): ServiceData<SqliteDatabase> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const unitOfWork = createSqliteUnitOfWork(path).register(...sqliteServiceMigrations);
  // The store registers and applies its own migrations; then the service's.
  const store = new SqliteIdempotencyStore({ database: unitOfWork });
  // The outbox in the same file: a job or event commits with the order that caused it.
  const jobs = guardEnqueue(createSqliteJobQueue({ database: unitOfWork }));
  // Operations in the same file too: an operation, its job and the request's record commit together.
  const operations = createSqliteOperations({
    database: unitOfWork,
    jobs,
    retentionMs: operationsRetentionFromEnv(),
  });
  unitOfWork.migrate();
  const { db } = unitOfWork;
  return {
    store,
    jobs,
    async transaction(work) {
      try {
        return await unitOfWork.transaction(work);
      } catch (error) {
        // SQLITE_BUSY at BEGIN IMMEDIATE, in a statement or at COMMIT: the transaction rolled back.
        throw asUnavailable(error);
      }
    },
    users: guardUnavailable(sqliteUsers(db)),
    // A class: its methods live on the prototype, which guardUnavailable does not wrap (the routes do).
    operations,
    orders: guardUnavailable(sqliteOrders(db)),
    imports: guardUnavailable(sqliteImports(db)),
    apiKeys: guardUnavailable(sqliteApiKeys(unitOfWork)),
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      await unitOfWork.close();
    },
  };
}
