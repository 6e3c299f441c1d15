// The outbox's dialect-free contract: what a job row is, and the few fenced primitives a SQL
// queue implements so that one runner (runner.ts) drives SQLite and PostgreSQL alike.
import type { RecordData } from '../../idempotency/store.js';

/** `queued` → `running` → `done`, or back to `queued` for a retry, or `dead` after the last attempt. */
export type JobState = 'queued' | 'running' | 'done' | 'dead';

/** What a caller asks to run later; written in the caller's transaction by `enqueue`. */
export interface EnqueueInput {
  /** Which handler runs it: 1–200 characters of letters, digits and `. _ : / -`. */
  topic: string;
  /** Any JSON value; stored as JSON text (SQLite) or jsonb (PostgreSQL). */
  payload: unknown;
  /**
   * A caller-chosen id (default: a random UUID). Enqueueing an id that exists already is a
   * no-op answering `created: false`: derive it from the request's record to enqueue once per request.
   */
  id?: string;
  /** At most one row per (topic, dedupeKey) while the row is kept (until it is reaped after retention). */
  dedupeKey?: string;
  /** Not before this time (a Date, or epoch milliseconds). Default: now. */
  runAt?: Date | number;
  /** Attempts before the job is dead. Default: the runner's `maxAttempts`. */
  maxAttempts?: number;
}

export interface EnqueueResult {
  id: string;
  /** False when the id or the (topic, dedupeKey) existed already: nothing was written. */
  created: boolean;
}

/** A job row as stored. */
export interface JobRecord {
  id: string;
  topic: string;
  payload: unknown;
  dedupeKey: string | null;
  state: JobState;
  runAtMs: number;
  /** Claims so far, the one running included; a release at shutdown takes its claim back. */
  attempts: number;
  /** Null: the runner's default applies. */
  maxAttempts: number | null;
  leaseToken: string | null;
  leaseExpiresAtMs: number | null;
  lastError: string | null;
  /** Step checkpoints (`steps.<name>`) and whatever else the job's runs saved. */
  data: RecordData;
  createdAtMs: number;
  updatedAtMs: number;
  finishedAtMs: number | null;
}

/** A job this runner holds: its row as the claim left it, with a fresh fencing token. */
export interface ClaimedJob extends JobRecord {
  state: 'running';
  leaseToken: string;
  leaseExpiresAtMs: number;
}

export interface ClaimInput {
  /** Only these topics are claimed (the runner's handlers). */
  topics: readonly string[];
  /** The most jobs this call claims. */
  limit: number;
  nowMs: number;
  leaseMs: number;
  /** Applies to rows whose `maxAttempts` is null. */
  defaultMaxAttempts: number;
}

export interface ClaimOutcome {
  claimed: ClaimedJob[];
  /**
   * Jobs whose lease lapsed on their last attempt (the worker crashed or stalled): marked dead,
   * not claimed; as the change left them, for the runner's events.
   */
  exhausted: JobRecord[];
}

/** One fenced change of a held job: it applies only while `token` still holds the lease. */
export interface JobLease {
  id: string;
  token: string;
}

export type RetryOrDead =
  | { state: 'queued'; runAtMs: number; error: string; nowMs: number }
  | { state: 'dead'; error: string; nowMs: number };

/** Counts of the jobs of one topic, as the table holds them now. */
export interface TopicStats {
  queued: number;
  running: number;
  done: number;
  dead: number;
  /** Sum of `attempts` over the rows still kept (reaped rows no longer count). */
  attempts: number;
  /** Queued rows whose `runAt` has come: how much work is waiting right now. */
  due: number;
  /** now − the earliest `runAt` of a due queued row; 0 when none is due. The relays' lag. */
  oldestDueAgeMs: number;
}

export interface QueueStats extends TopicStats {
  topics: Record<string, TopicStats>;
}

/** A running wake-up source: notifications (PostgreSQL `LISTEN`) or an in-process signal (SQLite). */
export interface QueueSubscription {
  close(): Promise<void>;
}

export interface SubscribeHandlers {
  /** A job of `topic` was committed (or may have been: call it when notifications were missed). */
  wake(topic?: string): void;
  /** The source stopped delivering (the listening connection dropped) or delivers again. */
  state?(state: 'lost' | 'restored', error?: Error): void;
}

/**
 * The outbox table of one database. `enqueue` runs in the caller's transaction; the other
 * writes are fenced by the lease token and return false when another runner took the job over.
 */
export interface JobQueue<Tx> {
  readonly tableName: string;
  /** The clock the queue stamps rows with (and the runner's default clock). */
  readonly now: () => number;
  /** Writes the job inside `tx`: a rollback drops it, a commit never loses it. */
  enqueue(tx: Tx, input: EnqueueInput): Promise<EnqueueResult>;
  /** Claims due jobs (and lapsed leases) in one bounded batch, each with a fresh fencing token. */
  claim(input: ClaimInput): Promise<ClaimOutcome>;
  /** Extends a held lease. */
  renew(lease: JobLease, leaseExpiresAtMs: number, nowMs: number): Promise<boolean>;
  /** Replaces the job's data part (its checkpoints); inside `tx` when given. */
  saveData(lease: JobLease, data: RecordData, nowMs: number, tx?: Tx): Promise<boolean>;
  /** Marks the job done; inside `tx` when given, so it commits with the handler's writes. */
  complete(lease: JobLease, nowMs: number, tx?: Tx): Promise<boolean>;
  /** Schedules a retry or marks the job dead after a failed attempt. */
  fail(lease: JobLease, outcome: RetryOrDead): Promise<boolean>;
  /** Hands a held job back as queued and due now, its attempt not counted (shutdown). */
  release(lease: JobLease, nowMs: number): Promise<boolean>;
  /** Deletes at most `limit` done/dead rows finished at or before `finishedBeforeMs`. */
  reap(finishedBeforeMs: number, limit: number): Promise<number>;
  /**
   * The earliest time one of `topics` has work: a queued row's `runAt`, or a running row's lease
   * expiry (a takeover). Undefined when there is none.
   */
  nextDueAtMs(topics: readonly string[]): Promise<number | undefined>;
  stats(nowMs: number): Promise<QueueStats>;
  /** Reads one job as stored; for tests, diagnostics and operation resources. */
  get(id: string): Promise<JobRecord | undefined>;
  /** One transaction of the unit of work the queue lives in. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Starts delivering wake-ups; resolves once the first attempt to listen settled. */
  subscribe(handlers: SubscribeHandlers): Promise<QueueSubscription>;
}
