// The operation resource behind a 202 (PROTOCOL rules 21, 22, 31, 32) and the store contract both
// SQL dialects implement: every transition is one conditional UPDATE that only moves forward.
/** `notStarted` → `running` → one terminal state; `notStarted` may also end at once. */
export type OperationStatus = 'notStarted' | 'running' | 'succeeded' | 'failed' | 'canceled';

export type TerminalStatus = 'succeeded' | 'failed' | 'canceled';

export interface OperationError {
  /** A stable, machine-readable code (e.g. `payment-declined`). */
  code: string;
  /** What happened, for the person reading it. */
  message: string;
}

export interface OperationProgress {
  /** 0–100; never goes down (a lower value reported later is ignored). */
  percentComplete?: number;
  /** Items done so far; with `total`, progress as counts. */
  processed?: number;
  total?: number;
}

/** An operation as stored. */
export interface Operation {
  id: string;
  /** Whose it is (a tenant or principal): every public read and the cancel match it. */
  scope: string;
  /** What kind of work it is (`export`, `import`…), for lists and logs. */
  kind: string;
  status: OperationStatus;
  /** A cancel was asked for while it ran; the job sees it and ends the operation as canceled. */
  cancelRequested: boolean;
  percentComplete: number | null;
  processed: number | null;
  total: number | null;
  /** Set when `failed`. */
  error: OperationError | null;
  /** Set when `succeeded`: where the result lives. */
  resourceLocation: string | null;
  /** The job that does the work. */
  jobId: string;
  /** Grows by one with every change: orders observations of the same operation. */
  version: number;
  createdAtMs: number;
  updatedAtMs: number;
  /** When it reached a terminal state; retention counts from here. */
  finishedAtMs: number | null;
}

/** What `create` needs: the operation and the job that will do its work. */
export interface CreateOperationInput<Payload = unknown> {
  /**
   * A caller-chosen id (default: a random UUID): 1–128 letters, digits and `. _ : -`. Creating an
   * id that exists already in the same scope returns the existing operation and enqueues nothing.
   */
  id?: string;
  scope: string;
  kind: string;
  /** The job runner's topic whose handler runs the work (with `runOperation`). */
  jobTopic: string;
  /** The work's input: the job's payload is `{ operationId, input: jobPayload }`. */
  jobPayload: Payload;
  /** Attempts of the job before the operation fails. Default: the runner's. */
  jobMaxAttempts?: number;
  /** Not before this time (a Date, or epoch milliseconds). Default: now. */
  runAt?: Date | number;
}

/** The payload of an operation's job. */
export interface OperationJobPayload<Input = unknown> {
  operationId: string;
  input: Input;
}

/**
 * What a transition did. `applied: false` means the store refused it (the operation was not in
 * a state it may move forward from, or is absent); `operation` is then its state as found.
 */
export interface TransitionOutcome {
  applied: boolean;
  operation: Operation | undefined;
}

/**
 * What a cancel request did: `canceled` (it had not started: canceled at once),
 * `cancel-requested` (it runs: the job ends it as canceled), `terminal` (it had ended already:
 * unchanged), `not-found` (absent in this scope).
 */
export type CancelOutcome =
  | { outcome: 'canceled' | 'cancel-requested' | 'terminal'; operation: Operation }
  | { outcome: 'not-found'; operation: undefined };

export interface ListOperationsOptions {
  /** From the previous page's `nextCursor`; absent for the first page. */
  cursor?: string;
  /** 1–100. Default 20. */
  limit?: number;
}

/** One page, newest first (by creation time, then id). */
export interface OperationPage {
  operations: Operation[];
  /** Absent on the last page. */
  nextCursor?: string;
}

export interface WaitForOptions {
  /** The longest wait; capped by the store's `maxWaitMs`. */
  timeoutMs: number;
  /** Ends the wait early (the client went away): resolves with the state as it is. */
  signal?: AbortSignal;
}

/**
 * The operations table of one database. `create` runs in the caller's transaction; the job-side
 * transitions take an optional `tx` so they can commit with the job's own writes.
 */
export interface OperationStore<Tx> {
  readonly tableName: string;
  readonly retentionMs: number;
  readonly now: () => number;
  /** Inserts the operation and enqueues its job, both inside `tx`: they commit or roll back together. */
  create<Payload>(tx: Tx, input: CreateOperationInput<Payload>): Promise<Operation>;
  /** Undefined when absent or another scope's. */
  get(scope: string, id: string): Promise<Operation | undefined>;
  list(scope: string, options?: ListOperationsOptions): Promise<OperationPage>;
  /** notStarted → running. */
  start(id: string, tx?: Tx): Promise<TransitionOutcome>;
  /** While running: records progress (percent never goes down). */
  progress(id: string, progress: OperationProgress, tx?: Tx): Promise<TransitionOutcome>;
  /** notStarted or running → succeeded, with where the result lives. */
  succeed(id: string, resourceLocation: string, tx?: Tx): Promise<TransitionOutcome>;
  /** notStarted or running → failed, with its error. */
  fail(id: string, error: OperationError, tx?: Tx): Promise<TransitionOutcome>;
  /** The job's answer to a cancel request: running (with cancelRequested) → canceled. */
  confirmCanceled(id: string, tx?: Tx): Promise<TransitionOutcome>;
  /** A client's cancel request (see `CancelOutcome`). */
  cancel(scope: string, id: string): Promise<CancelOutcome>;
  /** Deletes at most `limit` operations that ended at or before `nowMs − retentionMs`. */
  reap(nowMs: number, limit: number): Promise<number>;
  /** Resolves with the operation once it is terminal, or as it is when the wait ends first. */
  waitFor(scope: string, id: string, options: WaitForOptions): Promise<Operation | undefined>;
  /** Reads by id alone, for the job side. */
  getById(id: string): Promise<Operation | undefined>;
  /** A transaction of the unit of work the store lives in. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
}
