// The one request lifecycle every adapter runs: a neutral request in (method, route, headers,
// raw body bytes, scope), a neutral response out (status, headers, body bytes). It reads the
// key and the route's mode, begins (execute, replay, in use, mismatch), runs the handler in the
// store's unit of work, settles (answers below 500 stored with the writes; 5xx and throws
// rolled back, the key released) and builds every answer, problems included. Adapters only
// translate these shapes for their framework; none of them decides anything here.
import { randomUUID } from 'node:crypto';
import { type StepCall, StepRunner } from '../effects/steps.js';
import { ProblemError, problemTypePrefix } from '../http/problem.js';
import {
  createIdempotencyEngine,
  type DeliveryGuarantee,
  type Execution,
  holdsFinishedSteps,
  type IdempotencyEngine,
  type IdempotencyEngineOptions,
  type IdempotencyOutcome,
  rollsBack,
} from './engine.js';
import { IdempotencyKeyMissingError, IdempotencyLeaseLostError } from './errors.js';
import { fingerprintRawRequest, legacyFingerprint } from './fingerprint.js';
import { parseIdempotencyKey } from './key.js';
import { problemResponse, type ResponseDraft, serverErrorResponse, toStoredResponse } from './response.js';
import type { StoredResponse } from './store.js';

export type { StepCall } from '../effects/steps.js';

export const defaultIdempotencyHeader = 'idempotency-key';

/** Headers a stored answer keeps and sends again on replay (plus any you add). */
export const replayedHeaderNames = [
  'content-type',
  'location',
  'etag',
  'content-location',
  'last-modified',
  'link',
  'operation-location',
  'retry-after',
] as const;

/**
 * `required`: a request without a key is 400. `optional`: keyed requests are protected,
 * others run as usual. `off`: the key is not read; the writes still run in one transaction.
 */
export type IdempotencyMode = 'required' | 'optional' | 'off';

export type HeaderValues = Record<string, string | string[] | undefined>;

/** A request as the lifecycle sees it, whatever the framework. */
export interface NeutralRequest {
  method: string;
  /** The route pattern, e.g. `/orders/:id`: part of the record's identity. */
  route: string;
  /** The concrete path without query, e.g. `/orders/42`: part of the fingerprint. */
  path: string;
  /** Lower-case names. A header sent more than once may be an array (then it is refused as a key). */
  headers: HeaderValues;
  /** The body exactly as received; empty when there is none. */
  body: Uint8Array;
  /**
   * The body as the framework already parsed it, for a JSON media type: the fingerprint then
   * skips parsing `body` again (the canonical form is the same).
   */
  parsedJson?: unknown;
  /** Who is calling (tenant, account, principal): keys never cross scopes. */
  scope: string;
}

/** What went out, and why. */
export type LifecycleOutcome =
  /** With a key: what the engine decided. */
  | IdempotencyOutcome
  /** No key (optional or off): the handler ran once, unprotected. */
  | 'unkeyed'
  /** Refused before anything ran: a missing or malformed key, or the store was unreachable. */
  | 'refused';

export interface HandledResponse {
  /** Status, headers (lower-case) and body bytes, ready to write. */
  response: StoredResponse;
  outcome: LifecycleOutcome;
  key: string | undefined;
  recordId: string | undefined;
  /** A failure that was answered as 5xx, for the adapter's logger. */
  error?: unknown;
}

declare const committedBrand: unique symbol;
/** What `commit` returns; return it from the handler. */
export type CommittedResponse = StoredResponse & { readonly [committedBrand]: true };

/** What a handler gets: the request's key and record, and the one way to write. */
export interface RequestContext<Tx> {
  readonly key: string | undefined;
  /** The idempotency record's id; stable across retries and takeovers of one key. */
  readonly recordId: string | undefined;
  readonly guarantee: DeliveryGuarantee;
  /**
   * A stable id for the resource `name` this request creates. With a key it is derived from
   * the record, so every run of that key creates the same row; without one it is fresh.
   */
  idFor(name: string): string;
  /**
   * Runs your writes in one transaction and answers with what `work` returns. With a key, the
   * writes and the stored answer commit together (SQL stores); a throw or a 5xx rolls both back.
   * Call it at most once.
   */
  commit(work: (tx: Tx) => ResponseDraft | Promise<ResponseDraft>): Promise<CommittedResponse>;
  /**
   * A named step of a write that spans more than one transaction: runs `work` in one
   * transaction and checkpoints its result in the record, fenced by this request's claim (SQL
   * stores: in that same transaction, so the writes and the checkpoint commit together). When
   * the request fails later, a retry with the same key finds the step finished and gets its
   * saved result without running it: the result's JSON form (a Date comes back as its string),
   * the same on the first run as later. Name each step once per request (`StepNameRepeatedError`).
   * A throw or a 5xx later still rolls back only what is not yet committed: finished steps stay.
   * Without a key nothing is checkpointed: the work runs in its transaction and a retry runs it
   * again. Call `commit` last for the answer.
   */
  step<T>(name: string, work: (tx: Tx) => T | Promise<T>): Promise<T>;
  /**
   * An external call (a payment provider, another service), made outside any transaction
   * (never inside `step`: `CallInsideStepError`) with a key stable across retries, takeovers and
   * restarts, `<recordId>:<name>`: send it as the call's Idempotency-Key. Its result is
   * checkpointed, so a retry resumes after it; a crash between the call and its checkpoint
   * calls again with the same key, which the other side turns into a replay. A call that throws
   * (a timeout) fails the request as any throw does, and the retry calls again, same key.
   * Without a key the key is fresh per request (`<uuid>:<name>`): nothing resumes, and a client
   * that retries makes a new call.
   *
   * A 4xx thrown after a call finished is stored as the answer, as any 4xx is: the call's effect
   * (a charge) stays, once, under its derived key, and the record's data part keeps its result.
   * Decide what can be refused before the call; a rule that can only be checked after it must
   * undo the effect with a call of its own (`call('refund', …)`, also once) before throwing.
   */
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T>;
}

export type RequestHandler<Tx> = (
  context: RequestContext<Tx>,
) => ResponseDraft | CommittedResponse | Promise<ResponseDraft | CommittedResponse>;

export type LifecycleOptions<Tx> = (IdempotencyEngineOptions<Tx> | { engine: IdempotencyEngine<Tx> }) & {
  /** Header to read the key from. Default `Idempotency-Key`. */
  headerName?: string;
  /** Headers to keep with stored answers beyond `replayedHeaderNames`. */
  replayedHeaders?: readonly string[];
};

export interface HandleOptions {
  mode: IdempotencyMode;
  /**
   * The key, when the adapter already read it with `readKey` (to refuse a bad key before
   * parsing the body). Otherwise it is read from the request's headers.
   */
  key?: string | undefined;
}

export function createLifecycle<Tx = never>(options: LifecycleOptions<Tx>): RequestLifecycle<Tx> {
  return new RequestLifecycle(options);
}

export class RequestLifecycle<Tx = never> {
  readonly engine: IdempotencyEngine<Tx>;
  /** Lower-case. */
  readonly headerName: string;
  readonly #displayName: string;
  readonly #replayed: ReadonlySet<string>;

  constructor(options: LifecycleOptions<Tx>) {
    this.engine = 'engine' in options ? options.engine : createIdempotencyEngine(options);
    this.headerName = (options.headerName ?? defaultIdempotencyHeader).toLowerCase();
    this.#displayName = this.headerName.replace(/(^|-)\w/g, (s) => s.toUpperCase());
    this.#replayed = new Set([
      ...replayedHeaderNames,
      ...(options.replayedHeaders ?? []).map((name) => name.toLowerCase()),
    ]);
  }

  /**
   * The key of a request under `mode`, or undefined when it has none. Throws the 400 problem
   * for a missing (required) or malformed key; `problem` turns it into the answer.
   */
  readKey(headers: HeaderValues, mode: IdempotencyMode): string | undefined {
    if (mode === 'off') return undefined;
    const key = parseIdempotencyKey(headers[this.headerName], this.#displayName);
    if (key === undefined && mode === 'required') throw new IdempotencyKeyMissingError(this.#displayName);
    return key;
  }

  /** Runs one request through the lifecycle; never throws. */
  async handle(
    request: NeutralRequest,
    options: HandleOptions,
    handler: RequestHandler<Tx>,
  ): Promise<HandledResponse> {
    let key: string | undefined;
    try {
      key = 'key' in options ? options.key : this.readKey(request.headers, options.mode);
    } catch (error) {
      return this.#failed(error, 'refused', undefined, undefined);
    }
    if (key === undefined) return this.#runUnkeyed(handler);

    const raw = {
      method: request.method,
      path: request.path,
      body: request.body,
      contentType: headerValue(request.headers['content-type']),
      parsedJson: request.parsedJson,
    };
    let begun: Awaited<ReturnType<IdempotencyEngine<Tx>['begin']>>;
    try {
      begun = await this.engine.begin({
        scope: request.scope,
        method: request.method,
        route: request.route,
        path: request.path,
        key,
        body: undefined,
        fingerprint: fingerprintRawRequest(raw),
        legacyFingerprint: () => legacyFingerprint(raw),
      });
    } catch (error) {
      return this.#failed(error, 'refused', key, undefined);
    }
    switch (begun.outcome) {
      case 'executed':
        return this.#runKeyed(begun.execution, handler);
      case 'replayed': {
        const { status, headers, body } = begun.response;
        return {
          response: { status, headers: { ...headers, 'idempotent-replayed': 'true' }, body },
          outcome: 'replayed',
          key,
          recordId: begun.recordId,
        };
      }
      default:
        return { response: problemResponse(begun.error), outcome: begun.outcome, key, recordId: undefined };
    }
  }

  /** The answer for a thrown problem (or a 500 for anything else), as every adapter sends it. */
  problem(error: unknown): StoredResponse {
    if (error instanceof ProblemError) return problemResponse(error);
    // Only a store that shares the business transaction knows a failed run left nothing.
    return serverErrorResponse(this.engine.guarantee === 'exactly-once');
  }

  async #runKeyed(execution: Execution<Tx>, handler: RequestHandler<Tx>): Promise<HandledResponse> {
    const done = (response: StoredResponse, error?: unknown): HandledResponse => ({
      response,
      outcome: 'executed',
      key: execution.key,
      recordId: execution.recordId,
      ...(error === undefined ? {} : { error }),
    });
    let committed: StoredResponse | undefined;
    const context: RequestContext<Tx> = {
      key: execution.key,
      recordId: execution.recordId,
      guarantee: this.engine.guarantee,
      idFor: (name) => execution.idFor(name),
      commit: async (work) => {
        committed = await execution.commit(async (tx) => this.#toStored(await work(tx)));
        return committed as CommittedResponse;
      },
      step: (name, work) => execution.step(name, work),
      call: (name, work) => execution.call(name, work),
    };
    try {
      const returned = await handler(context);
      if (committed !== undefined) return done(committed);
      const answer = this.#toStored(returned);
      await execution.complete(answer);
      return done(answer);
    } catch (error) {
      // The handler threw after its commit: the writes and the stored answer are in, so the
      // answer is that one (a retry replays it), whatever went wrong afterwards.
      if (committed !== undefined) return done(committed, error);
      if (execution.settled) return done(this.problem(error), error);
      if (error instanceof ProblemError && !rollsBack(error)) {
        // A deliberate 4xx (a taken username, a failed precondition) is an answer: stored and
        // replayed like any other, its writes (if any) already rolled back.
        const answer = problemResponse(error);
        try {
          await execution.complete(answer);
          return done(answer);
        } catch (settleError) {
          // The answer could not be stored: free the key (no-op if the fence was lost).
          await execution.release();
          return done(this.#failure(settleError, execution.checkpointed), settleError);
        }
      }
      // Released, the record keeps its id and its checkpoints: the retry resumes after them.
      await execution.release();
      return done(this.#failure(error, execution.checkpointed), error);
    }
  }

  /**
   * `problem`, except that after a finished step no 5xx says nothing was saved: a 503's status
   * and `Retry-After` stay, its detail says the finished steps were kept.
   */
  #failure(error: unknown, stepsFinished: boolean): StoredResponse {
    if (!stepsFinished) return this.problem(error);
    if (!(error instanceof ProblemError)) return serverErrorResponse(false);
    if (error.status < 500) return this.problem(error);
    return problemResponse(
      new ProblemError({
        status: error.status,
        // The slug again (the constructor adds the prefix), so clients match the same type.
        type: error.type.startsWith(problemTypePrefix)
          ? error.type.slice(problemTypePrefix.length)
          : error.type,
        title: error.title,
        extensions: error.extensions,
        // Not the error's own detail: it may say nothing was saved, which finished steps make false.
        detail: `${error.title}: this attempt stopped part way. The steps it had finished are kept and will not run again; retry with the same ${this.#displayName} to finish the rest.`,
        headers: error.headers,
        cause: error,
      }),
    );
  }

  async #runUnkeyed(handler: RequestHandler<Tx>): Promise<HandledResponse> {
    let committed: StoredResponse | undefined;
    const ids = new Map<string, string>();
    let steps: StepRunner<Tx> | undefined;
    const runner = () => {
      steps ??= unkeyedSteps(this.engine);
      return steps;
    };
    const context: RequestContext<Tx> = {
      key: undefined,
      recordId: undefined,
      guarantee: this.engine.guarantee,
      idFor: (name) => {
        const id = ids.get(name) ?? randomUUID();
        ids.set(name, id);
        return id;
      },
      commit: async (work) => {
        committed = await this.engine.commitWithoutKey(async (tx) => this.#toStored(await work(tx)));
        return committed as CommittedResponse;
      },
      step: (name, work) => runner().step(name, work),
      call: (name, work) => runner().call(name, work),
    };
    try {
      const returned = await handler(context);
      const response = committed ?? this.#toStored(returned);
      return { response, outcome: 'unkeyed', key: undefined, recordId: undefined };
    } catch (error) {
      const stepsFinished = steps !== undefined && holdsFinishedSteps(steps.data);
      return this.#failed(error, 'unkeyed', undefined, undefined, stepsFinished);
    }
  }

  #failed(
    error: unknown,
    outcome: LifecycleOutcome,
    key: string | undefined,
    recordId: string | undefined,
    stepsFinished = false,
  ): HandledResponse {
    const response = this.#failure(error, stepsFinished);
    return { response, outcome, key, recordId, ...(rollsBack(response) ? { error } : {}) };
  }

  /** Serialises a draft once, keeping only the headers a replay may repeat. */
  #toStored(draft: ResponseDraft | StoredResponse): StoredResponse {
    return toStoredResponse(draft, this.#replayed);
  }
}

/**
 * The steps of a request without a key: the same names, transactions and derived-key shape as
 * with one, but nothing is checkpointed and the key prefix is fresh, so nothing resumes.
 */
function unkeyedSteps<Tx>(engine: IdempotencyEngine<Tx>): StepRunner<Tx> {
  return new StepRunner<Tx>(
    {
      data: {},
      keyPrefix: randomUUID(),
      sharesTransaction: false,
      save: async () => true,
      transaction: (work) => engine.runTransaction(work),
      // Unreachable (`save` never refuses); there for the interface.
      lost: (writes) => new IdempotencyLeaseLostError(writes),
    },
    engine.options.now,
  );
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
