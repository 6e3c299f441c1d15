// `retrysafe/jobs/postgres`: the outbox shared by many processes. Jobs are enqueued in your
// transaction (with a NOTIFY delivered at its commit); runners claim them with SKIP LOCKED.
import type { RecordData } from '../../idempotency/store.js';
import type { Migration } from '../../stores/migrations.js';
import {
  type PgClientLike,
  type PgPoolLike,
  type PgQueryResultLike,
  type PostgresUnitOfWork,
  postgresUnitOfWork,
} from '../../stores/postgres/unit-of-work.js';
import { postgresStatementName } from '../../stores/postgres.js';
import { checkMaxPayloadBytes, defaultMaxPayloadBytes, normalizeJob } from './enqueue-input.js';
import { leaseLapsedOnLastAttempt } from './errors.js';
import { listenForJobs, type PgListenClientLike } from './postgres/listener.js';
import {
  checkJobsChannel,
  defaultJobsChannel,
  defaultPostgresJobsTableName,
  postgresJobMigrations,
} from './postgres/schema.js';
import { type JobStatementName, jobStatements } from './postgres/statements.js';
import { type JobRow, type TopicStatsRow, toJobRecord, toQueueStats } from './rows.js';
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

export type { PgListenClientLike, PgNotificationLike } from './postgres/listener.js';
export * from './postgres/schema.js';

export interface PostgresJobQueueOptions<Client extends PgClientLike = PgClientLike> {
  /** The unit of work your repositories and the idempotency store share, or a pool (wrapped in its unit of work). */
  database: PostgresUnitOfWork<Client> | PgPoolLike<Client>;
  /** Plain or schema-qualified. Default `retrysafe_jobs`. */
  tableName?: string;
  /** The NOTIFY channel. Default: the table name with `.` as `_` (`retrysafe_jobs`). */
  channel?: string;
  /**
   * Opens the connection a runner LISTENs on. Default: a client checked out of the pool for
   * as long as the runner runs (one connection fewer for queries); pass a function returning a
   * connected `new pg.Client(…)` to keep the pool whole.
   */
  listenClient?: () => Promise<PgListenClientLike>;
  /** Named (prepared) statements, planned once per connection. Default true; off behind PgBouncer < 1.21 in transaction mode. */
  preparedStatements?: boolean;
  /** Bound on a payload's JSON text. Default 256 KiB. */
  maxPayloadBytes?: number;
  /** The clock rows are stamped with; the runner's default clock. Default `Date.now`. */
  now?: () => number;
}

export class PostgresJobQueue<Client extends PgClientLike = PgClientLike> implements JobQueue<Client> {
  readonly pool: PgPoolLike<Client>;
  readonly unitOfWork: PostgresUnitOfWork<Client>;
  readonly tableName: string;
  readonly channel: string;
  readonly now: () => number;
  readonly maxPayloadBytes: number;
  /** The queue's migrations, registered in its unit of work; `migrate()` applies them. */
  readonly migrations: Migration<Client>[];
  readonly #sql: ReturnType<typeof jobStatements>;
  readonly #names: Record<JobStatementName, string>;
  readonly #prepared: boolean;
  readonly #listenClient: () => Promise<PgListenClientLike>;

  constructor(options: PostgresJobQueueOptions<Client>) {
    this.unitOfWork = postgresUnitOfWork(options.database);
    this.pool = this.unitOfWork.pool;
    this.tableName = options.tableName ?? defaultPostgresJobsTableName;
    this.migrations = postgresJobMigrations<Client>(this.tableName);
    this.channel = checkJobsChannel(options.channel ?? defaultJobsChannel(this.tableName));
    this.now = options.now ?? Date.now;
    this.maxPayloadBytes = checkMaxPayloadBytes(options.maxPayloadBytes ?? defaultMaxPayloadBytes);
    this.unitOfWork.register(...this.migrations);
    this.#sql = jobStatements(this.tableName);
    this.#names = Object.fromEntries(
      Object.keys(this.#sql).map((name) => [name, postgresStatementName(this.tableName, `jobs_${name}`)]),
    ) as Record<JobStatementName, string>;
    this.#prepared = options.preparedStatements ?? true;
    // A pg.Pool's clients can LISTEN; a merely pool-like object's may not (then pass listenClient).
    this.#listenClient =
      options.listenClient ?? (() => this.pool.connect() as unknown as Promise<PgListenClientLike>);
  }

  /** Applies the queue's missing migrations: one transaction under an advisory lock. */
  async migrate(): Promise<void> {
    await this.unitOfWork.migrate(this.migrations);
  }

  async enqueue(tx: Client, input: EnqueueInput): Promise<EnqueueResult> {
    const job = normalizeJob(input, this.now(), this.maxPayloadBytes);
    const inserted = await this.#query(tx, 'insert', [
      job.id,
      job.topic,
      job.payloadJson,
      job.dedupeKey,
      job.runAtMs,
      job.maxAttempts,
      job.nowMs,
      this.channel,
    ]);
    if (inserted.rows.length === 1) return { id: job.id, created: true };
    const existing = await this.#query(tx, 'existingId', [job.id, job.topic, job.dedupeKey]);
    const row = existing.rows[0] as { id: string } | undefined;
    if (row === undefined) {
      // Only under REPEATABLE READ or stricter: the conflicting row committed after this transaction's snapshot.
      throw new Error(
        `enqueue of job ${job.id} conflicted with a row this transaction cannot see: enqueue under READ COMMITTED`,
      );
    }
    return { id: row.id, created: false };
  }

  async claim(input: ClaimInput): Promise<ClaimOutcome> {
    const topics = [...input.topics];
    const exhausted = await this.#query(this.pool, 'exhaust', [
      topics,
      input.nowMs,
      input.limit,
      input.defaultMaxAttempts,
      leaseLapsedOnLastAttempt,
    ]);
    const claimed = await this.#query(this.pool, 'claim', [
      topics,
      input.nowMs,
      input.limit,
      input.leaseMs,
      input.defaultMaxAttempts,
    ]);
    return {
      claimed: (claimed.rows as JobRow[]).map((row) => toJobRecord(row, 'parsed') as ClaimedJob),
      exhausted: (exhausted.rows as JobRow[]).map((row) => toJobRecord(row, 'parsed')),
    };
  }

  async renew(lease: JobLease, leaseExpiresAtMs: number, nowMs: number): Promise<boolean> {
    return this.#changed(this.pool, 'renew', [lease.id, lease.token, leaseExpiresAtMs, nowMs]);
  }

  async saveData(lease: JobLease, data: RecordData, nowMs: number, tx?: Client): Promise<boolean> {
    return this.#changed(tx ?? this.pool, 'saveData', [lease.id, lease.token, JSON.stringify(data), nowMs]);
  }

  async complete(lease: JobLease, nowMs: number, tx?: Client): Promise<boolean> {
    return this.#changed(tx ?? this.pool, 'complete', [lease.id, lease.token, nowMs]);
  }

  async fail(lease: JobLease, outcome: RetryOrDead): Promise<boolean> {
    return this.#changed(this.pool, 'fail', [
      lease.id,
      lease.token,
      outcome.state,
      outcome.state === 'queued' ? outcome.runAtMs : null,
      outcome.error,
      outcome.nowMs,
    ]);
  }

  async release(lease: JobLease, nowMs: number): Promise<boolean> {
    return this.#changed(this.pool, 'release', [lease.id, lease.token, nowMs]);
  }

  async reap(finishedBeforeMs: number, limit: number): Promise<number> {
    const result = await this.#query(this.pool, 'reap', [finishedBeforeMs, limit]);
    return result.rowCount ?? 0;
  }

  async nextDueAtMs(topics: readonly string[]): Promise<number | undefined> {
    const result = await this.#query(this.pool, 'nextDue', [[...topics]]);
    const row = result.rows[0] as { queued: string | null; lapse: string | null } | undefined;
    const times = [row?.queued, row?.lapse].filter((at) => at !== null && at !== undefined).map(Number);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  async stats(nowMs: number): Promise<QueueStats> {
    const result = await this.#query(this.pool, 'stats', [nowMs]);
    return toQueueStats(result.rows as TopicStatsRow[], nowMs);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const result = await this.#query(this.pool, 'get', [id]);
    const row = result.rows[0] as JobRow | undefined;
    return row === undefined ? undefined : toJobRecord(row, 'parsed');
  }

  transaction<T>(work: (tx: Client) => Promise<T>): Promise<T> {
    return this.unitOfWork.transaction(work);
  }

  subscribe(handlers: SubscribeHandlers): Promise<QueueSubscription> {
    return listenForJobs({ connect: this.#listenClient, channel: this.channel, handlers });
  }

  async #changed(on: PgPoolLike<Client> | Client, statement: JobStatementName, values: unknown[]) {
    return (await this.#query(on, statement, values)).rowCount === 1;
  }

  #query(
    on: PgPoolLike<Client> | Client,
    statement: JobStatementName,
    values: unknown[],
  ): Promise<PgQueryResultLike> {
    const text = this.#sql[statement];
    if (!this.#prepared) return on.query(text, values);
    return on.query({ name: this.#names[statement], text, values });
  }
}

export function createPostgresJobQueue<Client extends PgClientLike = PgClientLike>(
  options: PostgresJobQueueOptions<Client>,
): PostgresJobQueue<Client> {
  return new PostgresJobQueue(options);
}
