// The PostgreSQL unit of work: transactions on clients checked out of a `pg.Pool`-like pool,
// one transaction type (the client) shared by the store and your repositories, and migrations.
// Structural types only: this file never imports `pg`.
import { AmbiguousCommitError, TransactionUnavailableError } from '../../idempotency/errors.js';
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
  /** A checked-out pg client emits 'error' when its connection dies; unheard, that crashes the process. */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A connection pool; `pg.Pool` fits. */
export interface PgPoolLike<Client extends PgClientLike = PgClientLike> {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  query(config: PgQueryConfigLike): Promise<PgQueryResultLike>;
  connect(): Promise<Client>;
}

export type PostgresMigration<Client extends PgClientLike = PgClientLike> = Migration<Client>;

export interface PostgresUnitOfWorkOptions {
  /** Where applied migrations are recorded, plain or schema-qualified. Default `retrysafe_migrations`. */
  migrationsTableName?: string;
}

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

export function checkPostgresIdentifier(what: string, name: string): void {
  if (!identifierPattern.test(name)) {
    throw new TypeError(`${what} ${name} must be a plain identifier, optionally schema-qualified`);
  }
}

// SQLSTATE classes after which the server may have gone away: a COMMIT that met one may have landed.
const connectionLostClasses = new Set(['08', '57']);
// Class 40 (serialization failure, deadlock): the server rolled the transaction back and said so.
const rolledBackClass = '40';

export class PostgresUnitOfWork<Client extends PgClientLike = PgClientLike> {
  readonly pool: PgPoolLike<Client>;
  readonly migrationsTableName: string;
  /** Every part's migrations; `migrate()` applies what is missing. */
  readonly migrations: MigrationRegistry<Client> = new MigrationRegistry<Client>();

  constructor(pool: PgPoolLike<Client>, options: PostgresUnitOfWorkOptions = {}) {
    this.pool = pool;
    this.migrationsTableName = options.migrationsTableName ?? defaultMigrationsTableName;
    checkPostgresIdentifier('migrationsTableName', this.migrationsTableName);
  }

  /**
   * BEGIN … COMMIT on one checked-out client; a throw rolls back; the client goes back to the
   * pool either way, or is destroyed when its connection broke. While it is held, an 'error'
   * listener keeps a connection that dies mid-transaction from crashing the process.
   * Failures of the connection surface as 503 problems: `TransactionUnavailableError` when it
   * broke before COMMIT was sent (nothing saved), `AmbiguousCommitError` when COMMIT got no
   * answer (maybe saved). Your work's own errors pass through unchanged.
   */
  async transaction<T>(work: (tx: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new TransactionUnavailableError(error);
    }
    let lost: Error | undefined;
    const onError = (error: Error) => {
      lost ??= error;
    };
    client.on?.('error', onError);
    // Set when the client must not be reused: its session may be dead or mid-transaction.
    let broken: Error | undefined;
    try {
      try {
        await client.query('BEGIN');
      } catch (error) {
        broken = asError(error);
        throw new TransactionUnavailableError(error);
      }
      let result: T;
      try {
        result = await work(client);
      } catch (error) {
        if (lost === undefined) {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackError) {
            broken = asError(rollbackError);
          }
        }
        if (lost !== undefined || broken !== undefined) {
          broken ??= lost;
          throw new TransactionUnavailableError(error);
        }
        throw error;
      }
      // The connection died while the work ran (it may have swallowed the failure): COMMIT was
      // never sent, and the server rolls back a session it lost.
      if (lost !== undefined) {
        broken = lost;
        throw new TransactionUnavailableError(lost);
      }
      try {
        await client.query('COMMIT');
      } catch (error) {
        broken = asError(error);
        const code = sqlState(error);
        if (lost === undefined && code !== undefined && !connectionLostClasses.has(code.slice(0, 2))) {
          // The server answered: it rolled back (a deferred constraint, a serialization failure).
          if (code.startsWith(rolledBackClass)) throw new TransactionUnavailableError(error);
          throw error;
        }
        throw new AmbiguousCommitError(error);
      }
      return result;
    } finally {
      if (broken !== undefined) {
        // The listener stays on the discarded client: a late 'error' from it must stay harmless.
        client.release(broken);
      } else {
        client.removeListener?.('error', onError);
        client.release();
      }
    }
  }

  register(...migrations: PostgresMigration<Client>[]): this {
    this.migrations.register(...migrations);
    return this;
  }

  /**
   * Applies the missing migrations of `source` (default: every registered one) in one
   * transaction under `pg_advisory_xact_lock`, so processes starting at once take turns and the
   * later ones find the migrations applied.
   */
  async migrate(source: MigrationSource<Client> = this.migrations): Promise<MigrationReport> {
    const wanted = migrationsOf(source);
    const table = this.migrationsTableName;
    return this.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`retrysafe:migrations:${table}`]);
      await tx.query(`CREATE TABLE IF NOT EXISTS ${table} (
        part text NOT NULL,
        version integer NOT NULL,
        name text NOT NULL,
        checksum text,
        applied_at_ms bigint NOT NULL,
        PRIMARY KEY (part, version)
      )`);
      const applied = await readApplied(tx, table);
      const report: MigrationReport = { applied: [] };
      for (const migration of planMigrations(wanted, applied)) {
        if (typeof migration.up === 'string') await tx.query(migration.up);
        else await migration.up(tx);
        await tx.query(
          `INSERT INTO ${table} (part, version, name, checksum, applied_at_ms) VALUES ($1, $2, $3, $4, $5)`,
          [migration.part, migration.version, migration.name, checksumOf(migration), Date.now()],
        );
        report.applied.push({ part: migration.part, version: migration.version, name: migration.name });
      }
      return report;
    });
  }

  /** The applied migrations, for diagnostics. */
  async applied(): Promise<AppliedMigration[]> {
    const exists = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS present', [
      this.migrationsTableName,
    ]);
    if (!(exists.rows[0] as { present: boolean }).present) return [];
    return readApplied(this.pool, this.migrationsTableName);
  }
}

async function readApplied(on: PgClientLike | PgPoolLike, table: string): Promise<AppliedMigration[]> {
  const { rows } = await on.query(
    `SELECT part, version, name, checksum, applied_at_ms FROM ${table} ORDER BY part, version`,
  );
  return (
    rows as { part: string; version: number; name: string; checksum: string | null; applied_at_ms: string }[]
  ).map((row) => ({
    part: row.part,
    version: row.version,
    name: row.name,
    checksum: row.checksum,
    appliedAtMs: Number(row.applied_at_ms),
  }));
}

const wrapped = new WeakMap<object, PostgresUnitOfWork<PgClientLike>>();

/** The unit of work for `pool`: a given unit of work as it is, or a plain pool wrapped once. */
export function postgresUnitOfWork<Client extends PgClientLike>(
  pool: PostgresUnitOfWork<Client> | PgPoolLike<Client>,
): PostgresUnitOfWork<Client> {
  if (pool instanceof PostgresUnitOfWork) return pool;
  let unitOfWork = wrapped.get(pool) as PostgresUnitOfWork<Client> | undefined;
  if (unitOfWork === undefined) {
    unitOfWork = new PostgresUnitOfWork(pool);
    wrapped.set(pool, unitOfWork as unknown as PostgresUnitOfWork<PgClientLike>);
  }
  return unitOfWork;
}

export function createPostgresUnitOfWork<Client extends PgClientLike = PgClientLike>(
  pool: PgPoolLike<Client>,
  options: PostgresUnitOfWorkOptions = {},
): PostgresUnitOfWork<Client> {
  return new PostgresUnitOfWork(pool, options);
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
