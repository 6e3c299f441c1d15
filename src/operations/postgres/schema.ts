// The operations table on PostgreSQL, as migration parts registered in the unit of work.
import { createHash } from 'node:crypto';
import type { Migration } from '../../stores/migrations.js';
import { checkPostgresIdentifier, type PgClientLike } from '../../stores/postgres/unit-of-work.js';

export const defaultPostgresOperationsTableName = 'retrysafe_operations';

/** The migration part of an operations table: `retrysafe.operations`, or `retrysafe.operations:<table>`. */
export function postgresOperationsPart(tableName: string = defaultPostgresOperationsTableName): string {
  return tableName === defaultPostgresOperationsTableName
    ? 'retrysafe.operations'
    : `retrysafe.operations:${tableName}`;
}

/**
 * The operations table by version; the CHECKs hold what the statements promise (a terminal row
 * has its end time, a failed one its error, a succeeded one its location). Ids compare in byte
 * order (COLLATE "C"), so a list cursor means the same page on every server. One index serves a
 * scope's newest-first list, a partial one the reaper's walk over ended rows.
 */
export function postgresOperationMigrations<Client extends PgClientLike = PgClientLike>(
  tableName: string = defaultPostgresOperationsTableName,
): Migration<Client>[] {
  checkPostgresIdentifier('tableName', tableName);
  const index = (suffix: string) => indexName(tableName, suffix);
  return [
    {
      part: postgresOperationsPart(tableName),
      version: 1,
      name: 'create the operations table',
      up: `CREATE TABLE ${tableName} (
  id text COLLATE "C" PRIMARY KEY,
  scope text NOT NULL,
  kind text NOT NULL,
  status text NOT NULL CHECK (status IN ('notStarted', 'running', 'succeeded', 'failed', 'canceled')),
  cancel_requested boolean NOT NULL DEFAULT false,
  percent_complete double precision,
  processed bigint,
  total bigint,
  error_code text,
  error_message text,
  resource_location text,
  job_id text NOT NULL,
  version bigint NOT NULL,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  finished_at_ms bigint,
  CHECK ((status IN ('succeeded', 'failed', 'canceled')) = (finished_at_ms IS NOT NULL)),
  CHECK (status <> 'failed' OR error_code IS NOT NULL),
  CHECK (status <> 'succeeded' OR resource_location IS NOT NULL)
);
CREATE INDEX ${index('scope_created')} ON ${tableName} (scope, created_at_ms, id);
CREATE INDEX ${index('finished')} ON ${tableName} (finished_at_ms) WHERE finished_at_ms IS NOT NULL;`,
    },
  ];
}

/** `<table>_<suffix>`, unqualified; a digest when PostgreSQL's 63-byte cut would make two collide. */
function indexName(tableName: string, suffix: string): string {
  const unqualified = tableName.split('.').pop()!;
  const name = `${unqualified}_${suffix}`;
  if (name.length <= 63) return name;
  const digest = createHash('sha256').update(tableName).digest('hex').slice(0, 12);
  return `${unqualified.slice(0, 63 - digest.length - suffix.length - 2)}_${digest}_${suffix}`;
}
