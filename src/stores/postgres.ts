// `retrysafe/stores/postgres`: the shared store for many processes. Records live in your
// PostgreSQL database, so a handler's rows and its stored response commit in one transaction.
import { createHash } from 'node:crypto';
import {
  type ClaimInput,
  type ClaimResult,
  type CompleteInput,
  currentRecordFormatVersion,
  type IdempotencyRecord,
  type IdempotencyStore,
  type RecordData,
  releasedToken,
  type SaveDataInput,
  takeoverRecordId,
} from '../idempotency/store.js';
import type { Migration } from './migrations.js';
import {
  checkPostgresIdentifier,
  type PgClientLike,
  type PgPoolLike,
  type PgQueryResultLike,
  type PostgresUnitOfWork,
  postgresUnitOfWork,
} from './postgres/unit-of-work.js';

export * from './migrations.js';
export * from './postgres/unit-of-work.js';

export const defaultPostgresTableName = 'retrysafe_idempotency';

/** A record deleted between our refused claim and our read is claimed again, at most this often. */
const maxClaimAttempts = 5;

export type PostgresStoreOptions<Client extends PgClientLike = PgClientLike> = (
  | {
      /** The unit of work your repositories share (recommended). */
      unitOfWork: PostgresUnitOfWork<Client>;
      pool?: undefined;
    }
  | {
      /** A pool you already use; wrapped in its unit of work. */
      pool: PgPoolLike<Client>;
      unitOfWork?: undefined;
    }
) & {
  /** A plain or schema-qualified identifier (`retrysafe_idempotency`, `app.idempotency`). */
  tableName?: string;
  /**
   * Send the per-request statements as named (prepared) statements, so PostgreSQL plans them
   * once per connection. Default true; turn off behind a pooler that cannot keep them (PgBouncer
   * in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
};

interface RecordRow {
  scope_key: string;
  record_id: string;
  fingerprint: string;
  token: string;
  state: 'claimed' | 'completed';
  // int8 columns arrive as strings from pg: they may exceed 2^53, ours never do.
  lease_expires_at_ms: string | number;
  expires_at_ms: string | number;
  status: number | null;
  headers: Record<string, string> | string | null;
  body: Uint8Array | null;
  // Absent on a row read before the format migration ran; NOT NULL DEFAULT 1 / '{}' after it.
  format_version?: number;
  data?: RecordData | string;
}

/** The migration part of the store's table: `retrysafe.idempotency`, or `retrysafe.idempotency:<table>`. */
export function postgresStorePart(tableName: string = defaultPostgresTableName): string {
  return tableName === defaultPostgresTableName
    ? 'retrysafe.idempotency'
    : `retrysafe.idempotency:${tableName}`;
}

/**
 * The store's schema, by version. v1 is the table of the releases before the migration
 * registry (`IF NOT EXISTS`, so a table they created is adopted as it is); v2 adds the record
 * format and its data part, upgrading such a table in place: its rows read as format 1, `{}`.
 * The index on expires_at_ms keeps the reaper's batches cheap however large the table grows.
 */
export function postgresStoreMigrations<Client extends PgClientLike = PgClientLike>(
  tableName: string = defaultPostgresTableName,
): Migration<Client>[] {
  checkPostgresIdentifier('tableName', tableName);
  // An index lives in its table's schema, so its own name is never qualified.
  const unqualified = tableName.split('.').pop();
  const indexName = `${unqualified}_expires_at_ms`;
  const part = postgresStorePart(tableName);
  return [
    {
      part,
      version: 1,
      name: 'create the records table',
      up: `CREATE TABLE IF NOT EXISTS ${tableName} (
  scope_key text PRIMARY KEY,
  record_id text NOT NULL,
  fingerprint text NOT NULL,
  token text NOT NULL,
  state text NOT NULL CHECK (state IN ('claimed', 'completed')),
  lease_expires_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  status integer,
  headers jsonb,
  body bytea
);
CREATE INDEX IF NOT EXISTS ${indexName} ON ${tableName} (expires_at_ms);`,
    },
    {
      part,
      version: 2,
      name: 'add the record format version and data part',
      up: `ALTER TABLE ${tableName}
  ADD COLUMN IF NOT EXISTS format_version integer NOT NULL DEFAULT 1,
  ADD COLUMN IF NOT EXISTS data jsonb NOT NULL DEFAULT '{}';`,
    },
    {
      part,
      version: 3,
      name: 'count the records of each scope',
      // The trigger keeps the count in the same statement as every insert and delete. Rows
      // written before this migration carry no scope, and are not counted.
      up: `ALTER TABLE ${tableName} ADD COLUMN IF NOT EXISTS scope text;
CREATE TABLE IF NOT EXISTS ${tableName}_scopes (scope text PRIMARY KEY, records bigint NOT NULL);
CREATE OR REPLACE FUNCTION ${tableName}_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.scope IS NOT NULL THEN
    INSERT INTO ${tableName}_scopes AS s (scope, records) VALUES (NEW.scope, 1)
      ON CONFLICT (scope) DO UPDATE SET records = s.records + 1;
  ELSIF TG_OP = 'DELETE' AND OLD.scope IS NOT NULL THEN
    UPDATE ${tableName}_scopes SET records = records - 1 WHERE scope = OLD.scope;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ${unqualified}_count ON ${tableName};
CREATE TRIGGER ${unqualified}_count AFTER INSERT OR DELETE ON ${tableName}
  FOR EACH ROW EXECUTE FUNCTION ${tableName}_count();`,
    },
    {
      part,
      version: 4,
      name: 'count a record once a bounded claim takes it over',
      // A row written while no bound was given has no scope; a bounded takeover sets it.
      up: `CREATE OR REPLACE FUNCTION ${tableName}_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.scope IS NOT NULL THEN
    INSERT INTO ${tableName}_scopes AS s (scope, records) VALUES (NEW.scope, 1)
      ON CONFLICT (scope) DO UPDATE SET records = s.records + 1;
  ELSIF TG_OP = 'DELETE' AND OLD.scope IS NOT NULL THEN
    UPDATE ${tableName}_scopes SET records = records - 1 WHERE scope = OLD.scope;
  ELSIF TG_OP = 'UPDATE' AND OLD.scope IS NULL AND NEW.scope IS NOT NULL THEN
    INSERT INTO ${tableName}_scopes AS s (scope, records) VALUES (NEW.scope, 1)
      ON CONFLICT (scope) DO UPDATE SET records = s.records + 1;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ${unqualified}_count ON ${tableName};
CREATE TRIGGER ${unqualified}_count AFTER INSERT OR DELETE OR UPDATE OF scope ON ${tableName}
  FOR EACH ROW EXECUTE FUNCTION ${tableName}_count();`,
    },
  ];
}

/**
 * The DDL the store needs, for your own migration tool: every version's SQL, each safe to run
 * again. `migrate()` applies the same migrations through the registry.
 */
export function postgresMigrationSql(tableName: string = defaultPostgresTableName): string {
  return `${postgresStoreMigrations(tableName)
    .map((migration) => migration.up)
    .join('\n')}\n`;
}

/**
 * Prepared-statement names are cut at 63 bytes by PostgreSQL, so two long ones can collide:
 * the name is a short digest of the table (unique per table) and the statement's kind.
 */
export function postgresStatementName(tableName: string, statement: string): string {
  const digest = createHash('sha256').update(tableName).digest('hex').slice(0, 16);
  return `retrysafe_${digest}_${statement}`;
}

export class PostgresIdempotencyStore<Client extends PgClientLike = PgClientLike>
  implements IdempotencyStore<Client>
{
  readonly pool: PgPoolLike<Client>;
  readonly unitOfWork: PostgresUnitOfWork<Client>;
  readonly tableName: string;
  /** The store's migrations, registered in its unit of work; `migrate()` applies them. */
  readonly migrations: Migration<Client>[];
  readonly #sql: ReturnType<typeof statements>;
  readonly #names: Record<keyof ReturnType<typeof statements>, string>;
  readonly #prepared: boolean;
  /** The advisory lock one reaper of this table holds while it deletes (see the `reap` statement). */
  readonly #reaperLock: string;

  constructor(options: PostgresStoreOptions<Client>) {
    this.unitOfWork =
      options.unitOfWork !== undefined ? options.unitOfWork : postgresUnitOfWork(options.pool);
    this.pool = this.unitOfWork.pool;
    this.tableName = options.tableName ?? defaultPostgresTableName;
    this.migrations = postgresStoreMigrations<Client>(this.tableName);
    this.unitOfWork.register(...this.migrations);
    this.#sql = statements(this.tableName);
    this.#names = Object.fromEntries(
      Object.keys(this.#sql).map((statement) => [
        statement,
        postgresStatementName(this.tableName, statement),
      ]),
    ) as Record<keyof ReturnType<typeof statements>, string>;
    this.#prepared = options.preparedStatements ?? true;
    this.#reaperLock = BigInt.asIntN(
      64,
      BigInt(`0x${createHash('sha256').update(`reap:${this.tableName}`).digest('hex').slice(0, 16)}`),
    ).toString();
  }

  /** Runs one of the store's statements, named when prepared statements are on. */
  #query(
    on: PgPoolLike<Client> | Client,
    statement: keyof ReturnType<typeof statements>,
    values: unknown[],
  ): Promise<PgQueryResultLike> {
    const text = this.#sql[statement];
    if (!this.#prepared) return on.query(text, values);
    return on.query({ name: this.#names[statement], text, values });
  }

  /**
   * Applies the store's missing migrations through its unit of work: one transaction under an
   * advisory lock, so several processes may start at once.
   */
  async migrate(): Promise<void> {
    await this.unitOfWork.migrate(this.migrations);
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const values = [
      input.scopeKey,
      input.recordId,
      input.fingerprint,
      input.token,
      input.leaseExpiresAtMs,
      input.expiresAtMs,
      JSON.stringify(input.data ?? {}),
      currentRecordFormatVersion,
    ];
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      // One round trip: insert if absent, else read the record that holds the key. A refused
      // insert takes no row lock and writes no WAL, so a replay is a plain read.
      const found = await this.#query(this.pool, 'insertOrRead', [
        ...values,
        input.scopeLimit?.scope ?? null,
        input.scopeLimit?.maxRecords ?? null,
      ]);
      const row = found.rows[0] as (RecordRow & { won: boolean }) | undefined;
      if (row?.won) return { claimed: true, recordId: row.record_id, data: toData(row.data) };
      if (row === undefined) {
        // No row: the scope is full, or the holder committed after this statement's snapshot
        // (or vanished). Look again unless it is full. Claims racing in one scope may pass the
        // bound by as many as run at once (READ COMMITTED): a bound on floods, not an exact quota.
        if (input.scopeLimit !== undefined) {
          const held = await this.#query(this.pool, 'scopeRecords', [input.scopeLimit.scope]);
          const records = Number((held.rows[0] as { records?: string } | undefined)?.records ?? 0);
          if (records >= input.scopeLimit.maxRecords) return { claimed: false, scopeFull: true };
        }
        continue;
      }
      const record = toRecord(row);
      if (takeoverRecordId(record, input) === undefined) return { claimed: false, record };
      // The UPDATE re-checks the same conditions under the row lock, so two takeovers never both win.
      const taken = await this.#query(this.pool, 'takeOver', [
        ...values,
        input.nowMs,
        input.scopeLimit?.scope ?? null,
      ]);
      const takenRow = taken.rows[0] as { record_id: string; data: RecordData } | undefined;
      if (takenRow !== undefined) {
        return { claimed: true, recordId: takenRow.record_id, data: toData(takenRow.data) };
      }
    }
    throw new Error(
      `claim for ${input.scopeKey} kept racing with concurrent changes; giving up after ${maxClaimAttempts} tries`,
    );
  }

  async complete(input: CompleteInput, tx?: Client): Promise<boolean> {
    const { body } = input.response;
    const result = await this.#query(tx ?? this.pool, 'complete', [
      input.scopeKey,
      input.token,
      input.response.status,
      JSON.stringify(input.response.headers),
      Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      input.expiresAtMs,
      input.data === undefined ? null : JSON.stringify(input.data),
      currentRecordFormatVersion,
    ]);
    return result.rowCount === 1;
  }

  async saveData(input: SaveDataInput, tx?: Client): Promise<boolean> {
    const result = await this.#query(tx ?? this.pool, 'saveData', [
      input.scopeKey,
      input.token,
      JSON.stringify(input.data),
      currentRecordFormatVersion,
    ]);
    return result.rowCount === 1;
  }

  async release(scopeKey: string, token: string): Promise<void> {
    await this.#query(this.pool, 'release', [scopeKey, token]);
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    const result = await this.#query(this.pool, 'reap', [nowMs, limit, this.#reaperLock]);
    return result.rowCount ?? 0;
  }

  /** The unit of work's transaction: your writes and the fenced completion commit together. */
  transaction<T>(work: (tx: Client) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  /** Reads a record as stored; for tests and diagnostics. */
  async get(scopeKey: string): Promise<IdempotencyRecord | undefined> {
    const found = await this.#query(this.pool, 'get', [scopeKey]);
    const row = found.rows[0] as RecordRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }
}

export function createPostgresStore<Client extends PgClientLike = PgClientLike>(
  options: PostgresStoreOptions<Client>,
): PostgresIdempotencyStore<Client> {
  return new PostgresIdempotencyStore(options);
}

function statements(table: string) {
  return {
    // Insert if absent, else return the record holding the key (`won` says which). DO NOTHING
    // waits for a concurrent inserter of the same key; if that row committed after this
    // statement's snapshot the read finds nothing, and the caller simply asks again.
    insertOrRead: `
      WITH won AS (
        INSERT INTO ${table} (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms, expires_at_ms,
          data, format_version, scope)
        SELECT $1, $2, $3, $4, 'claimed', $5, $6, $7::jsonb, $8, $9::text
        -- A new record only while its scope holds fewer than $10 (counted by the trigger).
        WHERE $10::bigint IS NULL OR coalesce((SELECT s.records FROM ${table}_scopes s WHERE s.scope = $9::text), 0) < $10::bigint
        ON CONFLICT (scope_key) DO NOTHING
        RETURNING *)
      SELECT true AS won, * FROM won
      UNION ALL
      SELECT false AS won, r.* FROM ${table} r WHERE r.scope_key = $1 AND NOT EXISTS (SELECT 1 FROM won)`,
    // Take over an expired record (new id) or a lapsed lease with the same fingerprint (same id).
    // The conditions are re-checked on the locked row, so only one caller can win.
    takeOver: `
      UPDATE ${table} AS r SET
        record_id = CASE WHEN r.expires_at_ms <= $9 THEN $2 ELSE r.record_id END,
        data = CASE WHEN r.expires_at_ms <= $9 THEN $7::jsonb ELSE r.data END,
        format_version = $8,
        fingerprint = $3,
        token = $4,
        state = 'claimed',
        lease_expires_at_ms = $5,
        expires_at_ms = $6,
        status = NULL, headers = NULL, body = NULL,
        -- A record written while no bound was given is counted once a bounded claim takes it.
        scope = coalesce(r.scope, $10::text)
      WHERE r.scope_key = $1
        AND (r.expires_at_ms <= $9
          OR (r.state = 'claimed' AND r.lease_expires_at_ms <= $9 AND r.fingerprint = $3))
      RETURNING r.record_id, r.data`,
    get: `SELECT * FROM ${table} WHERE scope_key = $1`,
    scopeRecords: `SELECT records FROM ${table}_scopes WHERE scope = $1`,
    complete: `
      UPDATE ${table} SET state = 'completed', status = $3, headers = $4, body = $5, expires_at_ms = $6,
        data = coalesce($7::jsonb, data), format_version = $8
      WHERE scope_key = $1 AND token = $2 AND state = 'claimed'`,
    saveData: `
      UPDATE ${table} SET data = $3::jsonb, format_version = $4
      WHERE scope_key = $1 AND token = $2 AND state = 'claimed'`,
    // Kept as a claim nobody holds whose lease ended at 0 (see `releasedToken`): its id stays.
    release: `
      UPDATE ${table} SET token = '${releasedToken}', lease_expires_at_ms = 0
      WHERE scope_key = $1 AND token = $2 AND state = 'claimed'`,
    // SKIP LOCKED: a reaper never waits on rows an in-flight request holds. One reaper at a
    // time (a transaction-scoped advisory lock, $3; the others delete nothing this round):
    // two reapers deleting records of the same scopes in different orders would take their
    // counter rows in different orders and deadlock. The outer check keeps a row a claim just renewed.
    reap: `
      WITH reaper AS (SELECT pg_try_advisory_xact_lock($3::bigint) AS alone)
      DELETE FROM ${table} WHERE (SELECT alone FROM reaper) AND scope_key IN (
        SELECT scope_key FROM ${table} WHERE expires_at_ms <= $1
        ORDER BY expires_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)
      AND expires_at_ms <= $1`,
  };
}

function toRecord(row: RecordRow): IdempotencyRecord {
  const base = {
    scopeKey: row.scope_key,
    recordId: row.record_id,
    fingerprint: row.fingerprint,
    expiresAtMs: Number(row.expires_at_ms),
    formatVersion: row.format_version ?? 1,
    data: toData(row.data),
  };
  if (row.state === 'claimed') {
    if (row.token === releasedToken) return { ...base, state: 'released' };
    return { ...base, state: 'claimed', token: row.token, leaseExpiresAtMs: Number(row.lease_expires_at_ms) };
  }
  const headers =
    typeof row.headers === 'string' ? (JSON.parse(row.headers) as Record<string, string>) : row.headers;
  return {
    ...base,
    state: 'completed',
    response: {
      status: row.status ?? 500,
      headers: headers ?? {},
      // pg decodes each bytea into a Buffer of its own: a plain view of it, no copy needed.
      body: row.body
        ? new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength)
        : new Uint8Array(0),
    },
  };
}

function toData(data: RecordData | string | null | undefined): RecordData {
  if (data === null || data === undefined) return {};
  return typeof data === 'string' ? (JSON.parse(data) as RecordData) : data;
}
