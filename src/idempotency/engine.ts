// The idempotency engine: decides, for one keyed request, whether to execute, replay,
// refuse as in use, or refuse as a mismatched reuse — and makes the execution exactly-once.
// It knows no framework; adapters hand it a neutral request and get back a decision.
import { randomUUID } from 'node:crypto';
import { ProblemError } from '../http/problem.js';
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReuseError,
  IdempotencyLeaseLostError,
  IdempotencyStoreUnavailableError,
} from './errors.js';
import { fingerprintRequest } from './fingerprint.js';
import type { IdempotencyStore, StoredResponse } from './store.js';

export const defaultLeaseMs = 60_000;
export const defaultRetentionMs = 24 * 60 * 60 * 1000;
export const defaultInUseRetryAfterMs = 1_000;
export const defaultReapBatchSize = 500;
export const defaultReapIntervalMs = 60_000;
/** A retention of milliseconds (tests) must not make the reaper spin. */
const minReapIntervalMs = 1_000;

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
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

interface NormalisedOptions<Tx> {
  store: IdempotencyStore<Tx>;
  leaseMs: number;
  retentionMs: number;
  inUseRetryAfterMs: number;
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
  /** The parsed body (JSON or form, already decoded). */
  body: unknown;
}

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

  /** Scope + method + route + key: the identity of a record (PROTOCOL.md rule 7). */
  scopeKey(request: Pick<IdempotentRequest, 'scope' | 'method' | 'route' | 'key'>): string {
    return JSON.stringify([request.scope, request.method.toUpperCase(), request.route, request.key]);
  }

  async begin(request: IdempotentRequest): Promise<BeginResult<Tx>> {
    const { store, leaseMs, retentionMs, inUseRetryAfterMs, now } = this.options;
    const scopeKey = this.scopeKey(request);
    const fingerprint = fingerprintRequest(request);
    const token = randomUUID();
    const nowMs = now();
    let result: Awaited<ReturnType<IdempotencyStore<Tx>['claim']>>;
    try {
      result = await store.claim({
        scopeKey,
        fingerprint,
        token,
        recordId: randomUUID(),
        nowMs,
        leaseExpiresAtMs: nowMs + leaseMs,
        expiresAtMs: nowMs + retentionMs,
      });
    } catch (error) {
      throw new IdempotencyStoreUnavailableError(error);
    }
    if (result.claimed) {
      return {
        outcome: 'executed',
        execution: new Execution(this.options, {
          scopeKey,
          token,
          recordId: result.recordId,
          key: request.key,
        }),
      };
    }
    const record = result.record;
    if (record.fingerprint !== fingerprint)
      return { outcome: 'mismatch', error: new IdempotencyKeyReuseError() };
    if (record.state === 'completed') {
      return { outcome: 'replayed', recordId: record.recordId, response: record.response };
    }
    const waitMs = Math.min(Math.max(record.leaseExpiresAtMs - nowMs, 0), inUseRetryAfterMs);
    return { outcome: 'in_use', error: new IdempotencyKeyInUseError(Math.max(1, Math.ceil(waitMs / 1000))) };
  }

  /** Deletes expired records in batches of `batchSize`, at most `maxBatches` of them. */
  async reap(batchSize = defaultReapBatchSize, maxBatches = 20): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const deleted = await this.options.store.reap(this.options.now(), batchSize);
      total += deleted;
      if (deleted < batchSize) break;
    }
    return total;
  }

  /**
   * Runs `reap` every `intervalMs` (default: a minute, or the retention if shorter but at
   * least a second, so a stored response never outlives its retention by much more) until the
   * returned function is called. Never keeps the process alive.
   */
  startReaper(
    options: { intervalMs?: number; batchSize?: number; onError?: (error: unknown) => void } = {},
  ): () => void {
    const timer = setInterval(
      () => {
        this.reap(options.batchSize).catch((error: unknown) => options.onError?.(error));
      },
      options.intervalMs ??
        Math.max(minReapIntervalMs, Math.min(defaultReapIntervalMs, this.options.retentionMs)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** Thrown inside a store transaction to roll back a handler that answered 5xx. */
class RollbackFor5xx extends Error {
  constructor(readonly response: StoredResponse) {
    super('rollback: handler answered 5xx');
  }
}

interface ExecutionIdentity {
  scopeKey: string;
  token: string;
  recordId: string;
  key: string;
}

/**
 * One claimed execution. Settle it exactly once: `commit` (writes + stored response in one
 * transaction), `complete` (store a response produced without writes), or `release`.
 */
export class Execution<Tx> {
  readonly scopeKey: string;
  readonly token: string;
  /** Stable across lease takeovers: derive downstream idempotency keys from it (`<recordId>:<step>`). */
  readonly recordId: string;
  readonly key: string;
  #settled = false;

  constructor(
    private readonly options: NormalisedOptions<Tx>,
    identity: ExecutionIdentity,
  ) {
    this.scopeKey = identity.scopeKey;
    this.token = identity.token;
    this.recordId = identity.recordId;
    this.key = identity.key;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Runs the handler's writes and stores their response atomically. A response with status
   * ≥ 500, or a throw, rolls the writes back and releases the claim so a retry executes again.
   */
  async commit(work: (tx: Tx) => Promise<StoredResponse> | StoredResponse): Promise<StoredResponse> {
    this.#assertOpen();
    const { store } = this.options;
    if (store.transaction === undefined) return this.#commitOutsideStore(work);
    let workStarted = false;
    try {
      const response = await store.transaction(async (tx) => {
        workStarted = true;
        const produced = await work(tx);
        if (produced.status >= 500) throw new RollbackFor5xx(produced);
        if (!(await this.#completeIn(produced, tx))) throw new IdempotencyLeaseLostError();
        return produced;
      });
      this.#settled = true;
      return response;
    } catch (error) {
      if (error instanceof IdempotencyLeaseLostError) {
        this.#settled = true;
        throw error;
      }
      if (error instanceof ProblemError && error.status < 500) {
        // A deliberate 4xx (say, a username clash): its writes are rolled back, the claim stays
        // open so the caller stores the answer with `complete` (the Fastify adapter does).
        throw error;
      }
      await this.release();
      if (error instanceof RollbackFor5xx) return error.response;
      if (!workStarted && !(error instanceof ProblemError)) throw new IdempotencyStoreUnavailableError(error);
      throw error;
    }
  }

  /** Stores a response that was produced without transactional writes (e.g. a 4xx thrown by the handler). */
  async complete(response: StoredResponse): Promise<void> {
    this.#assertOpen();
    if (response.status >= 500) return this.release();
    const stored = await this.#completeIn(response, undefined);
    this.#settled = true;
    if (!stored) throw new IdempotencyLeaseLostError();
  }

  /** Forgets the claim so the next request with this key executes. Failures are left to the lease. */
  async release(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    try {
      await this.options.store.release(this.scopeKey, this.token);
    } catch {
      // The store is unreachable: the lease expires by itself, after which a retry executes.
    }
  }

  async #commitOutsideStore(
    work: (tx: Tx) => Promise<StoredResponse> | StoredResponse,
  ): Promise<StoredResponse> {
    const run: TransactionRunner<Tx> = this.options.transaction ?? ((inner) => inner(undefined as Tx));
    let response: StoredResponse;
    try {
      response = await run(async (tx) => {
        const produced = await work(tx);
        // Thrown, so the caller's transaction rolls back the writes of a 5xx too.
        if (produced.status >= 500) throw new RollbackFor5xx(produced);
        return produced;
      });
    } catch (error) {
      // As in `commit`: a deliberate 4xx keeps the claim open for `complete`.
      if (error instanceof ProblemError && error.status < 500) throw error;
      await this.release();
      if (error instanceof RollbackFor5xx) return error.response;
      throw error;
    }
    await this.complete(response);
    return response;
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
      throw new IdempotencyStoreUnavailableError(error);
    }
  }

  #assertOpen(): void {
    if (this.#settled) throw new Error(`Execution for key ${this.key} was already settled`);
  }
}

function normalise<Tx>(options: IdempotencyEngineOptions<Tx>): NormalisedOptions<Tx> {
  const leaseMs = options.leaseMs ?? defaultLeaseMs;
  const retentionMs = options.retentionMs ?? defaultRetentionMs;
  const inUseRetryAfterMs = options.inUseRetryAfterMs ?? defaultInUseRetryAfterMs;
  for (const [name, value] of Object.entries({ leaseMs, retentionMs, inUseRetryAfterMs })) {
    if (!Number.isFinite(value) || value <= 0)
      throw new TypeError(`${name} must be a positive number of milliseconds`);
  }
  if (retentionMs < leaseMs) throw new TypeError('retentionMs must be at least leaseMs');
  if (options.store.transaction !== undefined && options.transaction !== undefined) {
    throw new TypeError('this store runs its own transactions; drop the `transaction` option');
  }
  return {
    store: options.store,
    leaseMs,
    retentionMs,
    inUseRetryAfterMs,
    transaction: options.transaction,
    now: options.now ?? Date.now,
  };
}
