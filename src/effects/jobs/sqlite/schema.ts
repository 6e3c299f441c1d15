// The jobs table on SQLite, as migration parts registered in the unit of work.
import type { Migration } from '../../../stores/migrations.js';
import type { SqliteDatabase } from '../../../stores/sqlite/unit-of-work.js';

export const defaultSqliteJobsTableName = 'retrysafe_jobs';

/** The migration part of a jobs table: `retrysafe.jobs`, or `retrysafe.jobs:<table>`. */
export function sqliteJobsPart(tableName: string = defaultSqliteJobsTableName): string {
  return tableName === defaultSqliteJobsTableName ? 'retrysafe.jobs' : `retrysafe.jobs:${tableName}`;
}

export function checkSqliteJobsTableName(tableName: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tableName))
    throw new TypeError(`tableName ${tableName} is not a plain identifier`);
  return tableName;
}

/**
 * The jobs table by version. A rowid table (payloads may be large, which WITHOUT ROWID handles
 * badly); three partial indexes serve the runner's three scans: due queued rows by `run_at_ms`,
 * lapsed leases by `lease_expires_at_ms`, finished rows by `finished_at_ms` for the reaper.
 */
export function sqliteJobMigrations(
  tableName: string = defaultSqliteJobsTableName,
): Migration<SqliteDatabase>[] {
  const table = checkSqliteJobsTableName(tableName);
  return [
    {
      part: sqliteJobsPart(table),
      version: 1,
      name: 'create the jobs table',
      up: `
        CREATE TABLE ${table} (
          id TEXT PRIMARY KEY NOT NULL,
          topic TEXT NOT NULL,
          payload TEXT NOT NULL,
          dedupe_key TEXT,
          state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
          run_at_ms INTEGER NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          max_attempts INTEGER,
          lease_token TEXT,
          lease_expires_at_ms INTEGER,
          last_error TEXT,
          data TEXT NOT NULL DEFAULT '{}',
          created_at_ms INTEGER NOT NULL,
          updated_at_ms INTEGER NOT NULL,
          finished_at_ms INTEGER,
          UNIQUE (topic, dedupe_key)
        );
        CREATE INDEX ${table}_due ON ${table} (run_at_ms) WHERE state = 'queued';
        CREATE INDEX ${table}_leases ON ${table} (lease_expires_at_ms) WHERE state = 'running';
        CREATE INDEX ${table}_finished ON ${table} (finished_at_ms) WHERE state IN ('done', 'dead');`,
    },
  ];
}
