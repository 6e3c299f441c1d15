// `retrysafe/jobs/sqlite`: the outbox in the same SQLite file as your business tables. Jobs are
// enqueued in your transaction; the runner claims them under the unit of work's write lock.
import type { RecordData } from '../../idempotency/store.js';
import type { Migration } from '../../stores/migrations.js';
import {
  type SqliteDatabase,
  type SqliteUnitOfWork,
  sqliteUnitOfWork,
} from '../../stores/sqlite/unit-of-work.js';
import { checkMaxPayloadBytes, defaultMaxPayloadBytes, normalizeJob } from './enqueue-input.js';
import { leaseLapsedOnLastAttempt } from './errors.js';
import { type JobRow, type TopicStatsRow, toJobRecord, toQueueStats } from './rows.js';
import {
  checkSqliteJobsTableName,
  defaultSqliteJobsTableName,
  sqliteJobMigrations,
} from './sqlite/schema.js';
import { type JobStatements, prepareJobStatements } from './sqlite/statements.js';
import type {
  ClaimedJob,
  ClaimInput,
  ClaimOutcome,
  EnqueueInput,
  EnqueueResult,
  JobLease,
  JobQueue,
  JobRecord,
  QueueStats,
  QueueSubscription,
  RetryOrDead,
  SubscribeHandlers,
} from './types.js';

export * from './sqlite/schema.js';

export interface SqliteJobQueueOptions {
  /**
   * The unit of work your repositories and the idempotency store share (recommended), or a
   * better-sqlite3 database (wrapped in its unit of work), or a file path to open.
   */
  database: SqliteUnitOfWork | SqliteDatabase | string;
  /** Default `retrysafe_jobs`. */
  tableName?: string;
  /** Bound on a payload's JSON text. Default 256 KiB. */
  maxPayloadBytes?: number;
  /** The clock rows are stamped with; the runner's default clock. Default `Date.now`. */
  now?: () => number;
}

type WakeListener = (topic: string) => void;

/**
 * In-process wake-ups, per database connection and table: every queue object on the same
 * Database hears every enqueue. Another process writing the file is not heard (its jobs are
 * found by the runner's polling).
 */
const wakeListeners = new WeakMap<SqliteDatabase, Map<string, Set<WakeListener>>>();

function listenersOf(db: SqliteDatabase, table: string): Set<WakeListener> {
  let tables = wakeListeners.get(db);
  if (tables === undefined) {
    tables = new Map();
    wakeListeners.set(db, tables);
  }
  let listeners = tables.get(table);
  if (listeners === undefined) {
    listeners = new Set();
    tables.set(table, listeners);
  }
  return listeners;
}

export class SqliteJobQueue implements JobQueue<SqliteDatabase> {
  readonly db: SqliteDatabase;
  readonly unitOfWork: SqliteUnitOfWork;
  readonly tableName: string;
  readonly now: () => number;
  readonly maxPayloadBytes: number;
  /** The queue's migrations, registered in its unit of work and applied by the constructor. */
  readonly migrations: Migration<SqliteDatabase>[];
  readonly #sql: JobStatements;

  constructor(options: SqliteJobQueueOptions) {
    this.unitOfWork = sqliteUnitOfWork(options.database);
    this.db = this.unitOfWork.db;
    this.tableName = checkSqliteJobsTableName(options.tableName ?? defaultSqliteJobsTableName);
    this.now = options.now ?? Date.now;
    this.maxPayloadBytes = checkMaxPayloadBytes(options.maxPayloadBytes ?? defaultMaxPayloadBytes);
    this.migrations = sqliteJobMigrations(this.tableName);
    this.unitOfWork.register(...this.migrations);
    this.unitOfWork.migrate(this.migrations);
    this.#sql = prepareJobStatements(this.db, this.tableName);
  }

  async enqueue(tx: SqliteDatabase, input: EnqueueInput): Promise<EnqueueResult> {
    this.#checkTransaction(tx, 'enqueue');
    const job = normalizeJob(input, this.now(), this.maxPayloadBytes);
    const inserted = this.#sql.insert.run({
      id: job.id,
      topic: job.topic,
      payload: job.payloadJson,
      dedupeKey: job.dedupeKey,
      runAtMs: job.runAtMs,
      maxAttempts: job.maxAttempts,
      nowMs: job.nowMs,
    });
    if (inserted.changes === 1) {
      // A runner woken now claims under the write lock this transaction holds: it sees the row
      // once this transaction commits, and nothing if it rolls back.
      for (const listener of listenersOf(this.db, this.tableName)) listener(job.topic);
      return { id: job.id, created: true };
    }
    const existing = (this.#sql.idOf.get(job.id) ??
      (job.dedupeKey === null ? undefined : this.#sql.idOfDedupeKey.get(job.topic, job.dedupeKey))) as
      | { id: string }
      | undefined;
    // Under the transaction's write lock the conflicting row cannot vanish before this read.
    if (existing === undefined)
      throw new Error(`enqueue of job ${job.id} conflicted with a row it cannot find`);
    return { id: existing.id, created: false };
  }

  claim(input: ClaimInput): Promise<ClaimOutcome> {
    const values = {
      topics: JSON.stringify(input.topics),
      nowMs: input.nowMs,
      leaseMs: input.leaseMs,
      limit: input.limit,
      defaultMaxAttempts: input.defaultMaxAttempts,
    };
    return this.unitOfWork.transaction(() => {
      const exhausted = this.#sql.exhaust.all({ ...values, error: leaseLapsedOnLastAttempt }) as JobRow[];
      const rows = this.#sql.claim.all(values) as JobRow[];
      return {
        claimed: rows.map((row) => toJobRecord(row, 'text') as ClaimedJob),
        exhausted: exhausted.map((row) => toJobRecord(row, 'text')),
      };
    });
  }

  renew(lease: JobLease, leaseExpiresAtMs: number, nowMs: number): Promise<boolean> {
    return this.unitOfWork.write(
      () => this.#sql.renew.run({ ...lease, leaseExpiresAtMs, nowMs }).changes === 1,
    );
  }

  saveData(lease: JobLease, data: RecordData, nowMs: number, tx?: SqliteDatabase): Promise<boolean> {
    return this.#fenced(tx, 'saveData', () =>
      this.#sql.saveData.run({ ...lease, data: JSON.stringify(data), nowMs }),
    );
  }

  complete(lease: JobLease, nowMs: number, tx?: SqliteDatabase): Promise<boolean> {
    return this.#fenced(tx, 'complete', () => this.#sql.complete.run({ ...lease, nowMs }));
  }

  fail(lease: JobLease, outcome: RetryOrDead): Promise<boolean> {
    return this.#fenced(undefined, 'fail', () =>
      this.#sql.fail.run({
        ...lease,
        state: outcome.state,
        runAtMs: outcome.state === 'queued' ? outcome.runAtMs : null,
        error: outcome.error,
        nowMs: outcome.nowMs,
      }),
    );
  }

  release(lease: JobLease, nowMs: number): Promise<boolean> {
    return this.#fenced(undefined, 'release', () => this.#sql.release.run({ ...lease, nowMs }));
  }

  reap(finishedBeforeMs: number, limit: number): Promise<number> {
    return this.unitOfWork.write(() => this.#sql.reap.run({ finishedBeforeMs, limit }).changes);
  }

  async nextDueAtMs(topics: readonly string[]): Promise<number | undefined> {
    const values = { topics: JSON.stringify(topics) };
    const times = [this.#sql.nextQueued.get(values), this.#sql.nextLapse.get(values)]
      .filter((row): row is { at: number } => row !== undefined)
      .map((row) => row.at);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  async stats(nowMs: number): Promise<QueueStats> {
    return toQueueStats(this.#sql.stats.all({ nowMs }) as TopicStatsRow[], nowMs);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.#sql.get.get(id) as JobRow | undefined;
    return row === undefined ? undefined : toJobRecord(row, 'text');
  }

  transaction<T>(work: (tx: SqliteDatabase) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  async subscribe(handlers: SubscribeHandlers): Promise<QueueSubscription> {
    const listener: WakeListener = (topic) => handlers.wake(topic);
    const listeners = listenersOf(this.db, this.tableName);
    listeners.add(listener);
    return {
      close: async () => {
        listeners.delete(listener);
      },
    };
  }

  /** A fenced write: inside `tx` (whose write lock is held already), or alone under the lock. */
  #fenced(tx: SqliteDatabase | undefined, what: string, run: () => { changes: number }): Promise<boolean> {
    if (tx === undefined) return this.unitOfWork.write(() => run().changes === 1);
    this.#checkTransaction(tx, what);
    return Promise.resolve(run().changes === 1);
  }

  #checkTransaction(tx: SqliteDatabase, what: string): void {
    if (tx !== this.db) {
      throw new TypeError(
        `${what}(tx) got a different database connection than the queue's: pass the transaction of the queue's unit of work`,
      );
    }
    if (!tx.inTransaction) {
      throw new TypeError(
        `${what}(tx) must run inside a transaction: use queue.transaction(tx => …) or your unit of work's`,
      );
    }
  }
}

export function createSqliteJobQueue(options: SqliteJobQueueOptions): SqliteJobQueue {
  return new SqliteJobQueue(options);
}
