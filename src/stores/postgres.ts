// `retrysafe/stores/postgres`: the shared store for many processes. Records live in your
// PostgreSQL database, so a handler's rows and its stored response commit in one transaction.
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  IdempotencyRecord,
  IdempotencyStore,
} from '../idempotency/store.js';
import { takeoverRecordId } from '../idempotency/store.js';

export const defaultPostgresTableName = 'retrysafe_idempotency';

/** A record deleted between our refused claim and our read is claimed again, at most this often. */
const maxClaimAttempts = 5;

/** What the store reads from a query result; `pg.QueryResult` fits. */
export interface PgQueryResultLike {
  rows: unknown[];
  rowCount: number | null;
}

/** A named query: pg prepares it once per connection and reuses the plan. */
export interface PgQueryConfigLike {
  name: string;
  text: string;
  values: unknown[];
}

/** A checked-out connection; `pg.PoolClient` fits. Your handler's writes run on it. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  query(config: PgQueryConfigLike): Promise<PgQueryResultLike>;
  release(error?: Error | boolean): void;
}

/** A connection pool; `pg.Pool` fits. The store never imports `pg` itself. */
export interface PgPoolLike<Client extends PgClientLike = PgClientLike> {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  query(config: PgQueryConfigLike): Promise<PgQueryResultLike>;
  connect(): Promise<Client>;
}

export interface PostgresStoreOptions<Client extends PgClientLike = PgClientLike> {
  pool: PgPoolLike<Client>;
  /** A plain or schema-qualified identifier (`retrysafe_idempotency`, `app.idempotency`). */
  tableName?: string;
  /**
   * Send the per-request statements as named (prepared) statements, so PostgreSQL plans them
   * once per connection. Default true; turn off behind a pooler that cannot keep them (PgBouncer
   * in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

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
}

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function checkTableName(tableName: string): void {
  if (!identifierPattern.test(tableName)) {
    throw new TypeError(`tableName ${tableName} must be a plain identifier, optionally schema-qualified`);
  }
}

/**
 * The DDL the store needs, for your migration tool. `migrate()` runs the same text.
 * The index on expires_at_ms keeps the reaper's batches cheap however large the table grows.
 */
export function postgresMigrationSql(tableName: string = defaultPostgresTableName): string {
  checkTableName(tableName);
  // An index lives in its table's schema, so its own name is never qualified.
  const indexName = `${tableName.split('.').pop()}_expires_at_ms`;
  return `CREATE TABLE IF NOT EXISTS ${tableName} (
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
CREATE INDEX IF NOT EXISTS ${indexName} ON ${tableName} (expires_at_ms);
`;
}

export class PostgresIdempotencyStore<Client extends PgClientLike = PgClientLike>
  implements IdempotencyStore<Client>
{
  readonly pool: PgPoolLike<Client>;
  readonly tableName: string;
  readonly #sql: ReturnType<typeof statements>;
  readonly #prepared: boolean;

  constructor(options: PostgresStoreOptions<Client>) {
    this.pool = options.pool;
    this.tableName = options.tableName ?? defaultPostgresTableName;
    checkTableName(this.tableName);
    this.#sql = statements(this.tableName);
    this.#prepared = options.preparedStatements ?? true;
  }

  /** Runs one of the store's statements, named when prepared statements are on. */
  #query(
    on: PgPoolLike<Client> | Client,
    statement: keyof ReturnType<typeof statements>,
    values: unknown[],
  ): Promise<PgQueryResultLike> {
    const text = this.#sql[statement];
    if (!this.#prepared) return on.query(text, values);
    return on.query({ name: `retrysafe:${this.tableName}:${statement}`, text, values });
  }

  /**
   * Creates the table and index if missing. Safe to run from several processes at once: an
   * advisory lock serialises them, since concurrent CREATE … IF NOT EXISTS can still collide.
   */
  async migrate(): Promise<void> {
    // Several statements in one simple query run as one implicit transaction, so the
    // transaction-scoped advisory lock is held until the DDL has committed.
    await this.pool.query(
      `SELECT pg_advisory_xact_lock(hashtext('retrysafe:${this.tableName}'));\n${postgresMigrationSql(this.tableName)}`,
    );
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const values = [
      input.scopeKey,
      input.recordId,
      input.fingerprint,
      input.token,
      input.leaseExpiresAtMs,
      input.expiresAtMs,
    ];
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      // One round trip: insert if absent, else read the record that holds the key. A refused
      // insert takes no row lock and writes no WAL, so a replay is a plain read.
      const found = await this.#query(this.pool, 'insertOrRead', values);
      const row = found.rows[0] as (RecordRow & { won: boolean }) | undefined;
      if (row?.won) return { claimed: true, recordId: row.record_id };
      // No row: the holder committed after this statement's snapshot, or vanished. Look again.
      if (row === undefined) continue;
      const record = toRecord(row);
      if (takeoverRecordId(record, input) === undefined) return { claimed: false, record };
      // The UPDATE re-checks the same conditions under the row lock, so two takeovers never both win.
      const taken = await this.#query(this.pool, 'takeOver', [...values, input.nowMs]);
      const takenRow = taken.rows[0] as { record_id: string } | undefined;
      if (takenRow !== undefined) return { claimed: true, recordId: takenRow.record_id };
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
    ]);
    return result.rowCount === 1;
  }

  async release(scopeKey: string, token: string): Promise<void> {
    await this.#query(this.pool, 'release', [scopeKey, token]);
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    const result = await this.#query(this.pool, 'reap', [nowMs, limit]);
    return result.rowCount ?? 0;
  }

  /** BEGIN … COMMIT on one checked-out client; a throw rolls back. The client is released either way. */
  async transaction<T>(work: (tx: Client) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A client whose BEGIN, COMMIT or ROLLBACK failed may be mid-transaction or dead:
    // handing the error to release() makes the pool discard it instead of reusing it.
    let broken: Error | undefined;
    try {
      await client.query('BEGIN').catch((error: unknown) => {
        broken = asError(error);
        throw error;
      });
      let result: T;
      try {
        result = await work(client);
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = asError(rollbackError);
        });
        throw error;
      }
      await client.query('COMMIT').catch((error: unknown) => {
        broken = asError(error);
        throw error;
      });
      return result;
    } finally {
      client.release(broken);
    }
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
        INSERT INTO ${table} (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms, expires_at_ms)
        VALUES ($1, $2, $3, $4, 'claimed', $5, $6)
        ON CONFLICT (scope_key) DO NOTHING
        RETURNING *)
      SELECT true AS won, * FROM won
      UNION ALL
      SELECT false AS won, r.* FROM ${table} r WHERE r.scope_key = $1 AND NOT EXISTS (SELECT 1 FROM won)`,
    // Take over an expired record (new id) or a lapsed lease with the same fingerprint (same id).
    // The conditions are re-checked on the locked row, so only one caller can win.
    takeOver: `
      UPDATE ${table} AS r SET
        record_id = CASE WHEN r.expires_at_ms <= $7 THEN $2 ELSE r.record_id END,
        fingerprint = $3,
        token = $4,
        state = 'claimed',
        lease_expires_at_ms = $5,
        expires_at_ms = $6,
        status = NULL, headers = NULL, body = NULL
      WHERE r.scope_key = $1
        AND (r.expires_at_ms <= $7
          OR (r.state = 'claimed' AND r.lease_expires_at_ms <= $7 AND r.fingerprint = $3))
      RETURNING r.record_id`,
    get: `SELECT * FROM ${table} WHERE scope_key = $1`,
    complete: `
      UPDATE ${table} SET state = 'completed', status = $3, headers = $4, body = $5, expires_at_ms = $6
      WHERE scope_key = $1 AND token = $2 AND state = 'claimed'`,
    release: `DELETE FROM ${table} WHERE scope_key = $1 AND token = $2 AND state = 'claimed'`,
    // SKIP LOCKED: a reaper never waits on rows an in-flight request holds, and two reapers
    // never fight over the same batch. The outer check keeps a row a claim just renewed.
    reap: `
      DELETE FROM ${table} WHERE scope_key IN (
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
  };
  if (row.state === 'claimed') {
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

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
