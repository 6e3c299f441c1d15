// `retrysafe/operations/sqlite`: 202 operations in the same SQLite file as your business tables
// and the outbox. `create` writes the operation and its job in your transaction; transitions
// run under the unit of work's write lock; `waitFor` hears this process's changes at once.
import type { JobQueue } from '../effects/jobs/types.js';
import type { Migration } from '../stores/migrations.js';
import {
  type SqliteDatabase,
  type SqliteUnitOfWork,
  sqliteUnitOfWork,
} from '../stores/sqlite/unit-of-work.js';
import {
  decodeCursor,
  encodeCursor,
  normalizeCreate,
  normalizeError,
  normalizeLimit,
  normalizeProgress,
  normalizeResourceLocation,
} from './input.js';
import {
  checkReapLimit,
  defaultSqliteWaitPollMs,
  type OperationStoreOptions,
  type OperationStoreSettings,
  operationStoreSettings,
} from './options.js';
import { cancelOutcome, existingForCreate, jobIdTakenError } from './outcomes.js';
import { type OperationRow, toOperation } from './rows.js';
import {
  checkSqliteOperationsTableName,
  defaultSqliteOperationsTableName,
  sqliteOperationMigrations,
} from './sqlite/schema.js';
import { type OperationStatements, prepareOperationStatements } from './sqlite/statements.js';
import type {
  CancelOutcome,
  CreateOperationInput,
  ListOperationsOptions,
  Operation,
  OperationError,
  OperationPage,
  OperationProgress,
  OperationStore,
  TransitionOutcome,
  WaitForOptions,
} from './types.js';
import { type OperationWakeups, waitUntilTerminal, wakeupsOf } from './wait.js';

export * from './sqlite/schema.js';

export interface SqliteOperationsOptions extends OperationStoreOptions {
  /** The unit of work your repositories and the outbox share (recommended), a Database, or a path. */
  database: SqliteUnitOfWork | SqliteDatabase | string;
  /** The outbox on the same database: `create` enqueues each operation's job in it. */
  jobs: JobQueue<SqliteDatabase>;
}

export class SqliteOperationStore implements OperationStore<SqliteDatabase> {
  readonly db: SqliteDatabase;
  readonly unitOfWork: SqliteUnitOfWork;
  readonly tableName: string;
  readonly retentionMs: number;
  readonly now: () => number;
  /** The store's migrations, registered in its unit of work and applied by the constructor. */
  readonly migrations: Migration<SqliteDatabase>[];
  readonly #jobs: JobQueue<SqliteDatabase>;
  readonly #settings: OperationStoreSettings;
  readonly #sql: OperationStatements;
  readonly #wakeups: OperationWakeups;

  constructor(options: SqliteOperationsOptions) {
    if (options?.jobs === undefined) throw new TypeError('createSqliteOperations needs jobs: the job queue');
    this.unitOfWork = sqliteUnitOfWork(options.database);
    this.db = this.unitOfWork.db;
    this.tableName = checkSqliteOperationsTableName(options.tableName ?? defaultSqliteOperationsTableName);
    this.#settings = operationStoreSettings(options, defaultSqliteWaitPollMs);
    this.retentionMs = this.#settings.retentionMs;
    this.now = this.#settings.now;
    this.#jobs = options.jobs;
    this.migrations = sqliteOperationMigrations(this.tableName);
    this.unitOfWork.register(...this.migrations);
    this.unitOfWork.migrate(this.migrations);
    this.#sql = prepareOperationStatements(this.db, this.tableName);
    this.#wakeups = wakeupsOf(this.db, this.tableName);
  }

  async create<Payload>(tx: SqliteDatabase, input: CreateOperationInput<Payload>): Promise<Operation> {
    this.#checkTransaction(tx, 'create');
    const operation = normalizeCreate(input);
    const rows = this.#sql.insert.all({
      id: operation.id,
      scope: operation.scope,
      kind: operation.kind,
      jobId: operation.jobId,
      nowMs: this.now(),
    }) as OperationRow[];
    if (rows[0] === undefined)
      return existingForCreate(this.#byId(operation.id), operation.id, operation.scope);
    const job = await this.#jobs.enqueue(tx, { id: operation.jobId, ...operation.job });
    // Throwing rolls the operation back with the caller's transaction.
    if (!job.created) throw jobIdTakenError(operation.id, operation.jobId);
    return toOperation(rows[0]);
  }

  async get(scope: string, id: string): Promise<Operation | undefined> {
    return this.#read(scope, id);
  }

  async getById(id: string): Promise<Operation | undefined> {
    return this.#byId(id);
  }

  async list(scope: string, options: ListOperationsOptions = {}): Promise<OperationPage> {
    const limit = normalizeLimit(options.limit);
    // One more than the page: whether a next page exists, without a count.
    const rows = (
      options.cursor === undefined
        ? this.#sql.listFirst.all({ scope, limit: limit + 1 })
        : (() => {
            const after = decodeCursor(options.cursor);
            return this.#sql.listAfter.all({
              scope,
              limit: limit + 1,
              createdAtMs: after.createdAtMs,
              afterId: after.id,
            });
          })()
    ) as OperationRow[];
    const operations = rows.slice(0, limit).map(toOperation);
    const last = operations.at(-1);
    return rows.length > limit && last !== undefined
      ? { operations, nextCursor: encodeCursor(last) }
      : { operations };
  }

  start(id: string, tx?: SqliteDatabase): Promise<TransitionOutcome> {
    return this.#transition(tx, 'start', id, this.#sql.start, {});
  }

  progress(id: string, progress: OperationProgress, tx?: SqliteDatabase): Promise<TransitionOutcome> {
    const { percentComplete, processed, total } = normalizeProgress(progress);
    return this.#transition(tx, 'progress', id, this.#sql.progress, {
      percent: percentComplete,
      processed,
      total,
    });
  }

  succeed(id: string, resourceLocation: string, tx?: SqliteDatabase): Promise<TransitionOutcome> {
    const location = normalizeResourceLocation(resourceLocation);
    return this.#transition(tx, 'succeed', id, this.#sql.succeed, { location });
  }

  fail(id: string, error: OperationError, tx?: SqliteDatabase): Promise<TransitionOutcome> {
    const { code, message } = normalizeError(error);
    return this.#transition(tx, 'fail', id, this.#sql.fail, { code, message });
  }

  confirmCanceled(id: string, tx?: SqliteDatabase): Promise<TransitionOutcome> {
    return this.#transition(tx, 'confirmCanceled', id, this.#sql.confirmCanceled, {});
  }

  async cancel(scope: string, id: string): Promise<CancelOutcome> {
    const outcome = await this.unitOfWork.write(() => {
      const changed = this.#sql.cancel.all({ id, scope, nowMs: this.now() }) as OperationRow[];
      const row = changed[0];
      return cancelOutcome(row && toOperation(row), row === undefined ? this.#read(scope, id) : undefined);
    });
    if (outcome.outcome === 'canceled' || outcome.outcome === 'cancel-requested') this.#wakeups.notify(id);
    return outcome;
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    const values = { finishedBeforeMs: nowMs - this.retentionMs, limit: checkReapLimit(limit) };
    return this.unitOfWork.write(() => this.#sql.reap.run(values).changes);
  }

  waitFor(scope: string, id: string, options: WaitForOptions): Promise<Operation | undefined> {
    return waitUntilTerminal({
      id,
      // Under the write lock: a transition made inside a transaction still open on this
      // connection is read only once that transaction committed (or rolled back).
      read: () => this.unitOfWork.withWriteLock(() => this.#read(scope, id)),
      wakeups: this.#wakeups,
      timeoutMs: options.timeoutMs,
      maxWaitMs: this.#settings.maxWaitMs,
      pollMs: this.#settings.waitPollMs,
      signal: options.signal,
    });
  }

  transaction<T>(work: (tx: SqliteDatabase) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  /** One conditional UPDATE, in `tx` or alone under the write lock; refused: the row as found. */
  async #transition(
    tx: SqliteDatabase | undefined,
    what: string,
    id: string,
    statement: OperationStatements[keyof OperationStatements],
    values: Record<string, unknown>,
  ): Promise<TransitionOutcome> {
    const run = (): TransitionOutcome => {
      const rows = statement.all({ ...values, id, nowMs: this.now() }) as OperationRow[];
      if (rows[0] !== undefined) return { applied: true, operation: toOperation(rows[0]) };
      return { applied: false, operation: this.#byId(id) };
    };
    let outcome: TransitionOutcome;
    if (tx === undefined) outcome = await this.unitOfWork.write(run);
    else {
      this.#checkTransaction(tx, what);
      outcome = run();
    }
    if (outcome.applied) this.#wakeups.notify(id);
    return outcome;
  }

  #read(scope: string, id: string): Operation | undefined {
    const row = this.#sql.get.get({ id, scope }) as OperationRow | undefined;
    return row === undefined ? undefined : toOperation(row);
  }

  #byId(id: string): Operation | undefined {
    const row = this.#sql.getById.get(id) as OperationRow | undefined;
    return row === undefined ? undefined : toOperation(row);
  }

  #checkTransaction(tx: SqliteDatabase, what: string): void {
    if (tx !== this.db) {
      throw new TypeError(
        `${what}(tx) got a different database connection than the store's: pass the transaction of the store's unit of work`,
      );
    }
    if (!tx.inTransaction) {
      throw new TypeError(
        `${what}(tx) must run inside a transaction: use store.transaction(tx => …) or your unit of work's`,
      );
    }
  }
}

export function createSqliteOperations(options: SqliteOperationsOptions): SqliteOperationStore {
  return new SqliteOperationStore(options);
}
