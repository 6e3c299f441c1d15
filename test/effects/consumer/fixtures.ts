// Consumer ledgers on real databases for the consumer and relay tests: a SQLite file in a temp
// directory or a throwaway PostgreSQL database, each with a side-effect table that has no unique
// key, so an event processed twice shows up as two rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ConsumerLedger } from '../../../src/effects/consumer/ledger.js';
import { createPostgresConsumerLedger } from '../../../src/effects/consumer/postgres.js';
import { createSqliteConsumerLedger } from '../../../src/effects/consumer/sqlite.js';
import { createPostgresUnitOfWork } from '../../../src/stores/postgres/unit-of-work.js';
import { createSqliteUnitOfWork, type SqliteDatabase } from '../../../src/stores/sqlite/unit-of-work.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

export type Dialect = 'sqlite' | 'postgres';
export const dialects: Dialect[] = ['sqlite', 'postgres'];

export interface LedgerFixture {
  dialect: Dialect;
  /** The transaction type differs by dialect; the fixture's own helpers know it. */
  ledger: ConsumerLedger<unknown>;
  /** One side-effect row for `eventId`, written in the ledger's transaction. */
  recordEffect(tx: unknown, eventId: string): Promise<void>;
  /** Side-effect rows by event id. */
  effects(): Promise<Map<string, number>>;
  /** Ids in the ledger for this consumer. */
  processedIds(): Promise<string[]>;
  /** The SQLite file and side-effect table, for a child process to open (SQLite fixtures only). */
  sqliteFile?: { databasePath: string; effectsTable: string };
  /** Another consumer's ledger on the same database and table. */
  sibling(consumer: string): ConsumerLedger<unknown>;
}

export interface LedgerFixtureOptions {
  consumer?: string;
  now?: () => number;
  retryHorizonMs?: number;
}

/** Opens fixtures on demand and removes every file and database they used in `close()`. */
export class LedgerFixtures {
  readonly #prefix: string;
  #directory: string | undefined;
  #database: Promise<TestDatabase> | undefined;
  readonly #sqlite: SqliteDatabase[] = [];
  readonly #pools: pg.Pool[] = [];
  #opened = 0;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  async open(dialect: Dialect, options: LedgerFixtureOptions = {}): Promise<LedgerFixture> {
    this.#opened++;
    const consumer = options.consumer ?? `consumer-${this.#opened}`;
    const table = `effects_${this.#opened}`;
    const settings = {
      consumer,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.retryHorizonMs === undefined ? {} : { retryHorizonMs: options.retryHorizonMs }),
    };
    return dialect === 'sqlite' ? this.#openSqlite(table, settings) : this.#openPostgres(table, settings);
  }

  #openSqlite(table: string, settings: { consumer: string }): LedgerFixture {
    this.#directory ??= mkdtempSync(join(tmpdir(), `${this.#prefix}-`));
    const databasePath = join(this.#directory, `${table}.db`);
    const unitOfWork = createSqliteUnitOfWork(databasePath);
    this.#sqlite.push(unitOfWork.db);
    unitOfWork.db.exec(`CREATE TABLE ${table} (event_id TEXT NOT NULL)`);
    const ledger = createSqliteConsumerLedger({ database: unitOfWork, ...settings });
    return {
      dialect: 'sqlite',
      sqliteFile: { databasePath, effectsTable: table },
      ledger: ledger as ConsumerLedger<unknown>,
      async recordEffect(tx, eventId) {
        (tx as SqliteDatabase).prepare(`INSERT INTO ${table} (event_id) VALUES (?)`).run(eventId);
      },
      async effects() {
        const rows = unitOfWork.db
          .prepare(`SELECT event_id AS id, count(*) AS n FROM ${table} GROUP BY event_id`)
          .all() as { id: string; n: number }[];
        return new Map(rows.map((row) => [row.id, row.n]));
      },
      async processedIds() {
        const rows = unitOfWork.db
          .prepare(
            'SELECT event_id AS id FROM retrysafe_processed_events WHERE consumer = ? ORDER BY event_id',
          )
          .all(settings.consumer) as { id: string }[];
        return rows.map((row) => row.id);
      },
      sibling: (consumer) =>
        createSqliteConsumerLedger({ database: unitOfWork, consumer }) as ConsumerLedger<unknown>,
    };
  }

  async #openPostgres(table: string, settings: { consumer: string }): Promise<LedgerFixture> {
    this.#database ??= createTestDatabase(this.#prefix.replaceAll('-', '_'));
    const database = await this.#database;
    const pool = new pg.Pool({ connectionString: database.url, max: 4 });
    // The teardown's DROP DATABASE … WITH (FORCE) may terminate an idle client.
    pool.on('error', () => {});
    this.#pools.push(pool);
    await pool.query(`CREATE TABLE ${table} (event_id text NOT NULL)`);
    const unitOfWork = createPostgresUnitOfWork<pg.PoolClient>(pool);
    const ledger = createPostgresConsumerLedger<pg.PoolClient>({
      database: unitOfWork,
      ...settings,
    });
    await ledger.migrate();
    return {
      dialect: 'postgres',
      ledger: ledger as unknown as ConsumerLedger<unknown>,
      async recordEffect(tx, eventId) {
        await (tx as pg.PoolClient).query(`INSERT INTO ${table} (event_id) VALUES ($1)`, [eventId]);
      },
      async effects() {
        const { rows } = await pool.query<{ id: string; n: string }>(
          `SELECT event_id AS id, count(*) AS n FROM ${table} GROUP BY event_id`,
        );
        return new Map(rows.map((row) => [row.id, Number(row.n)]));
      },
      async processedIds() {
        const { rows } = await pool.query<{ id: string }>(
          'SELECT event_id AS id FROM retrysafe_processed_events WHERE consumer = $1 ORDER BY event_id',
          [settings.consumer],
        );
        return rows.map((row) => row.id);
      },
      sibling: (consumer) =>
        createPostgresConsumerLedger({
          database: unitOfWork,
          consumer,
        }) as unknown as ConsumerLedger<unknown>,
    };
  }

  async close(): Promise<void> {
    for (const db of this.#sqlite.splice(0)) if (db.open) db.close();
    if (this.#directory !== undefined) rmSync(this.#directory, { recursive: true, force: true });
    await Promise.all(this.#pools.splice(0).map((pool) => pool.end()));
    if (this.#database !== undefined) await (await this.#database).drop();
  }
}

/** Wraps a ledger to count its answers as they happen (the consumer's own counts come at its end). */
export function countingLedger(ledger: ConsumerLedger<unknown>): {
  ledger: ConsumerLedger<unknown>;
  answers: { processed: number; duplicates: number };
} {
  const answers = { processed: 0, duplicates: 0 };
  return {
    answers,
    ledger: {
      consumer: ledger.consumer,
      reap: (options) => ledger.reap(options),
      async processOnce(eventId, work) {
        const outcome = await ledger.processOnce(eventId, work);
        if (outcome.processed) answers.processed++;
        else answers.duplicates++;
        return outcome;
      },
    },
  };
}

/** Polls `check` every 20 ms, at most `attempts` times, so a wait is bounded by count, not by the clock. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  attempts = 500,
): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}
