// `retrysafe/consumer/postgres`: the consumer ledger in your PostgreSQL database, so an event's id
// and what processing it wrote commit in one transaction, and a redelivered event is skipped.
import type { Migration } from '../../stores/migrations.js';
import {
  checkPostgresIdentifier,
  type PgClientLike,
  type PgPoolLike,
  type PostgresUnitOfWork,
  postgresUnitOfWork,
} from '../../stores/postgres/unit-of-work.js';
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

/** The ledger's schema, by version, for the unit of work's `migrate()`. */
export function postgresConsumerLedgerMigrations<Client extends PgClientLike = PgClientLike>(
  tableName: string = defaultConsumerLedgerTableName,
): Migration<Client>[] {
  checkPostgresIdentifier('tableName', tableName);
  // An index lives in its table's schema, so its own name is never qualified.
  const unqualified = tableName.split('.').pop();
  return [
    {
      part: consumerLedgerPart(tableName),
      version: 1,
      name: 'create the processed events table',
      // The index serves reap: the oldest ids of one consumer, in bounded batches.
      up: `CREATE TABLE IF NOT EXISTS ${tableName} (
  consumer text NOT NULL,
  event_id text NOT NULL,
  processed_at_ms bigint NOT NULL,
  PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS ${unqualified}_processed_at_ms ON ${tableName} (consumer, processed_at_ms);`,
    },
  ];
}

export interface PostgresConsumerLedgerOptions<Client extends PgClientLike> extends ConsumerLedgerSettings {
  /** The unit of work your repositories share (or a `pg.Pool`, wrapped in its unit of work). */
  database: PostgresUnitOfWork<Client> | PgPoolLike<Client>;
}

export class PostgresConsumerLedger<Client extends PgClientLike = PgClientLike>
  implements ConsumerLedger<Client>
{
  readonly consumer: string;
  readonly tableName: string;
  readonly unitOfWork: PostgresUnitOfWork<Client>;
  /** Registered on the unit of work; `migrate()` (the ledger's or the unit of work's) applies them. */
  readonly migrations: Migration<Client>[];
  readonly #settings: LedgerSettings;
  readonly #sql: { remember: string; forgetOldest: string };

  constructor(options: PostgresConsumerLedgerOptions<Client>) {
    this.#settings = ledgerSettings(options, /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/);
    this.consumer = this.#settings.consumer;
    this.tableName = this.#settings.tableName;
    this.unitOfWork = postgresUnitOfWork(options.database);
    this.migrations = postgresConsumerLedgerMigrations<Client>(this.tableName);
    this.unitOfWork.register(...this.migrations);
    const table = this.tableName;
    this.#sql = {
      // A concurrent delivery of the same id waits on the primary key until the first commits
      // (then inserts nothing) or rolls back (then inserts and processes it).
      remember: `INSERT INTO ${table} (consumer, event_id, processed_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      forgetOldest: `DELETE FROM ${table} WHERE (consumer, event_id) IN (
  SELECT consumer, event_id FROM ${table}
  WHERE consumer = $1 AND processed_at_ms < $2
  ORDER BY processed_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    };
  }

  /** Applies the ledger's missing migrations through its unit of work. */
  async migrate(): Promise<void> {
    await this.unitOfWork.migrate(this.migrations);
  }

  /** BEGIN, remember the id (or find it remembered), run `work`, COMMIT; a throw rolls both back. */
  processOnce<R>(eventId: string, work: (tx: Client) => Promise<R> | R): Promise<ProcessOnceResult<R>> {
    checkEventId(eventId);
    return this.unitOfWork.transaction(async (tx): Promise<ProcessOnceResult<R>> => {
      const { rowCount } = await tx.query(this.#sql.remember, [this.consumer, eventId, this.#settings.now()]);
      if (rowCount !== 1) return { processed: false };
      return { processed: true, result: await work(tx) };
    });
  }

  async reap(options: ReapOptions): Promise<{ deleted: number }> {
    const cutoffMs = reapCutoffMs(options, this.#settings);
    const { rowCount } = await this.unitOfWork.pool.query(this.#sql.forgetOldest, [
      this.consumer,
      cutoffMs,
      options.limit,
    ]);
    return { deleted: rowCount ?? 0 };
  }
}

/** Registers the ledger's migrations on the unit of work; call `migrate()` (or the unit of work's) before use. */
export function createPostgresConsumerLedger<Client extends PgClientLike = PgClientLike>(
  options: PostgresConsumerLedgerOptions<Client>,
): PostgresConsumerLedger<Client> {
  return new PostgresConsumerLedger(options);
}
