// `retrysafe/operations/postgres`: 202 operations shared by many processes. `create` writes the
// operation and its job in your transaction. `waitFor` re-reads on this process's own changes at
// once and polls every `waitPollMs` (default 500 ms) for other processes' — chosen over LISTEN so
// a store holds no connection of its own; a wait costs one indexed read per poll.
import type { JobQueue } from '../effects/jobs/types.js';
import type { Migration } from '../stores/migrations.js';
import {
  type PgClientLike,
  type PgPoolLike,
  type PgQueryResultLike,
  type PostgresUnitOfWork,
  postgresUnitOfWork,
} from '../stores/postgres/unit-of-work.js';
import { postgresStatementName } from '../stores/postgres.js';
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
  defaultPostgresWaitPollMs,
  type OperationStoreOptions,
  type OperationStoreSettings,
  operationStoreSettings,
} from './options.js';
import { cancelOutcome, existingForCreate, jobIdTakenError } from './outcomes.js';
import { defaultPostgresOperationsTableName, postgresOperationMigrations } from './postgres/schema.js';
import { type OperationStatementName, operationStatements } from './postgres/statements.js';
import { type OperationRow, toOperation } from './rows.js';
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

export * from './postgres/schema.js';

export interface PostgresOperationsOptions<Client extends PgClientLike = PgClientLike>
  extends OperationStoreOptions {
  /** The unit of work your repositories and the outbox share, or a pool (wrapped in its unit of work). */
  database: PostgresUnitOfWork<Client> | PgPoolLike<Client>;
  /** The outbox on the same database: `create` enqueues each operation's job in it. */
  jobs: JobQueue<Client>;
  /** Named (prepared) statements. Default true; off behind PgBouncer < 1.21 in transaction mode. */
  preparedStatements?: boolean;
}

export class PostgresOperationStore<Client extends PgClientLike = PgClientLike>
  implements OperationStore<Client>
{
  readonly pool: PgPoolLike<Client>;
  readonly unitOfWork: PostgresUnitOfWork<Client>;
  readonly tableName: string;
  readonly retentionMs: number;
  readonly now: () => number;
  /** The store's migrations, registered in its unit of work; `migrate()` applies them. */
  readonly migrations: Migration<Client>[];
  readonly #jobs: JobQueue<Client>;
  readonly #settings: OperationStoreSettings;
  readonly #sql: ReturnType<typeof operationStatements>;
  readonly #names: Record<OperationStatementName, string>;
  readonly #prepared: boolean;
  readonly #wakeups: OperationWakeups;

  constructor(options: PostgresOperationsOptions<Client>) {
    if (options?.jobs === undefined)
      throw new TypeError('createPostgresOperations needs jobs: the job queue');
    this.unitOfWork = postgresUnitOfWork(options.database);
    this.pool = this.unitOfWork.pool;
    this.tableName = options.tableName ?? defaultPostgresOperationsTableName;
    this.migrations = postgresOperationMigrations<Client>(this.tableName);
    this.#settings = operationStoreSettings(options, defaultPostgresWaitPollMs);
    this.retentionMs = this.#settings.retentionMs;
    this.now = this.#settings.now;
    this.#jobs = options.jobs;
    this.unitOfWork.register(...this.migrations);
    this.#sql = operationStatements(this.tableName);
    this.#names = Object.fromEntries(
      Object.keys(this.#sql).map((name) => [name, postgresStatementName(this.tableName, `ops_${name}`)]),
    ) as Record<OperationStatementName, string>;
    this.#prepared = options.preparedStatements ?? true;
    this.#wakeups = wakeupsOf(this.pool, this.tableName);
  }

  /** Applies the store's missing migrations: one transaction under an advisory lock. */
  async migrate(): Promise<void> {
    await this.unitOfWork.migrate(this.migrations);
  }

  async create<Payload>(tx: Client, input: CreateOperationInput<Payload>): Promise<Operation> {
    const operation = normalizeCreate(input);
    const inserted = await this.#query(tx, 'insert', [
      operation.id,
      operation.scope,
      operation.kind,
      operation.jobId,
      this.now(),
    ]);
    const row = inserted.rows[0] as OperationRow | undefined;
    if (row === undefined) {
      const existing = await this.#query(tx, 'getById', [operation.id]);
      return existingForCreate(
        existing.rows[0] === undefined ? undefined : toOperation(existing.rows[0] as OperationRow),
        operation.id,
        operation.scope,
      );
    }
    const job = await this.#jobs.enqueue(tx, { id: operation.jobId, ...operation.job });
    // Throwing rolls the operation back with the caller's transaction.
    if (!job.created) throw jobIdTakenError(operation.id, operation.jobId);
    return toOperation(row);
  }

  async get(scope: string, id: string): Promise<Operation | undefined> {
    return this.#one(await this.#query(this.pool, 'get', [id, scope]));
  }

  async getById(id: string): Promise<Operation | undefined> {
    return this.#one(await this.#query(this.pool, 'getById', [id]));
  }

  async list(scope: string, options: ListOperationsOptions = {}): Promise<OperationPage> {
    const limit = normalizeLimit(options.limit);
    // One more than the page: whether a next page exists, without a count.
    const result =
      options.cursor === undefined
        ? await this.#query(this.pool, 'listFirst', [scope, limit + 1])
        : await (() => {
            const after = decodeCursor(options.cursor);
            return this.#query(this.pool, 'listAfter', [scope, limit + 1, after.createdAtMs, after.id]);
          })();
    const rows = result.rows as OperationRow[];
    const operations = rows.slice(0, limit).map(toOperation);
    const last = operations.at(-1);
    return rows.length > limit && last !== undefined
      ? { operations, nextCursor: encodeCursor(last) }
      : { operations };
  }

  start(id: string, tx?: Client): Promise<TransitionOutcome> {
    return this.#transition(tx, 'start', id, []);
  }

  progress(id: string, progress: OperationProgress, tx?: Client): Promise<TransitionOutcome> {
    const { percentComplete, processed, total } = normalizeProgress(progress);
    return this.#transition(tx, 'progress', id, [percentComplete, processed, total]);
  }

  succeed(id: string, resourceLocation: string, tx?: Client): Promise<TransitionOutcome> {
    return this.#transition(tx, 'succeed', id, [normalizeResourceLocation(resourceLocation)]);
  }

  fail(id: string, error: OperationError, tx?: Client): Promise<TransitionOutcome> {
    const { code, message } = normalizeError(error);
    return this.#transition(tx, 'fail', id, [code, message]);
  }

  confirmCanceled(id: string, tx?: Client): Promise<TransitionOutcome> {
    return this.#transition(tx, 'confirmCanceled', id, []);
  }

  async cancel(scope: string, id: string): Promise<CancelOutcome> {
    const changed = this.#one(await this.#query(this.pool, 'cancel', [id, this.now(), scope]));
    if (changed !== undefined) this.#wakeups.notify(id);
    return cancelOutcome(changed, changed === undefined ? await this.get(scope, id) : undefined);
  }

  async reap(nowMs: number, limit: number): Promise<number> {
    const result = await this.#query(this.pool, 'reap', [nowMs - this.retentionMs, checkReapLimit(limit)]);
    return result.rowCount ?? 0;
  }

  waitFor(scope: string, id: string, options: WaitForOptions): Promise<Operation | undefined> {
    return waitUntilTerminal({
      id,
      read: () => this.get(scope, id),
      wakeups: this.#wakeups,
      timeoutMs: options.timeoutMs,
      maxWaitMs: this.#settings.maxWaitMs,
      pollMs: this.#settings.waitPollMs,
      signal: options.signal,
    });
  }

  transaction<T>(work: (tx: Client) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  /** One conditional UPDATE, in `tx` or on the pool; refused: the row as found (in `tx` when given). */
  async #transition(
    tx: Client | undefined,
    statement: OperationStatementName,
    id: string,
    values: unknown[],
  ): Promise<TransitionOutcome> {
    const on = tx ?? this.pool;
    const changed = this.#one(await this.#query(on, statement, [id, this.now(), ...values]));
    if (changed !== undefined) {
      // In `tx` a waiter may read before the commit; it then finds the change on its next poll.
      this.#wakeups.notify(id);
      return { applied: true, operation: changed };
    }
    return { applied: false, operation: this.#one(await this.#query(on, 'getById', [id])) };
  }

  #one(result: PgQueryResultLike): Operation | undefined {
    const row = result.rows[0] as OperationRow | undefined;
    return row === undefined ? undefined : toOperation(row);
  }

  #query(
    on: PgPoolLike<Client> | Client,
    statement: OperationStatementName,
    values: unknown[],
  ): Promise<PgQueryResultLike> {
    const text = this.#sql[statement];
    if (!this.#prepared) return on.query(text, values);
    return on.query({ name: this.#names[statement], text, values });
  }
}

export function createPostgresOperations<Client extends PgClientLike = PgClientLike>(
  options: PostgresOperationsOptions<Client>,
): PostgresOperationStore<Client> {
  return new PostgresOperationStore(options);
}
