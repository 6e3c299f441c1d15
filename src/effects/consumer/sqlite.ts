// `retrysafe/consumer/sqlite`: the consumer ledger in your SQLite file, so an event's id and what
// processing it wrote commit in one transaction, and a redelivered event is skipped.
import type { Statement } from 'better-sqlite3';
import type { Migration } from '../../stores/migrations.js';
import {
  type SqliteDatabase,
  type SqliteUnitOfWork,
  sqliteUnitOfWork,
} from '../../stores/sqlite/unit-of-work.js';
import {
  type ConsumerLedger,
  type ConsumerLedgerSettings,
  checkEventId,
  consumerLedgerPart,
  defaultConsumerLedgerTableName,
  type LedgerSettings,
  ledgerSettings,
  type ProcessOnceResult,
  type ReapOptions,
  reapCutoffMs,
} from './ledger.js';

export * from './ledger.js';

/** The ledger's schema, by version (registered on the unit of work and applied by the constructor). */
export function sqliteConsumerLedgerMigrations(
  tableName: string = defaultConsumerLedgerTableName,
): Migration<SqliteDatabase>[] {
  return [
    {
      part: consumerLedgerPart(tableName),
      version: 1,
      name: 'create the processed events table',
      // The index serves reap: the oldest ids of one consumer, in bounded batches.
      up: `
        CREATE TABLE IF NOT EXISTS ${tableName} (
          consumer TEXT NOT NULL,
          event_id TEXT NOT NULL,
          processed_at_ms INTEGER NOT NULL,
          PRIMARY KEY (consumer, event_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS ${tableName}_processed_at_ms ON ${tableName} (consumer, processed_at_ms);`,
    },
  ];
}

export interface SqliteConsumerLedgerOptions extends ConsumerLedgerSettings {
  /** The unit of work your repositories share (or a better-sqlite3 Database, wrapped in its unit of work). */
  database: SqliteUnitOfWork | SqliteDatabase;
}

export class SqliteConsumerLedger implements ConsumerLedger<SqliteDatabase> {
  readonly consumer: string;
  readonly tableName: string;
  readonly unitOfWork: SqliteUnitOfWork;
  readonly migrations: Migration<SqliteDatabase>[];
  readonly #settings: LedgerSettings;
  readonly #remember: Statement<[consumer: string, eventId: string, processedAtMs: number]>;
  readonly #forgetOldest: Statement<[consumer: string, cutoffMs: number, limit: number]>;

  constructor(options: SqliteConsumerLedgerOptions) {
    this.#settings = ledgerSettings(options, /^[A-Za-z_][A-Za-z0-9_]*$/);
    this.consumer = this.#settings.consumer;
    this.tableName = this.#settings.tableName;
    this.unitOfWork = sqliteUnitOfWork(options.database);
    this.migrations = sqliteConsumerLedgerMigrations(this.tableName);
    this.unitOfWork.register(...this.migrations);
    this.unitOfWork.migrate(this.migrations);
    const table = this.tableName;
    const db = this.unitOfWork.db;
    this.#remember = db.prepare(
      `INSERT INTO ${table} (consumer, event_id, processed_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.#forgetOldest = db.prepare(
      `DELETE FROM ${table} WHERE (consumer, event_id) IN (
         SELECT consumer, event_id FROM ${table}
         WHERE consumer = ? AND processed_at_ms < ? ORDER BY processed_at_ms LIMIT ?)`,
    );
  }

  /** `BEGIN IMMEDIATE`, remember the id (or find it remembered), run `work`, `COMMIT`; a throw rolls both back. */
  processOnce<R>(
    eventId: string,
    work: (tx: SqliteDatabase) => Promise<R> | R,
  ): Promise<ProcessOnceResult<R>> {
    checkEventId(eventId);
    return this.unitOfWork.transaction(async (tx): Promise<ProcessOnceResult<R>> => {
      const { changes } = this.#remember.run(this.consumer, eventId, this.#settings.now());
      if (changes === 0) return { processed: false };
      return { processed: true, result: await work(tx) };
    });
  }

  async reap(options: ReapOptions): Promise<{ deleted: number }> {
    const cutoffMs = reapCutoffMs(options, this.#settings);
    const { changes } = await this.unitOfWork.write(() =>
      this.#forgetOldest.run(this.consumer, cutoffMs, options.limit),
    );
    return { deleted: changes };
  }
}

/** Registers and applies the ledger's migrations on `database` at once (SQLite migrates synchronously). */
export function createSqliteConsumerLedger(options: SqliteConsumerLedgerOptions): SqliteConsumerLedger {
  return new SqliteConsumerLedger(options);
}
