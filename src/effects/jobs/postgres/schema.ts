// The jobs table on PostgreSQL, as migration parts registered in the unit of work, and the
// notification channel its enqueues announce themselves on.
import { createHash } from 'node:crypto';
import type { Migration } from '../../../stores/migrations.js';
import { checkPostgresIdentifier, type PgClientLike } from '../../../stores/postgres/unit-of-work.js';

export const defaultPostgresJobsTableName = 'retrysafe_jobs';

/** The migration part of a jobs table: `retrysafe.jobs`, or `retrysafe.jobs:<table>`. */
export function postgresJobsPart(tableName: string = defaultPostgresJobsTableName): string {
  return tableName === defaultPostgresJobsTableName ? 'retrysafe.jobs' : `retrysafe.jobs:${tableName}`;
}

/** PostgreSQL refuses channel names of 64 bytes or more (and LISTEN would cut them to 63). */
const channelPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function checkJobsChannel(channel: string): string {
  if (!channelPattern.test(channel)) {
    throw new TypeError(`channel ${channel} must be a plain identifier of at most 63 characters`);
  }
  return channel;
}

/** The table's name with `.` as `_` (`app.jobs` → `app_jobs`), or a digest when that is too long. */
export function defaultJobsChannel(tableName: string): string {
  const plain = tableName.replace('.', '_');
  if (channelPattern.test(plain)) return plain;
  return `retrysafe_jobs_${createHash('sha256').update(tableName).digest('hex').slice(0, 16)}`;
}

/**
 * The jobs table by version. Ids are text, not uuid: a caller-chosen id is often derived from
 * a request's record (`<record id>:<step>`). Three partial indexes serve the runner's scans:
 * due queued rows by `run_at_ms`, lapsed leases by `lease_expires_at_ms`, finished rows by
 * `finished_at_ms` for the reaper. (topic, dedupe_key) is unique; NULL keys never clash.
 */
export function postgresJobMigrations<Client extends PgClientLike = PgClientLike>(
  tableName: string = defaultPostgresJobsTableName,
): Migration<Client>[] {
  checkPostgresIdentifier('tableName', tableName);
  const index = (suffix: string) => indexName(tableName, suffix);
  return [
    {
      part: postgresJobsPart(tableName),
      version: 1,
      name: 'create the jobs table',
      up: `CREATE TABLE ${tableName} (
  id text PRIMARY KEY,
  topic text NOT NULL,
  payload jsonb NOT NULL,
  dedupe_key text,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
  run_at_ms bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer,
  lease_token text,
  lease_expires_at_ms bigint,
  last_error text,
  data jsonb NOT NULL DEFAULT '{}',
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL,
  finished_at_ms bigint,
  UNIQUE (topic, dedupe_key)
);
CREATE INDEX ${index('due')} ON ${tableName} (run_at_ms) WHERE state = 'queued';
CREATE INDEX ${index('leases')} ON ${tableName} (lease_expires_at_ms) WHERE state = 'running';
CREATE INDEX ${index('finished')} ON ${tableName} (finished_at_ms) WHERE state IN ('done', 'dead');`,
    },
  ];
}

/**
 * `<table>_<suffix>`, unqualified (an index lives in its table's schema). PostgreSQL cuts names
 * at 63 bytes, which would make a long table's three indexes collide: those get a digest.
 */
function indexName(tableName: string, suffix: string): string {
  const unqualified = tableName.split('.').pop()!;
  const name = `${unqualified}_${suffix}`;
  if (name.length <= 63) return name;
  const digest = createHash('sha256').update(tableName).digest('hex').slice(0, 12);
  return `${unqualified.slice(0, 63 - digest.length - suffix.length - 2)}_${digest}_${suffix}`;
}
