// `retrysafe/stores/sqlite`: the embedded default store. Records live in the same SQLite file
// as your business tables, so a handler's rows and its stored response commit together.
import { setImmediate as afterThisTurn } from 'node:timers';
import Database from 'better-sqlite3';
import type {
  ClaimInput,
  ClaimResult,
  CompleteInput,
  IdempotencyRecord,
  IdempotencyStore,
} from '../idempotency/store.js';

export type SqliteDatabase = Database.Database;

export const defaultSqliteTableName = 'retrysafe_idempotency';

/** A record deleted between a refused claim and its read is claimed again, at most this often. */
const maxClaimAttempts = 5;

export interface SqliteStoreOptions {
  /** A better-sqlite3 database you already use, or a file path to open. */
  database: SqliteDatabase | string;
  tableName?: string;
}

/**
 * Opens a database file with the settings retrysafe relies on: WAL (readers never block the
 * writer), synchronous=NORMAL (a killed process loses nothing committed; only power loss can
 * drop the last transactions), and a busy timeout for several processes sharing one file.
 */
export function openSqliteDatabase(path: string): SqliteDatabase {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}

const writeLocks = new WeakMap<SqliteDatabase, Promise<void>>();

/**
 * Serialises use of one connection's write side. better-sqlite3 has one connection per
 * Database, so an open transaction that awaits must not let another request's statements
 * slip into it. Everything that writes through retrysafe takes this lock.
 */
export async function withSqliteWriteLock<T>(db: SqliteDatabase, work: () => T | Promise<T>): Promise<T> {
  const previous = writeLocks.get(db);
  let unlock!: () => void;
  const current = new Promise<void>((resolve) => {
    unlock = resolve;
  });
  writeLocks.set(db, previous ? previous.then(() => current) : current);
  if (previous) await previous;
  try {
    return await work();
  } finally {
    unlock();
    if (writeLocks.get(db) === current) writeLocks.delete(db);
  }
}

/** Runs `work` in `BEGIN IMMEDIATE … COMMIT` under the write lock; any throw rolls back. */
export function runSqliteTransaction<T>(
  db: SqliteDatabase,
  work: (tx: SqliteDatabase) => Promise<T> | T,
): Promise<T> {
  return withSqliteWriteLock(db, async () => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = await work(db);
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  });
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
}

interface QueuedClaim {
  input: ClaimInput;
  resolve: (result: ClaimResult) => void;
  reject: (error: unknown) => void;
}

export class SqliteIdempotencyStore implements IdempotencyStore<SqliteDatabase> {
  readonly db: SqliteDatabase;
  readonly #statements: ReturnType<typeof prepareStatements>;
  readonly #queuedClaims: QueuedClaim[] = [];

  constructor(options: SqliteStoreOptions) {
    this.db = typeof options.database === 'string' ? openSqliteDatabase(options.database) : options.database;
    const table = options.tableName ?? defaultSqliteTableName;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table))
      throw new TypeError(`tableName ${table} is not a plain identifier`);
    migrate(this.db, table);
    this.#statements = prepareStatements(this.db, table);
  }

  claim(input: ClaimInput): Promise<ClaimResult> {
    return new Promise((resolve, reject) => {
      this.#queuedClaims.push({ input, resolve, reject });
      // The first claim to queue asks for the lock once this turn of the event loop has read every
      // ready request; all claims queued by the time it is granted run together.
      if (this.#queuedClaims.length === 1) {
        // From node:timers, so tests that fake the global timers cannot stall claims.
        afterThisTurn(() => void withSqliteWriteLock(this.db, () => this.#claimQueued()));
      }
    });
  }

  /**
   * Group commit: the claims queued in one turn of the event loop (or while the lock was busy)
   * run in one `BEGIN IMMEDIATE … COMMIT`, one WAL commit instead of one each. Each claim is
   * still its own atomic statement, and none answers before the commit. Should the batch fail
   * as a whole, it is rolled back and each claim runs alone, exactly as a lone claim does.
   */
  #claimQueued(): void {
    const batch = this.#queuedClaims.splice(0);
    if (batch.length > 1 && !this.db.inTransaction) {
      let results: ClaimResult[] | undefined;
      try {
        this.#statements.begin.run();
        results = batch.map(({ input }) => this.#claimNow(input));
        this.#statements.commit.run();
      } catch {
        results = undefined;
        try {
          if (this.db.inTransaction) this.#statements.rollback.run();
        } catch (error) {
          for (const claim of batch) claim.reject(error);
          return;
        }
      }
      if (results !== undefined) {
        for (const [i, claim] of batch.entries()) claim.resolve(results[i]!);
        return;
      }
    }
    for (const claim of batch) {
      try {
        claim.resolve(this.#claimNow(claim.input));
      } catch (error) {
        claim.reject(error);
      }
    }
  }

  #claimNow(input: ClaimInput): ClaimResult {
    // The lock covers this process only: another process sharing the file may release or
    // reap the row between our refused upsert and our read. Then the key is free: claim again.
    for (let attempt = 0; attempt < maxClaimAttempts; attempt++) {
      const won = this.#statements.claim.all(input) as { record_id: string; token: string }[];
      if (won[0]?.token === input.token) return { claimed: true, recordId: won[0].record_id };
      const row = this.#statements.get.get(input.scopeKey) as RecordRow | undefined;
      if (row) return { claimed: false, record: toRecord(row) };
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
      }).changes === 1;
    // Inside `transaction` the lock is already held by this very execution.
    return tx === undefined ? withSqliteWriteLock(this.db, run) : Promise.resolve(run());
  }

  async release(scopeKey: string, token: string): Promise<void> {
    await withSqliteWriteLock(this.db, () => this.#statements.release.run({ scopeKey, token }));
  }

  reap(nowMs: number, limit: number): Promise<number> {
    return withSqliteWriteLock(this.db, () => this.#statements.reap.run({ nowMs, limit }).changes);
  }

  transaction<T>(work: (tx: SqliteDatabase) => Promise<T>): Promise<T> {
    return runSqliteTransaction(this.db, work);
  }

  /** Reads a record as stored; for tests and diagnostics. */
  get(scopeKey: string): IdempotencyRecord | undefined {
    const row = this.#statements.get.get(scopeKey) as RecordRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async close(): Promise<void> {
    await withSqliteWriteLock(this.db, () => this.db.close());
  }
}

export function createSqliteStore(options: SqliteStoreOptions): SqliteIdempotencyStore {
  return new SqliteIdempotencyStore(options);
}

function migrate(db: SqliteDatabase, table: string): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${table} (
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
    CREATE INDEX IF NOT EXISTS ${table}_expires_at_ms ON ${table} (expires_at_ms);
  `);
}

function prepareStatements(db: SqliteDatabase, table: string) {
  return {
    // One statement decides the claim: insert, or take over an expired record or a lapsed
    // lease with the same fingerprint. RETURNING yields a row only when this call won.
    claim: db.prepare(`
      INSERT INTO ${table} (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms, expires_at_ms)
      VALUES (@scopeKey, @recordId, @fingerprint, @token, 'claimed', @leaseExpiresAtMs, @expiresAtMs)
      ON CONFLICT (scope_key) DO UPDATE SET
        record_id = CASE WHEN ${table}.expires_at_ms <= @nowMs THEN excluded.record_id ELSE ${table}.record_id END,
        fingerprint = excluded.fingerprint,
        token = excluded.token,
        state = 'claimed',
        lease_expires_at_ms = excluded.lease_expires_at_ms,
        expires_at_ms = excluded.expires_at_ms,
        status = NULL, headers = NULL, body = NULL
      WHERE ${table}.expires_at_ms <= @nowMs
         OR (${table}.state = 'claimed' AND ${table}.lease_expires_at_ms <= @nowMs
             AND ${table}.fingerprint = excluded.fingerprint)
      RETURNING record_id, token`),
    get: db.prepare(`SELECT * FROM ${table} WHERE scope_key = ?`),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    complete: db.prepare(`
      UPDATE ${table} SET state = 'completed', status = @status, headers = @headers, body = @body,
        expires_at_ms = @expiresAtMs
      WHERE scope_key = @scopeKey AND token = @token AND state = 'claimed'`),
    release: db.prepare(
      `DELETE FROM ${table} WHERE scope_key = @scopeKey AND token = @token AND state = 'claimed'`,
    ),
    reap: db.prepare(`
      DELETE FROM ${table} WHERE scope_key IN (
        SELECT scope_key FROM ${table} WHERE expires_at_ms <= @nowMs LIMIT @limit)`),
  };
}

function toRecord(row: RecordRow): IdempotencyRecord {
  const base = {
    scopeKey: row.scope_key,
    recordId: row.record_id,
    fingerprint: row.fingerprint,
    expiresAtMs: row.expires_at_ms,
  };
  if (row.state === 'claimed') {
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
