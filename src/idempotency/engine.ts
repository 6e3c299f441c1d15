// The idempotency engine: decides, for one keyed request, whether to execute, replay,
// refuse as in use, or refuse as a mismatched reuse — and makes the execution exactly-once.
// It knows no framework; adapters hand it a neutral request and get back a decision.
import { createHash, randomUUID } from 'node:crypto';
import { setImmediate as afterThisTurn } from 'node:timers';
import { type Checkpoints, type StepCall, StepRunner } from '../effects/steps.js';
import { ProblemError } from '../http/problem.js';
import {
  type AttemptWrites,
  IdempotencyKeyInUseError,
  IdempotencyKeyReuseError,
  IdempotencyLeaseLostError,
  IdempotencyScopeFullError,
  IdempotencyStoreUnavailableError,
  StoredResponseTooLargeError,
} from './errors.js';
import { fingerprintRequest, isLegacyFingerprint } from './fingerprint.js';
import type { IdempotencyStore, RecordData, StoredResponse } from './store.js';

export const defaultLeaseMs = 60_000;
export const defaultRetentionMs = 24 * 60 * 60 * 1000;
export const defaultInUseRetryAfterMs = 1_000;
export const defaultReapBatchSize = 500;
/**
 * A suggested bound on the records one scope (tenant) may hold at once; the engine applies no
 * bound unless `maxRecordsPerScope` is given, because checking it costs every claim (measured:
 * Redis replays about 10% slower, since the claim becomes a script). The reference service
 * sets this one. 100,000 is more than one new key a second for
 * the whole default retention of 24 h, far beyond what one honest client makes, yet it bounds
 * what one tenant's flood can take (measured: 26 KB per record on SQLite, so about 2.6 GB)
 * before it gets 429 instead of filling the store for every other tenant.
 */
export const suggestedMaxRecordsPerScope = 100_000;
/**
 * The largest response body stored for replay: 1 MiB. Keyed writes answer with a
 * representation of what they created, usually a few KB; a larger answer is refused (500,
 * writes rolled back) rather than stored in part or not stored while its writes commit.
 */
export const defaultMaxStoredResponseBytes = 1024 * 1024;
export const defaultReapIntervalMs = 60_000;
/**
 * How long one reaper run may keep deleting before it stops for this round. A batch of 500 takes
 * a few milliseconds (10,000 records in about 25 ms on SQLite), so 5 s clears hundreds of
 * thousands of expired records per run, far above any write rate one process takes; and it is
 * short next to the minute between runs, yielding to requests between every batch.
 */
export const defaultReapMaxRunMs = 5_000;
/** A retention of milliseconds (tests) must not make the reaper spin. */
const minReapIntervalMs = 1_000;

/** What one reaper run did: the figures to export as metrics. */
export interface ReapRun {
  /** Records deleted by this run. */
  deleted: number;
  /** Batches asked of the store (the last one is short when the run caught up). */
  batches: number;
  /** On the engine's clock (`now`). */
  startedAtMs: number;
  durationMs: number;
  /** True when the last batch came back short: no expired record was left. False: `maxRunMs` ran out first. */
  caughtUp: boolean;
}

/** The reaper's figures since the engine was made; `lastRun` is undefined before the first run. */
export interface ReaperStats {
  runs: number;
  deletedTotal: number;
  /** Runs that ended on `maxRunMs` with expired records left: a backlog that keeps growing if this climbs. */
  runsBehind: number;
  lastRun: ReapRun | undefined;
}

export interface ReapOptions {
  /** Records per store call (default 500). */
  batchSize?: number;
  /** Stop starting new batches after this long (default `defaultReapMaxRunMs`). */
  maxRunMs?: number;
}

export type TransactionRunner<Tx> = <T>(work: (tx: Tx) => Promise<T>) => Promise<T>;

export interface IdempotencyEngineOptions<Tx> {
  store: IdempotencyStore<Tx>;
  /** How long a claim holds its key before a retry may take it over. */
  leaseMs?: number;
  /** How long a record (and so its replay) is kept. */
  retentionMs?: number;
  /** Upper bound of the Retry-After sent with 409 in_use. */
  inUseRetryAfterMs?: number;
  /**
   * For stores without their own transaction (memory, Redis): runs the handler's writes in
   * your database's transaction. Completion then follows the commit, so the guarantee is
   * at-least-once per lease rather than exactly-once.
   */
  transaction?: TransactionRunner<Tx>;
  /**
   * Most records one scope may hold; a request with a new key beyond it is 429 with
   * Retry-After. Default `Infinity` (no bound); `suggestedMaxRecordsPerScope` is 100,000.
   */
  maxRecordsPerScope?: number;
  /** Largest response body stored for replay (default 1 MiB); larger answers are a 500, rolled back. */
  maxStoredResponseBytes?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

interface NormalisedOptions<Tx> {
  store: IdempotencyStore<Tx>;
  leaseMs: number;
  retentionMs: number;
  inUseRetryAfterMs: number;
  maxRecordsPerScope: number;
  maxStoredResponseBytes: number;
  transaction: TransactionRunner<Tx> | undefined;
  now: () => number;
}

/** The neutral request shape adapters build. */
export interface IdempotentRequest {
  /** Who is calling (tenant or principal): keys never cross scopes. */
  scope: string;
  method: string;
  /** The route pattern, e.g. `/orders`: part of the record's scope. */
  route: string;
  /** The concrete path, e.g. `/orders`: part of the fingerprint. */
  path: string;
  key: string;
  /** The parsed body (JSON or form, already decoded); ignored when `fingerprint` is given. */
  body: unknown;
  /** A fingerprint made by the caller (the lifecycle fingerprints the raw bytes). */
  fingerprint?: string;
  /**
   * The first-wave fingerprint of this request, when it can be made: a record written before
   * fingerprints were versioned still matches it, so a retry across an upgrade replays.
   */
  legacyFingerprint?: () => string | undefined;
}

/**
 * What the engine promises with its store. `exactly-once`: the records share the business
 * transaction, so a run either commits with its stored response or leaves nothing. With
 * records elsewhere (Redis, memory) a run whose lease lapsed may commit its writes after a
 * takeover ran them again: `at-least-once-per-lease`, so writes must be keyed on `idFor`.
 */
export type DeliveryGuarantee = 'exactly-once' | 'at-least-once-per-lease';

export type IdempotencyOutcome = 'executed' | 'replayed' | 'in_use' | 'mismatch';

export type BeginResult<Tx> =
  | { outcome: 'executed'; execution: Execution<Tx> }
  | { outcome: 'replayed'; recordId: string; response: StoredResponse }
  | { outcome: 'in_use'; error: IdempotencyKeyInUseError }
  | { outcome: 'mismatch'; error: IdempotencyKeyReuseError };

export function createIdempotencyEngine<Tx = never>(
  options: IdempotencyEngineOptions<Tx>,
): IdempotencyEngine<Tx> {
  return new IdempotencyEngine(options);
}

export class IdempotencyEngine<Tx = never> {
  readonly options: Readonly<NormalisedOptions<Tx>>;

  constructor(options: IdempotencyEngineOptions<Tx>) {
    this.options = normalise(options);
  }

  get store(): IdempotencyStore<Tx> {
    return this.options.store;
  }

  /** The one answer to "do records share the business transaction?". */
  get guarantee(): DeliveryGuarantee {
    return this.options.store.transaction === undefined ? 'at-least-once-per-lease' : 'exactly-once';
  }

  /**
   * Runs `work` in the business transaction: the store's own (SQL stores) or the
   * `transaction` option's, or directly when there is neither.
   */
  runTransaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return businessTransaction(this.options)(work);
  }

  /** Writes without a key: one transaction, rolled back when the answer `rollsBack`. */
  commitWithoutKey(work: (tx: Tx) => Promise<StoredResponse> | StoredResponse): Promise<StoredResponse> {
    return runRollingBack((inner) => this.runTransaction(inner), work, undefined);
  }

  /** Scope + method + route + key: the identity of a record (PROTOCOL.md rule 7). */
  scopeKey(request: Pick<IdempotentRequest, 'scope' | 'method' | 'route' | 'key'>): string {
    return JSON.stringify([request.scope, request.method.toUpperCase(), request.route, request.key]);
  }

  async begin(request: IdempotentRequest): Promise<BeginResult<Tx>> {
    const { store, leaseMs, retentionMs, inUseRetryAfterMs, maxRecordsPerScope, now } = this.options;
    const scopeKey = this.scopeKey(request);
    let fingerprint = request.fingerprint ?? fingerprintRequest(request);
    const token = randomUUID();
    const nowMs = now();
    const claim = (withFingerprint: string) =>
      store
        .claim({
          scopeKey,
          fingerprint: withFingerprint,
          token,
          recordId: randomUUID(),
          nowMs,
          leaseExpiresAtMs: nowMs + leaseMs,
          expiresAtMs: nowMs + retentionMs,
          ...(Number.isFinite(maxRecordsPerScope)
            ? { scopeLimit: { scope: request.scope, maxRecords: maxRecordsPerScope } }
            : {}),
        })
        .catch((error: unknown) => {
          throw new IdempotencyStoreUnavailableError(error);
        });
    let result = await claim(fingerprint);
    if (!result.claimed && result.scopeFull) throw this.#scopeFull();
    if (!result.claimed && this.#matchesLegacy(result.record.fingerprint, fingerprint, request)) {
      // A record from before versioned fingerprints, for this same request: adopt its
      // fingerprint, and claim again so a lapsed lease can still be taken over.
      fingerprint = result.record.fingerprint;
      if (result.record.state !== 'completed') result = await claim(fingerprint);
      if (!result.claimed && result.scopeFull) throw this.#scopeFull();
    }
    if (result.claimed) {
      return {
        outcome: 'executed',
        execution: new Execution(this.options, {
          scopeKey,
          token,
          recordId: result.recordId,
          key: request.key,
          // What earlier runs of this key checkpointed (on a takeover); `{}` for a new record.
          data: result.data ?? {},
        }),
      };
    }
    const record = result.record!;
    if (record.fingerprint !== fingerprint)
      return { outcome: 'mismatch', error: new IdempotencyKeyReuseError() };
    if (record.state === 'completed') {
      return { outcome: 'replayed', recordId: record.recordId, response: record.response };
    }
    // A released record with this fingerprint is taken over by the claim, so only a race
    // (another request took it first) shows one here: that request holds it now.
    const leaseExpiresAtMs = record.state === 'claimed' ? record.leaseExpiresAtMs : nowMs;
    const waitMs = Math.min(Math.max(leaseExpiresAtMs - nowMs, 0), inUseRetryAfterMs);
    return { outcome: 'in_use', error: new IdempotencyKeyInUseError(Math.max(1, Math.ceil(waitMs / 1000))) };
  }

  /** Records free up as they expire and the reaper removes them: retry after one reaper interval. */
  #scopeFull(): IdempotencyScopeFullError {
    const retryAfterMs = Math.max(
      minReapIntervalMs,
      Math.min(defaultReapIntervalMs, this.options.retentionMs),
    );
    return new IdempotencyScopeFullError(this.options.maxRecordsPerScope, Math.ceil(retryAfterMs / 1000));
  }

  #matchesLegacy(stored: string, current: string, request: IdempotentRequest): boolean {
    if (stored === current || !isLegacyFingerprint(stored) || isLegacyFingerprint(current)) return false;
    return request.legacyFingerprint?.() === stored;
  }

  readonly #reaperStats: ReaperStats = { runs: 0, deletedTotal: 0, runsBehind: 0, lastRun: undefined };

  /** The reaper's figures so far (a copy), for a metric of how far behind it is. */
  get reaperStats(): ReaperStats {
    const { lastRun } = this.#reaperStats;
    return { ...this.#reaperStats, lastRun: lastRun === undefined ? undefined : { ...lastRun } };
  }

  /**
   * Deletes expired records in batches of `batchSize` until a batch comes back short (caught
   * up), bounded by time rather than by a count: no batch starts once `maxRunMs` has passed on
   * the engine's clock. Yields to the event loop between batches, so requests keep flowing.
   */
  async reap(options: ReapOptions = {}): Promise<ReapRun> {
    const batchSize = options.batchSize ?? defaultReapBatchSize;
    const maxRunMs = options.maxRunMs ?? defaultReapMaxRunMs;
    checkPositive({ batchSize, maxRunMs });
    const { store, now } = this.options;
    const startedAtMs = now();
    let deleted = 0;
    let batches = 0;
    let caughtUp = false;
    for (;;) {
      const batch = await store.reap(now(), batchSize);
      batches++;
      deleted += batch;
      if (batch < batchSize) {
        caughtUp = true;
        break;
      }
      if (now() - startedAtMs >= maxRunMs) break;
      await new Promise<void>((resolve) => afterThisTurn(resolve));
    }
    const run: ReapRun = { deleted, batches, startedAtMs, durationMs: now() - startedAtMs, caughtUp };
    const stats = this.#reaperStats;
    stats.runs++;
    stats.deletedTotal += deleted;
    if (!caughtUp) stats.runsBehind++;
    stats.lastRun = run;
    return run;
  }

  /**
   * Runs `reap` every `intervalMs` (default: a minute, or the retention if shorter but at
   * least a second, so a stored response never outlives its retention by much more) until the
   * returned function is called; a run that ends behind (`maxRunMs` ran out) is followed by
   * the next one a second later instead. Runs never overlap. `onReap` gets every run's figures.
   * Never keeps the process alive.
   */
  startReaper(
    options: ReapOptions & {
      intervalMs?: number;
      onReap?: (run: ReapRun) => void;
      onError?: (error: unknown) => void;
    } = {},
  ): () => void {
    const intervalMs =
      options.intervalMs ??
      Math.max(minReapIntervalMs, Math.min(defaultReapIntervalMs, this.options.retentionMs));
    const reapOptions: ReapOptions = {
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.maxRunMs === undefined ? {} : { maxRunMs: options.maxRunMs }),
    };
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = (delayMs: number) => {
      if (stopped) return;
      timer = setTimeout(run, delayMs);
      timer.unref();
    };
    const run = () => {
      this.reap(reapOptions).then(
        (result) => {
          options.onReap?.(result);
          schedule(result.caughtUp ? intervalMs : Math.min(intervalMs, minReapIntervalMs));
        },
        (error: unknown) => {
          options.onError?.(error);
          schedule(intervalMs);
        },
      );
    };
    schedule(intervalMs);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }
}

/**
 * The settle rule, written once: an answer with status 5xx rolls its writes back and frees
 * the key so a retry executes again; anything below 500 is an answer, stored and replayed.
 */
export function rollsBack(response: { status: number }): boolean {
  return response.status >= 500;
}

/**
 * The one answer to "where do the handler's writes run?": the store's own transaction (SQL
 * stores, shared with the records), else the `transaction` option's (records elsewhere), else
 * none (memory, no business database).
 */
function businessTransaction<Tx>(options: NormalisedOptions<Tx>): TransactionRunner<Tx> {
  const { store, transaction } = options;
  if (store.transaction !== undefined) return (work) => store.transaction!(work);
  return transaction ?? ((work) => work(undefined as Tx));
}

/** Thrown inside a transaction to roll back the writes of an answer that `rollsBack`. */
class RollbackFor5xx extends Error {
  constructor(readonly response: StoredResponse) {
    super('rollback: handler answered 5xx');
  }
}

/**
 * Runs `work` in `run` (a transaction) and returns its answer; an answer that `rollsBack` is
 * thrown through the transaction so its writes are undone, then returned all the same.
 * `inside` runs last in the transaction (the fenced completion of a keyed run).
 */
async function runRollingBack<Tx>(
  run: TransactionRunner<Tx>,
  work: (tx: Tx) => Promise<StoredResponse> | StoredResponse,
  maxStoredBytes: number | undefined,
  inside?: (response: StoredResponse, tx: Tx) => Promise<void>,
): Promise<StoredResponse> {
  try {
    return await run(async (tx) => {
      const produced = await work(tx);
      if (rollsBack(produced)) throw new RollbackFor5xx(produced);
      // Before the commit, so an answer that cannot be stored leaves no writes behind.
      if (maxStoredBytes !== undefined) checkStorable(produced, maxStoredBytes);
      await inside?.(produced, tx);
      return produced;
    });
  } catch (error) {
    if (error instanceof RollbackFor5xx) return error.response;
    throw error;
  }
}

interface ExecutionIdentity {
  scopeKey: string;
  token: string;
  recordId: string;
  key: string;
  data: RecordData;
}

/** Steps need a store that checkpoints (`saveData`); every bundled store has it. */
export class StepsUnsupportedError extends Error {
  override name = 'StepsUnsupportedError';
  constructor() {
    super(
      'step() and call() need an idempotency store with saveData (checkpoints); every bundled store has it — add saveData to this store, or write without steps',
    );
  }
}

/**
 * One claimed execution. Settle it exactly once: `commit` (writes + stored response in one
 * transaction), `complete` (store a response produced without writes), or `release`. Before
 * that, its named steps (`step`, `call`) checkpoint into the record's data part, so a retry
 * with the same key (a takeover, a restart) resumes after the last finished one.
 */
export class Execution<Tx> implements Checkpoints<Tx> {
  readonly scopeKey: string;
  readonly token: string;
  /** Stable across lease takeovers: derive downstream idempotency keys from it (`<recordId>:<step>`). */
  readonly recordId: string;
  readonly key: string;
  /** The record's data part as the claim found it: what earlier runs of this key checkpointed. */
  readonly data: RecordData;
  #settled = false;
  #steps: StepRunner<Tx> | undefined;

  constructor(
    private readonly options: NormalisedOptions<Tx>,
    identity: ExecutionIdentity,
  ) {
    this.scopeKey = identity.scopeKey;
    this.token = identity.token;
    this.recordId = identity.recordId;
    this.key = identity.key;
    this.data = identity.data;
  }

  /** Derived keys of steps are `<recordId>:<name>`. */
  get keyPrefix(): string {
    return this.recordId;
  }

  /** Records in the store's transaction: a step's writes and its checkpoint commit together. */
  get sharesTransaction(): boolean {
    return this.options.store.transaction !== undefined;
  }

  /**
   * Runs `work` in one transaction with its checkpoint (see `StepRunner.step`), unless an
   * earlier run of this key finished `name`: then answers that run's saved result (JSON form).
   */
  step<T>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T> {
    return this.#runner().step(name, work);
  }

  /**
   * Makes an external call outside any transaction with the derived key `<recordId>:<name>` and
   * checkpoints its result (see `StepRunner.call`), unless an earlier run finished `name`.
   */
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T> {
    return this.#runner().call(name, work);
  }

  /** Whether the record holds a finished step (of this run or an earlier one): then not everything rolls back. */
  get checkpointed(): boolean {
    return holdsFinishedSteps(this.#steps?.data ?? this.data);
  }

  /** Checkpoints: the record's data part, fenced by this claim's token (inside `tx` when given). */
  async save(data: RecordData, tx?: Tx): Promise<boolean> {
    const { store } = this.options;
    if (store.saveData === undefined) throw new StepsUnsupportedError();
    let saved: boolean;
    try {
      saved = await store.saveData({ scopeKey: this.scopeKey, token: this.token, data }, tx);
    } catch (error) {
      // Without `tx` the checkpoint follows work that already took effect (a call, or a step's
      // own commit): it may be kept. Inside `tx` the step's writes roll back with it.
      throw new IdempotencyStoreUnavailableError(error, tx === undefined ? 'may-be-kept' : 'rolled-back');
    }
    // Another run holds the key now (or completed it): this one can no longer settle anything.
    if (!saved) this.#settled = true;
    return saved;
  }

  /** The business transaction `commit` runs in, for a step's writes. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return businessTransaction(this.options)(work);
  }

  lost(writes: AttemptWrites): IdempotencyLeaseLostError {
    return new IdempotencyLeaseLostError(writes);
  }

  /** One runner per execution, made at the first step: refused before any work runs. */
  #runner(): StepRunner<Tx> {
    this.#assertOpen();
    if (this.options.store.saveData === undefined) throw new StepsUnsupportedError();
    this.#steps ??= new StepRunner<Tx>(this, this.options.now);
    return this.#steps;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /**
   * A stable id for the resource `name` this execution creates (`idFor('order')`): derived
   * from the record id, so every run of one key — a retry after a crash, a takeover after a
   * lapsed lease — creates the same row, and a unique index turns a repeat into a no-op.
   */
  idFor(name: string): string {
    return derivedId(this.recordId, name);
  }

  /**
   * Runs the handler's writes and stores their response atomically. A response that
   * `rollsBack`, or a throw, rolls the writes back and releases the claim so a retry executes
   * again. A deliberate 4xx `ProblemError` is rethrown with the claim still open, so the
   * caller stores its answer with `complete` (the lifecycle does).
   */
  async commit(work: (tx: Tx) => Promise<StoredResponse> | StoredResponse): Promise<StoredResponse> {
    this.#assertOpen();
    const inStore = this.sharesTransaction;
    const run = businessTransaction(this.options);
    let workStarted = false;
    let response: StoredResponse;
    try {
      response = await runRollingBack(
        run,
        (tx) => {
          workStarted = true;
          return work(tx);
        },
        this.options.maxStoredResponseBytes,
        // With records in the store, the fenced completion commits with the writes.
        inStore
          ? async (produced, tx) => {
              if (!(await this.#completeIn(produced, tx))) throw new IdempotencyLeaseLostError('rolled-back');
            }
          : undefined,
      );
    } catch (error) {
      if (error instanceof IdempotencyLeaseLostError) {
        this.#settled = true;
        throw error;
      }
      if (error instanceof ProblemError && error.status < 500) throw error;
      await this.release();
      if (inStore && !workStarted && !(error instanceof ProblemError)) {
        throw new IdempotencyStoreUnavailableError(error);
      }
      throw error;
    }
    if (rollsBack(response)) {
      await this.release();
      return response;
    }
    if (inStore) this.#settled = true;
    else await this.complete(response);
    return response;
  }

  /** Stores a response that was produced without transactional writes (e.g. a 4xx thrown by the handler). */
  async complete(response: StoredResponse): Promise<void> {
    this.#assertOpen();
    if (rollsBack(response)) return this.release();
    try {
      checkStorable(response, this.options.maxStoredResponseBytes);
    } catch (error) {
      await this.release();
      throw error;
    }
    const stored = await this.#completeIn(response, undefined);
    this.#settled = true;
    if (!stored) throw new IdempotencyLeaseLostError(this.#writes());
  }

  /**
   * Lets go of the claim so the next request with this key executes at once, under the same
   * record id (a slower run may still commit under it). Failures are left to the lease.
   */
  async release(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    try {
      await this.options.store.release(this.scopeKey, this.token);
    } catch {
      // The store is unreachable: the lease expires by itself, after which a retry executes.
    }
  }

  async #completeIn(response: StoredResponse, tx: Tx | undefined): Promise<boolean> {
    const input = {
      scopeKey: this.scopeKey,
      token: this.token,
      response,
      expiresAtMs: this.options.now() + this.options.retentionMs,
    };
    try {
      return await this.options.store.complete(input, tx);
    } catch (error) {
      throw new IdempotencyStoreUnavailableError(error, this.#writes());
    }
  }

  /**
   * What a failure after the work ran can say about its writes: with records in the store's
   * transaction they commit only with the fenced completion; elsewhere they commit first.
   */
  #writes(): AttemptWrites {
    return this.options.store.transaction === undefined ? 'may-be-kept' : 'rolled-back';
  }

  #assertOpen(): void {
    if (this.#settled) throw new Error(`Execution for key ${this.key} was already settled`);
  }
}

/**
 * Whether a data part records a finished step: the writes of such a run are not all undone by
 * a later failure (each step committed on its own), so no answer may say "nothing was saved".
 */
export function holdsFinishedSteps(data: RecordData): boolean {
  const steps = data.steps;
  return steps !== null && typeof steps === 'object' && Object.keys(steps).length > 0;
}

/** A UUID (RFC 9562 version 8: name-based, sha256) for `<recordId>:<name>`. */
export function derivedId(recordId: string, name: string): string {
  const hex = createHash('sha256').update(`${recordId}:${name}`).digest('hex');
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function normalise<Tx>(options: IdempotencyEngineOptions<Tx>): NormalisedOptions<Tx> {
  const leaseMs = options.leaseMs ?? defaultLeaseMs;
  const retentionMs = options.retentionMs ?? defaultRetentionMs;
  const inUseRetryAfterMs = options.inUseRetryAfterMs ?? defaultInUseRetryAfterMs;
  checkPositive({ leaseMs, retentionMs, inUseRetryAfterMs });
  const maxRecordsPerScope = options.maxRecordsPerScope ?? Number.POSITIVE_INFINITY;
  const maxStoredResponseBytes = options.maxStoredResponseBytes ?? defaultMaxStoredResponseBytes;
  if (
    maxRecordsPerScope !== Number.POSITIVE_INFINITY &&
    !(Number.isSafeInteger(maxRecordsPerScope) && maxRecordsPerScope > 0)
  )
    throw new TypeError('maxRecordsPerScope must be a positive integer, or Infinity for no bound');
  if (!Number.isSafeInteger(maxStoredResponseBytes) || maxStoredResponseBytes < 0)
    throw new TypeError('maxStoredResponseBytes must be a whole number of bytes');
  if (retentionMs < leaseMs) throw new TypeError('retentionMs must be at least leaseMs');
  if (options.store.transaction !== undefined && options.transaction !== undefined) {
    throw new TypeError('this store runs its own transactions; drop the `transaction` option');
  }
  return {
    store: options.store,
    leaseMs,
    retentionMs,
    inUseRetryAfterMs,
    maxRecordsPerScope,
    maxStoredResponseBytes,
    transaction: options.transaction,
    now: options.now ?? Date.now,
  };
}

function checkPositive(values: Record<string, number>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isFinite(value) || value <= 0)
      throw new TypeError(
        `${name} must be a positive number${name.endsWith('Ms') ? ' of milliseconds' : ''}`,
      );
  }
}

/** An answer with a body over `maxBytes` is never stored, in part or without its body. */
function checkStorable(response: StoredResponse, maxBytes: number): void {
  if (response.body.byteLength > maxBytes)
    throw new StoredResponseTooLargeError(response.body.byteLength, maxBytes);
}
