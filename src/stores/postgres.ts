// `retrysafe/stores/postgres`: the shared store for many processes. Records live in your
// PostgreSQL database, so a handler's rows and its stored response commit in one transaction.
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  IdempotencyRecord,
  IdempotencyStore,
} from '../idempotency/store.js';

export const defaultPostgresTableName = 'retrysafe_idempotency';

/** A record deleted between our refused claim and our read is claimed again, at most this often. */
const maxClaimAttempts = 5;

/** What the store reads from a query result; `pg.QueryResult` fits. */
export interface PgQueryResultLike {
  rows: unknown[];
  rowCount: number | null;
}

/** A checked-out connection; `pg.PoolClient` fits. Your handler's writes run on it. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  release(error?: Error | boolean): void;
}

/** A connection pool; `pg.Pool` fits. The store never imports `pg` itself. */
export interface PgPoolLike<Client extends PgClientLike = PgClientLike> {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  connect(): Promise<Client>;
}

export interface PostgresStoreOptions<Client extends PgClientLike = PgClientLike> {
  pool: PgPoolLike<Client>;
  /** A plain or schema-qualified identifier (`retrysafe_idempotency`, `app.idempotency`). */
  tableName?: string;
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

  constructor(options: PostgresStoreOptions<Client>) {
    this.pool = options.pool;
    this.tableName = options.tableName ?? defaultPostgresTableName;
    checkTableName(this.tableName);
    this.#sql = statements(this.tableName);
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
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      const won = await this.pool.query(this.#sql.claim, [
        input.scopeKey,
        input.recordId,
        input.fingerprint,
        input.token,
        input.leaseExpiresAtMs,
        input.expiresAtMs,
        input.nowMs,
      ]);
      const wonRow = won.rows[0] as { record_id: string; token: string } | undefined;
      if (wonRow !== undefined) return { claimed: true, recordId: wonRow.record_id };
      const found = await this.pool.query(this.#sql.get, [input.scopeKey]);
      const row = found.rows[0] as RecordRow | undefined;
      // Refused by a live record that was released or reaped before we read it: claim anew.
      if (row !== undefined) return { claimed: false, record: toRecord(row) };
    }
    throw new Error(
      `claim for ${input.scopeKey} kept racing with deletions; giving up after ${maxClaimAttempts} tries`,
    );
  }

  async complete(input: CompleteInput, tx?: Client): Promise<boolean> {
    const { body } = input.response;
    const result = await (tx ?? this.pool).query(this.#sql.complete, [
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
    await this.pool.query(this.#sql.release, [scopeKey, token]);
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    const result = await this.pool.query(this.#sql.reap, [nowMs, limit]);
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
    const found = await this.pool.query(this.#sql.get, [scopeKey]);
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
    // One statement decides the claim: insert, or take over an expired record (new id) or a
    // lapsed lease with the same fingerprint (same id). RETURNING yields a row only when this
    // call won; a concurrent insert of the same key makes us wait for it, then re-check WHERE.
    claim: `
      INSERT INTO ${table} AS r (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms, expires_at_ms)
      VALUES ($1, $2, $3, $4, 'claimed', $5, $6)
      ON CONFLICT (scope_key) DO UPDATE SET
        record_id = CASE WHEN r.expires_at_ms <= $7 THEN excluded.record_id ELSE r.record_id END,
        fingerprint = excluded.fingerprint,
        token = excluded.token,
        state = 'claimed',
        lease_expires_at_ms = excluded.lease_expires_at_ms,
        expires_at_ms = excluded.expires_at_ms,
        status = NULL, headers = NULL, body = NULL
      WHERE r.expires_at_ms <= $7
         OR (r.state = 'claimed' AND r.lease_expires_at_ms <= $7 AND r.fingerprint = excluded.fingerprint)
      RETURNING r.record_id, r.token`,
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
      // A plain copy: callers get a Uint8Array that does not alias pg's Buffer pool.
      body: new Uint8Array(row.body ?? new Uint8Array(0)),
    },
  };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
