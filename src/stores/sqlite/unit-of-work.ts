// The SQLite unit of work: one better-sqlite3 Database, one write lock, one transaction type
// (`SqliteDatabase`) shared by the idempotency store and your repositories, and its migrations.
import Database from 'better-sqlite3';
import { TransactionUnavailableError } from '../../idempotency/errors.js';
import {
  type AppliedMigration,
  checksumOf,
  defaultMigrationsTableName,
  type Migration,
  MigrationRegistry,
  type MigrationReport,
  type MigrationSource,
  migrationsOf,
  planMigrations,
} from '../migrations.js';
import {
  defaultSqliteLockWaitMs,
  isSqliteBusy,
  lockDeadline,
  sqliteBusyTimeoutMs,
  sqliteMigrationBusyTimeoutMs,
  validLockWaitMs,
  whileSqliteBusy,
} from './lock-wait.js';

export {
  defaultSqliteLockWaitMs,
  SqliteLockWaitError,
  sqliteBusyTimeoutMs,
  sqliteMigrationBusyTimeoutMs,
} from './lock-wait.js';

export type SqliteDatabase = Database.Database;

/** A SQLite migration: SQL text, or a synchronous function of the database (better-sqlite3 is synchronous). */
export type SqliteMigration = Migration<SqliteDatabase>;

export interface SqliteUnitOfWorkOptions {
  /** Where applied migrations are recorded. Default `retrysafe_migrations`. */
  migrationsTableName?: string;
  /**
   * How long a write waits for the file's write lock while another process holds it, before it
   * fails with a 503 (`TransactionUnavailableError`, or `SqliteLockWaitError` from the store).
   * The wait is asynchronous: the event loop is blocked at most `sqliteBusyTimeoutMs` per try,
   * so reads and health checks keep answering. Default `defaultSqliteLockWaitMs` (5000 ms).
   */
  lockWaitMs?: number;
}

/**
 * Opens a database file with the settings retrysafe relies on: WAL (readers never block the
 * writer, nor wait for another process's write lock), synchronous=NORMAL (a killed process loses
 * nothing committed; only power loss can drop the last transactions), and a short busy timeout
 * (`sqliteBusyTimeoutMs`): longer waits for another process's lock are asynchronous.
 */
export function openSqliteDatabase(path: string): SqliteDatabase {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
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

/**
 * Runs a write of one statement (or several that may each be retried) outside a transaction,
 * under the write lock, waiting asynchronously for another process's lock up to `lockWaitMs`
 * (default: the connection's unit of work's); then `SqliteLockWaitError`.
 */
export function runSqliteWrite<T>(
  db: SqliteDatabase,
  write: () => T,
  lockWaitMs = lockWaitOf(db),
): Promise<T> {
  // The bound starts now: time spent queued behind this process's own writers counts too.
  const deadline = lockDeadline(lockWaitMs);
  return withSqliteWriteLock(db, () => whileSqliteBusy(write, deadline));
}

/**
 * Runs `work` in `BEGIN IMMEDIATE … COMMIT` under the write lock; any throw rolls back. While
 * another process holds the file's write lock, BEGIN is retried asynchronously (the event loop
 * keeps serving reads) for up to `lockWaitMs` (default: the connection's unit of work's, else
 * `defaultSqliteLockWaitMs`); a transaction that cannot start by then is a 503
 * `TransactionUnavailableError` (nothing ran), not a raw driver error.
 */
export function runSqliteTransaction<T>(
  db: SqliteDatabase,
  work: (tx: SqliteDatabase) => Promise<T> | T,
  lockWaitMs = lockWaitOf(db),
): Promise<T> {
  const deadline = lockDeadline(lockWaitMs);
  return withSqliteWriteLock(db, async () => {
    try {
      // The in-process lock is held while this waits, so no other request's statements can
      // slip into the transaction once it begins.
      await whileSqliteBusy(() => db.exec('BEGIN IMMEDIATE'), deadline);
    } catch (error) {
      // Another process held the file's write lock past lockWaitMs: nothing ran, retry later.
      if (isSqliteBusy(error)) throw new TransactionUnavailableError(error);
      throw error;
    }
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

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class SqliteUnitOfWork {
  readonly db: SqliteDatabase;
  readonly migrationsTableName: string;
  /** The bound on a write's asynchronous wait for another process's write lock. */
  readonly lockWaitMs: number;
  /** Every part's migrations; `migrate()` applies what is missing. */
  readonly migrations: MigrationRegistry<SqliteDatabase> = new MigrationRegistry<SqliteDatabase>();

  constructor(database: SqliteDatabase | string, options: SqliteUnitOfWorkOptions = {}) {
    this.lockWaitMs = validLockWaitMs(options.lockWaitMs ?? defaultSqliteLockWaitMs);
    this.db = typeof database === 'string' ? openSqliteDatabase(database) : database;
    // A Database opened elsewhere (better-sqlite3's default timeout is 5 s) would block the
    // event loop for the whole wait: only the asynchronous wait above may be long.
    if (typeof database !== 'string' && this.db.open) this.db.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
    this.migrationsTableName = options.migrationsTableName ?? defaultMigrationsTableName;
    if (!identifierPattern.test(this.migrationsTableName)) {
      throw new TypeError(`migrationsTableName ${this.migrationsTableName} is not a plain identifier`);
    }
    // Later wrappings of this Database (a store given the plain Database) share this unit of work.
    if (!wrapped.has(this.db)) wrapped.set(this.db, this);
  }

  /** `BEGIN IMMEDIATE … COMMIT` under this database's write lock; a throw rolls back. */
  transaction<T>(work: (tx: SqliteDatabase) => Promise<T> | T): Promise<T> {
    return runSqliteTransaction(this.db, work, this.lockWaitMs);
  }

  /**
   * A write outside a transaction (one statement, or statements each safe to run again), waiting
   * asynchronously for another process's lock up to `lockWaitMs`; then `SqliteLockWaitError`.
   */
  write<T>(write: () => T): Promise<T> {
    return runSqliteWrite(this.db, write, this.lockWaitMs);
  }

  /**
   * Runs `work` alone on this connection's write side, without a transaction of its own. Its
   * statements wait for another process's lock only `sqliteBusyTimeoutMs`: use `write` or
   * `transaction` to wait longer without blocking the event loop.
   */
  withWriteLock<T>(work: () => T | Promise<T>): Promise<T> {
    return withSqliteWriteLock(this.db, work);
  }

  register(...migrations: SqliteMigration[]): this {
    this.migrations.register(...migrations);
    return this;
  }

  /**
   * Applies the missing migrations of `source` (default: every registered one) in one
   * `BEGIN IMMEDIATE` transaction: the file's write lock makes concurrent processes take turns,
   * and the later ones find the migrations applied. Synchronous, so a store can migrate in its
   * constructor; call it before this connection has a transaction open. It alone waits for the
   * lock synchronously, up to `sqliteMigrationBusyTimeoutMs`, as it runs at start-up.
   */
  migrate(source: MigrationSource<SqliteDatabase> = this.migrations): MigrationReport {
    const wanted = migrationsOf(source);
    if (this.db.inTransaction) {
      throw new Error(
        'migrate() cannot run while this connection has a transaction open: migrate at start-up',
      );
    }
    const report: MigrationReport = { applied: [] };
    const busyTimeoutMs = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma(`busy_timeout = ${Math.max(busyTimeoutMs, sqliteMigrationBusyTimeoutMs)}`);
    try {
      this.#migrate(wanted, report);
    } finally {
      this.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
    return report;
  }

  #migrate(wanted: SqliteMigration[], report: MigrationReport): void {
    const table = this.migrationsTableName;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
        part TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        checksum TEXT,
        applied_at_ms INTEGER NOT NULL,
        PRIMARY KEY (part, version)
      ) WITHOUT ROWID`);
      const applied = (
        this.db
          .prepare(`SELECT part, version, name, checksum, applied_at_ms AS appliedAtMs FROM ${table}`)
          .all() as AppliedMigration[]
      ).map((row) => ({ ...row, version: Number(row.version) }));
      const record = this.db.prepare(
        `INSERT INTO ${table} (part, version, name, checksum, applied_at_ms) VALUES (?, ?, ?, ?, ?)`,
      );
      for (const migration of planMigrations(wanted, applied)) {
        if (typeof migration.up === 'string') this.db.exec(migration.up);
        else {
          const result: unknown = migration.up(this.db);
          if (result instanceof Promise) {
            throw new TypeError(
              `SQLite migration ${migration.part} v${migration.version} returned a promise: SQLite migrations run synchronously`,
            );
          }
        }
        record.run(migration.part, migration.version, migration.name, checksumOf(migration), Date.now());
        report.applied.push({ part: migration.part, version: migration.version, name: migration.name });
      }
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /** The applied migrations, for diagnostics. */
  applied(): AppliedMigration[] {
    const table = this.migrationsTableName;
    const exists = this.db
      .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
      .get(table);
    if (exists === undefined) return [];
    return this.db
      .prepare(
        `SELECT part, version, name, checksum, applied_at_ms AS appliedAtMs FROM ${table} ORDER BY part, version`,
      )
      .all() as AppliedMigration[];
  }

  async close(): Promise<void> {
    await withSqliteWriteLock(this.db, () => {
      if (this.db.open) this.db.close();
    });
  }
}

const wrapped = new WeakMap<SqliteDatabase, SqliteUnitOfWork>();

function lockWaitOf(db: SqliteDatabase): number {
  return wrapped.get(db)?.lockWaitMs ?? defaultSqliteLockWaitMs;
}

/**
 * The unit of work for `database`: a given unit of work as it is, a plain Database wrapped once
 * (so every store and repository on it shares one registry), or a path opened with the settings above.
 */
export function sqliteUnitOfWork(database: SqliteUnitOfWork | SqliteDatabase | string): SqliteUnitOfWork {
  if (database instanceof SqliteUnitOfWork) return database;
  if (typeof database === 'string') return new SqliteUnitOfWork(database);
  let unitOfWork = wrapped.get(database);
  if (unitOfWork === undefined) {
    unitOfWork = new SqliteUnitOfWork(database);
    wrapped.set(database, unitOfWork);
  }
  return unitOfWork;
}

export function createSqliteUnitOfWork(
  database: SqliteDatabase | string,
  options: SqliteUnitOfWorkOptions = {},
): SqliteUnitOfWork {
  return new SqliteUnitOfWork(database, options);
}
