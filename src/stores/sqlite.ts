// `retrysafe/stores/sqlite`: the embedded default store. Records live in the same SQLite file
// as your business tables, so a handler's rows and its stored response commit together.
import { setImmediate as afterThisTurn } from 'node:timers';
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
} from '../idempotency/store.js';
import type { Migration } from './migrations.js';
import { lockDeadline, whileSqliteBusy } from './sqlite/lock-wait.js';
import {
  type SqliteDatabase,
  type SqliteUnitOfWork,
  sqliteUnitOfWork,
  withSqliteWriteLock,
} from './sqlite/unit-of-work.js';

export * from './migrations.js';
export * from './sqlite/unit-of-work.js';

export const defaultSqliteTableName = 'retrysafe_idempotency';

/** The migration part of the store's table: `retrysafe.idempotency`, or `retrysafe.idempotency:<table>`. */
export function sqliteStorePart(tableName: string = defaultSqliteTableName): string {
  return tableName === defaultSqliteTableName
    ? 'retrysafe.idempotency'
    : `retrysafe.idempotency:${tableName}`;
}

/** A record deleted between a refused claim and its read is claimed again, at most this often. */
const maxClaimAttempts = 5;

export interface SqliteStoreOptions {
  /**
   * The unit of work your repositories share (recommended), or a better-sqlite3 database you
   * already use (wrapped in its unit of work), or a file path to open. Its `lockWaitMs` bounds
   * how long the store's writes wait for another process's write lock (then a 503).
   */
  database: SqliteUnitOfWork | SqliteDatabase | string;
  tableName?: string;
}

interface RecordRow {
  scope_key: string;
  record_id: string;
  fingerprint: string;
  token: string;
  state: 'claimed' | 'completed';
  lease_expires_at_ms: number;
  expires_at_ms: number;
  status: number | null;
  headers: string | null;
  body: Buffer | null;
  // Absent on a row read before the format migration ran; NOT NULL DEFAULT 1 / '{}' after it.
  format_version?: number;
  data?: string;
}

interface QueuedClaim {
  input: ClaimInput;
  resolve: (result: ClaimResult) => void;
  reject: (error: unknown) => void;
}

export class SqliteIdempotencyStore implements IdempotencyStore<SqliteDatabase> {
  readonly db: SqliteDatabase;
  readonly unitOfWork: SqliteUnitOfWork;
  readonly tableName: string;
  /** The store's migrations, registered in its unit of work and applied by the constructor. */
  readonly migrations: Migration<SqliteDatabase>[];
  readonly #statements: ReturnType<typeof prepareStatements>;
  readonly #queuedClaims: QueuedClaim[] = [];

  constructor(options: SqliteStoreOptions) {
    this.unitOfWork = sqliteUnitOfWork(options.database);
    this.db = this.unitOfWork.db;
    const table = options.tableName ?? defaultSqliteTableName;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table))
      throw new TypeError(`tableName ${table} is not a plain identifier`);
    this.tableName = table;
    this.migrations = sqliteStoreMigrations(table);
    this.unitOfWork.register(...this.migrations);
    this.unitOfWork.migrate(this.migrations);
    this.#statements = prepareStatements(this.db, table);
  }

  claim(input: ClaimInput): Promise<ClaimResult> {
    return new Promise((resolve, reject) => {
      this.#queuedClaims.push({ input, resolve, reject });
      // The first claim to queue asks for the lock once this turn of the event loop has read every
      // ready request; all claims queued by the time it is granted run together.
      if (this.#queuedClaims.length === 1) {
        const deadline = lockDeadline(this.unitOfWork.lockWaitMs);
        // From node:timers, so tests that fake the global timers cannot stall claims.
        afterThisTurn(() => void withSqliteWriteLock(this.db, () => this.#claimQueued(deadline)));
      }
    });
  }

  /**
   * Group commit: the claims queued in one turn of the event loop (or while the lock was busy)
   * run in one `BEGIN IMMEDIATE … COMMIT`, one WAL commit instead of one each. Each claim is
   * still its own atomic statement, and none answers before the commit. Should the batch fail
   * as a whole, it is rolled back and each claim runs alone. While another process holds the
   * file's write lock, the wait is asynchronous (claims queued meanwhile join the batch) until
   * `deadline`; then every waiting claim fails with `SqliteLockWaitError`. Never throws.
   */
  async #claimQueued(deadline: ReturnType<typeof lockDeadline>): Promise<void> {
    if (this.db.inTransaction) {
      // A transaction someone opened on this Database outside retrysafe: claim within it.
      for (const claim of this.#queuedClaims.splice(0))
        this.#settle(claim, () => this.#claimNow(claim.input));
      return;
    }
    let batch: QueuedClaim[] = [];
    let results: ClaimResult[] | undefined;
    try {
      await whileSqliteBusy(() => {
        // SQLITE_BUSY can only come from here, before anything ran: then this is tried again.
        this.#statements.begin.run();
        batch = this.#queuedClaims.splice(0);
        try {
          results = batch.map(({ input }) => this.#claimNow(input));
          this.#statements.commit.run();
        } catch {
          results = undefined;
          // A failed rollback is no lock to wait for: it fails the batch.
          if (this.db.inTransaction) rollbackOrThrow(() => this.#statements.rollback.run());
        }
      }, deadline);
    } catch (error) {
      for (const claim of [...batch, ...this.#queuedClaims.splice(0)]) claim.reject(error);
      return;
    }
    if (results !== undefined) {
      for (const [i, claim] of batch.entries()) claim.resolve(results[i]!);
      return;
    }
    for (const claim of batch) {
      try {
        // Outside a transaction each claim is retried whole: a try that met the lock changed nothing.
        claim.resolve(await whileSqliteBusy(() => this.#claimNow(claim.input), deadline));
      } catch (error) {
        claim.reject(error);
      }
    }
  }

  #settle(claim: QueuedClaim, run: () => ClaimResult): void {
    try {
      claim.resolve(run());
    } catch (error) {
      claim.reject(error);
    }
  }

  #claimNow(input: ClaimInput): ClaimResult {
    // The lock covers this process only: another process sharing the file may release or
    // reap the row between our refused upsert and our read. Then the key is free: claim again.
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      const won = this.#statements.claim.all({
        scopeKey: input.scopeKey,
        recordId: input.recordId,
        fingerprint: input.fingerprint,
        token: input.token,
        nowMs: input.nowMs,
        leaseExpiresAtMs: input.leaseExpiresAtMs,
        expiresAtMs: input.expiresAtMs,
        data: JSON.stringify(input.data ?? {}),
        formatVersion: currentRecordFormatVersion,
        scope: input.scopeLimit?.scope ?? null,
        maxRecords: input.scopeLimit?.maxRecords ?? null,
      }) as { record_id: string; token: string; data: string }[];
      if (won[0]?.token === input.token) {
        return { claimed: true, recordId: won[0].record_id, data: parseData(won[0].data) };
      }
      const row = this.#statements.get.get(input.scopeKey) as RecordRow | undefined;
      if (row) return { claimed: false, record: toRecord(row) };
      // Under the write lock nothing else changed the count: no row and a limit means it was reached.
      if (input.scopeLimit !== undefined) return { claimed: false, scopeFull: true };
    }
    throw new Error(`claim for ${input.scopeKey} kept losing to concurrent deletes`);
  }

  complete(input: CompleteInput, tx?: SqliteDatabase): Promise<boolean> {
    const run = () =>
      this.#statements.complete.run({
        scopeKey: input.scopeKey,
        token: input.token,
        status: input.response.status,
        headers: JSON.stringify(input.response.headers),
        body: Buffer.from(
          input.response.body.buffer,
          input.response.body.byteOffset,
          input.response.body.byteLength,
        ),
        expiresAtMs: input.expiresAtMs,
        data: input.data === undefined ? null : JSON.stringify(input.data),
        formatVersion: currentRecordFormatVersion,
      }).changes === 1;
    // Inside `transaction` the lock is already held by this very execution.
    return tx === undefined ? this.unitOfWork.write(run) : Promise.resolve(run());
  }

  saveData(input: SaveDataInput, tx?: SqliteDatabase): Promise<boolean> {
    const run = () =>
      this.#statements.saveData.run({
        scopeKey: input.scopeKey,
        token: input.token,
        data: JSON.stringify(input.data),
        formatVersion: currentRecordFormatVersion,
      }).changes === 1;
    return tx === undefined ? this.unitOfWork.write(run) : Promise.resolve(run());
  }

  async release(scopeKey: string, token: string): Promise<void> {
    await this.unitOfWork.write(() => this.#statements.release.run({ scopeKey, token }));
  }

  reap(nowMs: number, limit: number): Promise<number> {
    return this.unitOfWork.write(() => this.#statements.reap.run({ nowMs, limit }).changes);
  }

  /** The unit of work's transaction: your writes and the fenced completion commit together. */
  transaction<T>(work: (tx: SqliteDatabase) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  /** Reads a record as stored; for tests and diagnostics. */
  get(scopeKey: string): IdempotencyRecord | undefined {
    const row = this.#statements.get.get(scopeKey) as RecordRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async close(): Promise<void> {
    await this.unitOfWork.close();
  }
}

export function createSqliteStore(options: SqliteStoreOptions): SqliteIdempotencyStore {
  return new SqliteIdempotencyStore(options);
}

/**
 * The store's schema, by version. v1 is the table of the releases before the migration
 * registry (`IF NOT EXISTS`, so a table they created is adopted as it is); v2 adds the record
 * format and its data part, upgrading such a table in place: its rows read as format 1, `{}`;
 * v3 counts each scope's records for `maxRecordsPerScope`; v4 counts a record written while no
 * bound was given once a bounded claim takes it over.
 */
export function sqliteStoreMigrations(
  tableName: string = defaultSqliteTableName,
): Migration<SqliteDatabase>[] {
  const part = sqliteStorePart(tableName);
  return [
    {
      part,
      version: 1,
      name: 'create the records table',
      up: `
        CREATE TABLE IF NOT EXISTS ${tableName} (
          scope_key TEXT PRIMARY KEY,
          record_id TEXT NOT NULL,
          fingerprint TEXT NOT NULL,
          token TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('claimed', 'completed')),
          lease_expires_at_ms INTEGER NOT NULL,
          expires_at_ms INTEGER NOT NULL,
          status INTEGER,
          headers TEXT,
          body BLOB
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS ${tableName}_expires_at_ms ON ${tableName} (expires_at_ms);`,
    },
    {
      part,
      version: 2,
      name: 'add the record format version and data part',
      up: `
        ALTER TABLE ${tableName} ADD COLUMN format_version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE ${tableName} ADD COLUMN data TEXT NOT NULL DEFAULT '{}';`,
    },
    {
      part,
      version: 3,
      name: 'count the records of each scope',
      // The triggers keep the count in the same statement as every insert and delete, so the
      // claim's bound is exact. Rows written before this migration carry no scope: uncounted.
      up: `
        ALTER TABLE ${tableName} ADD COLUMN scope TEXT;
        CREATE TABLE ${tableName}_scopes (scope TEXT PRIMARY KEY, records INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TRIGGER ${tableName}_count_insert AFTER INSERT ON ${tableName} WHEN NEW.scope IS NOT NULL BEGIN
          INSERT OR IGNORE INTO ${tableName}_scopes (scope, records) VALUES (NEW.scope, 0);
          UPDATE ${tableName}_scopes SET records = records + 1 WHERE scope = NEW.scope;
        END;
        CREATE TRIGGER ${tableName}_count_delete AFTER DELETE ON ${tableName} WHEN OLD.scope IS NOT NULL BEGIN
          UPDATE ${tableName}_scopes SET records = records - 1 WHERE scope = OLD.scope;
        END;`,
    },
    {
      part,
      version: 4,
      name: 'count a record once a bounded claim takes it over',
      // A row written while no bound was given has no scope; a bounded takeover sets it.
      up: `
        CREATE TRIGGER ${tableName}_count_adopt AFTER UPDATE OF scope ON ${tableName}
        WHEN OLD.scope IS NULL AND NEW.scope IS NOT NULL BEGIN
          -- Not INSERT OR IGNORE: inside the claim's upsert, its conflict policy would apply.
          INSERT INTO ${tableName}_scopes (scope, records)
            SELECT NEW.scope, 0 WHERE NOT EXISTS (SELECT 1 FROM ${tableName}_scopes WHERE scope = NEW.scope);
          UPDATE ${tableName}_scopes SET records = records + 1 WHERE scope = NEW.scope;
        END;`,
    },
  ];
}

function prepareStatements(db: SqliteDatabase, table: string) {
  return {
    // One statement decides the claim: insert, or take over an expired record or a lapsed
    // lease with the same fingerprint. RETURNING yields a row only when this call won.
    claim: db.prepare(`
      INSERT INTO ${table} (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms, expires_at_ms,
        format_version, data, scope)
      SELECT @scopeKey, @recordId, @fingerprint, @token, 'claimed', @leaseExpiresAtMs, @expiresAtMs,
        @formatVersion, @data, @scope
      -- A new record only while its scope holds fewer than @maxRecords (counted by the triggers).
      WHERE @maxRecords IS NULL
         OR EXISTS (SELECT 1 FROM ${table} WHERE scope_key = @scopeKey)
         OR coalesce((SELECT records FROM ${table}_scopes WHERE scope = @scope), 0) < @maxRecords
      ON CONFLICT (scope_key) DO UPDATE SET
        record_id = CASE WHEN ${table}.expires_at_ms <= @nowMs THEN excluded.record_id ELSE ${table}.record_id END,
        data = CASE WHEN ${table}.expires_at_ms <= @nowMs THEN excluded.data ELSE ${table}.data END,
        format_version = excluded.format_version,
        fingerprint = excluded.fingerprint,
        token = excluded.token,
        state = 'claimed',
        lease_expires_at_ms = excluded.lease_expires_at_ms,
        expires_at_ms = excluded.expires_at_ms,
        status = NULL, headers = NULL, body = NULL,
        -- A record written while no bound was given is counted once a bounded claim takes it.
        scope = coalesce(${table}.scope, excluded.scope)
      WHERE ${table}.expires_at_ms <= @nowMs
         OR (${table}.state = 'claimed' AND ${table}.lease_expires_at_ms <= @nowMs
             AND ${table}.fingerprint = excluded.fingerprint)
      RETURNING record_id, token, data`),
    get: db.prepare(`SELECT * FROM ${table} WHERE scope_key = ?`),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    complete: db.prepare(`
      UPDATE ${table} SET state = 'completed', status = @status, headers = @headers, body = @body,
        expires_at_ms = @expiresAtMs, data = coalesce(@data, data), format_version = @formatVersion
      WHERE scope_key = @scopeKey AND token = @token AND state = 'claimed'`),
    saveData: db.prepare(`
      UPDATE ${table} SET data = @data, format_version = @formatVersion
      WHERE scope_key = @scopeKey AND token = @token AND state = 'claimed'`),
    // Kept as a claim nobody holds whose lease ended at 0 (see `releasedToken`): its id stays.
    release: db.prepare(`
      UPDATE ${table} SET token = '${releasedToken}', lease_expires_at_ms = 0
      WHERE scope_key = @scopeKey AND token = @token AND state = 'claimed'`),
    reap: db.prepare(`
      DELETE FROM ${table} WHERE scope_key IN (
        SELECT scope_key FROM ${table} WHERE expires_at_ms <= @nowMs LIMIT @limit)`),
  };
}

/** Runs a ROLLBACK whose failure must fail the batch, never pass for a busy lock worth retrying. */
function rollbackOrThrow(rollback: () => unknown): void {
  try {
    rollback();
  } catch (error) {
    throw new Error('ROLLBACK of a failed claim batch failed', { cause: error });
  }
}

function toRecord(row: RecordRow): IdempotencyRecord {
  const base = {
    scopeKey: row.scope_key,
    recordId: row.record_id,
    fingerprint: row.fingerprint,
    expiresAtMs: row.expires_at_ms,
    formatVersion: row.format_version ?? 1,
    data: parseData(row.data),
  };
  if (row.state === 'claimed') {
    if (row.token === releasedToken) return { ...base, state: 'released' };
    return { ...base, state: 'claimed', token: row.token, leaseExpiresAtMs: row.lease_expires_at_ms };
  }
  return {
    ...base,
    state: 'completed',
    response: {
      status: row.status ?? 500,
      headers: JSON.parse(row.headers ?? '{}') as Record<string, string>,
      // better-sqlite3 hands out a fresh Buffer per read: a plain view of it, no copy needed.
      body: row.body
        ? new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength)
        : new Uint8Array(0),
    },
  };
}

function parseData(text: string | null | undefined): RecordData {
  return text === null || text === undefined ? {} : (JSON.parse(text) as RecordData);
}
