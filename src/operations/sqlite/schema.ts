// The operations table on SQLite, as migration parts registered in the unit of work.
import type { Migration } from '../../stores/migrations.js';
import type { SqliteDatabase } from '../../stores/sqlite/unit-of-work.js';

export const defaultSqliteOperationsTableName = 'retrysafe_operations';

/** The migration part of an operations table: `retrysafe.operations`, or `retrysafe.operations:<table>`. */
export function sqliteOperationsPart(tableName: string = defaultSqliteOperationsTableName): string {
  return tableName === defaultSqliteOperationsTableName
    ? 'retrysafe.operations'
    : `retrysafe.operations:${tableName}`;
}

export function checkSqliteOperationsTableName(tableName: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tableName))
    throw new TypeError(`tableName ${tableName} is not a plain identifier`);
  return tableName;
}

/**
 * The operations table by version. The CHECKs hold what the statements promise: a terminal row
 * has its end time, a failed one its error, a succeeded one its location. One index serves a
 * scope's newest-first list; a partial one the reaper's walk over ended rows.
 */
export function sqliteOperationMigrations(
  tableName: string = defaultSqliteOperationsTableName,
): Migration<SqliteDatabase>[] {
  const table = checkSqliteOperationsTableName(tableName);
  return [
    {
      part: sqliteOperationsPart(table),
      version: 1,
      name: 'create the operations table',
      up: `
        CREATE TABLE ${table} (
          id TEXT PRIMARY KEY NOT NULL,
          scope TEXT NOT NULL,
          kind TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('notStarted', 'running', 'succeeded', 'failed', 'canceled')),
          cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
          percent_complete REAL,
          processed INTEGER,
          total INTEGER,
          error_code TEXT,
          error_message TEXT,
          resource_location TEXT,
          job_id TEXT NOT NULL,
          version INTEGER NOT NULL,
          created_at_ms INTEGER NOT NULL,
          updated_at_ms INTEGER NOT NULL,
          finished_at_ms INTEGER,
          CHECK ((status IN ('succeeded', 'failed', 'canceled')) = (finished_at_ms IS NOT NULL)),
          CHECK (status <> 'failed' OR error_code IS NOT NULL),
          CHECK (status <> 'succeeded' OR resource_location IS NOT NULL)
        );
        CREATE INDEX ${table}_scope_created ON ${table} (scope, created_at_ms, id);
        CREATE INDEX ${table}_finished ON ${table} (finished_at_ms) WHERE finished_at_ms IS NOT NULL;`,
    },
  ];
}
