// The client: builds each logical call (validation, encoding, headers, one idempotency key), runs
// its attempts under one deadline with the retry policy, and turns every outcome into a Result.

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { encodeBody, validateInput } from './body.js';
import { assertIdempotencyKey, newIdempotencyKey } from './keys.js';
import {
  type ClientOptions,
  defaultMaxConflictRetries,
  type NormalizedOptions,
  normalizeOptions,
} from './options.js';
import {
  type ClientError,
  defaultMessage,
  describeResource,
  type ErrorKind,
  type FieldError,
  type Problem,
  type Result,
  type Sent,
} from './result.js';
import {
  backoffDelayMs,
  combineSent,
  isSafeToRepeat,
  mayRetryFailure,
  parseRetryAfterMs,
  sentForStatus,
} from './retry.js';
import { type AttemptOutcome, sendAttempt } from './transport.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions<TData = unknown> {
  signal?: AbortSignal;
  /** Extra headers for this call; they override the client's. */
  headers?: Record<string, string>;
  /** Appended to the URL's query string; `undefined` values are left out. */
  query?: Query;
  /** Checks the success body; a mismatch is `bad_response`, so `data` is never wrongly typed. */
  responseSchema?: StandardSchemaV1<unknown, TData>;
}

export interface WriteOptions<TData = unknown> extends CallOptions<TData> {
  /** Checks the body before anything is sent; failure is `invalid_input` with field errors. */
  schema?: StandardSchemaV1;
  /** Send a flat object as `application/x-www-form-urlencoded` (URLSearchParams bodies always are). */
  form?: boolean;
}

export interface PostOptions<TData = unknown> extends WriteOptions<TData> {
  /**
   * Your own key (kept on every retry), or `false` to send none. Without a key a POST is only
   * retried when it certainly never left (connection refused, DNS failure).
   */
  idempotencyKey?: string | false;
}

export type PutOptions<TData = unknown> = WriteOptions<TData> &
  (
    | {
        /** The ETag you read: replace only if nobody changed it since. */ ifMatch?: string;
        ifNoneMatch?: never;
      }
    | { /** Create only: fail with 412 if the resource exists. */ ifNoneMatch: '*'; ifMatch?: never }
  );

export interface DeleteOptions<TData = unknown> extends CallOptions<TData> {
  ifMatch?: string;
}

export interface UpdateOptions<TData = unknown> extends Omit<WriteOptions<TData>, 'query'> {
  /** Re-reads after a 412 before giving up (default 3). */
  maxConflictRetries?: number;
}

/**
 * Receives a private copy of the current representation; mutate it or return the new body (it may
 * be async). It runs again after a concurrent edit, so derive the change from what it is given.
 */
export type Change<TData> = (current: TData) => TData | undefined | Promise<TData | undefined>;

export interface Client {
  get<TData = unknown>(path: string, options?: CallOptions<TData>): Promise<Result<TData>>;
  post<TData = unknown>(path: string, body: unknown, options?: PostOptions<TData>): Promise<Result<TData>>;
  put<TData = unknown>(path: string, body: unknown, options?: PutOptions<TData>): Promise<Result<TData>>;
  delete<TData = unknown>(path: string, options?: DeleteOptions<TData>): Promise<Result<TData>>;
  /** Read, change, write with If-Match; on 412 read again and re-apply, a bounded number of times. */
  update<TData = unknown>(
    path: string,
    change: Change<TData>,
    options?: UpdateOptions<TData>,
  ): Promise<Result<TData>>;
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body: unknown;
  options: WriteOptions & PostOptions & { ifMatch?: string; ifNoneMatch?: '*' };
}

/** One logical call's shared budget: update() runs several requests under one deadline. */
interface Budget {
  deadlineAtMs: number;
}

export function createClient(options: ClientOptions): Client {
  const config = normalizeOptions(options);
  const newBudget = (): Budget => ({ deadlineAtMs: Date.now() + config.deadlineMs });
  return {
    get: (path, callOptions) =>
      run(config, { method: 'GET', path, body: undefined, options: callOptions ?? {} }, newBudget()),
    post: (path, body, callOptions) =>
      run(config, { method: 'POST', path, body, options: callOptions ?? {} }, newBudget()),
    put: (path, body, callOptions) =>
      run(
        config,
        { method: 'PUT', path, body, options: (callOptions ?? {}) as Call['options'] },
        newBudget(),
      ),
    delete: (path, callOptions) =>
      run(config, { method: 'DELETE', path, body: undefined, options: callOptions ?? {} }, newBudget()),
    update: (path, change, callOptions) => update(config, path, change, callOptions ?? {}, newBudget()),
  };
}

async function update<TData>(
  config: NormalizedOptions,
  path: string,
  change: Change<TData>,
  options: UpdateOptions<TData>,
  budget: Budget,
): Promise<Result<TData>> {
  if (typeof change !== 'function') throw new TypeError('update: change must be a function');
  const maxConflictRetries = options.maxConflictRetries ?? defaultMaxConflictRetries;
  if (!Number.isInteger(maxConflictRetries) || maxConflictRetries < 0) {
    throw new TypeError('update: maxConflictRetries must be a whole number of at least 0');
  }
  const { maxConflictRetries: _, schema, form, ...readOptions } = options;
  let attempts = 0;
  // Bounded: one read-change-write per round, at most 1 + maxConflictRetries rounds.
  for (let round = 0; ; round++) {
    const read = await run<TData>(
      config,
      { method: 'GET', path, body: undefined, options: readOptions },
      budget,
    );
    attempts += read.ok ? read.attempts : read.error.attempts;
    if (!read.ok) return withAttempts(read, attempts);
    if (read.etag === undefined) {
      return {
        ok: false,
        error: {
          kind: 'bad_response',
          status: read.status,
          message: `${describeResource(path)} has no ETag, so it cannot be changed safely; nothing was written.`,
          sent: 'no',
          retryable: false,
          attempts,
        },
      };
    }
    const draft = structuredClone(read.data);
    const returned = await change(draft);
    const body = returned === undefined ? draft : returned;
    const writeOptions: Call['options'] = { ...readOptions, ifMatch: read.etag };
    if (schema !== undefined) writeOptions.schema = schema;
    if (form !== undefined) writeOptions.form = form;
    const written = await run<TData>(config, { method: 'PUT', path, body, options: writeOptions }, budget);
    attempts += written.ok ? written.attempts : written.error.attempts;
    if (written.ok || written.error.kind !== 'precondition_failed') return withAttempts(written, attempts);
    if (round >= maxConflictRetries) {
      const error = written.error;
      return withAttempts(
        {
          ok: false,
          error: {
            ...error,
            message: `${describeResource(path)} was changed by someone else — reload and try again (it changed ${round + 1} times while we tried)`,
          },
        },
        attempts,
      );
    }
  }
}

function withAttempts<TData>(result: Result<TData>, attempts: number): Result<TData> {
  if (result.ok) return { ...result, attempts };
  return { ok: false, error: { ...result.error, attempts } };
}

async function run<TData>(config: NormalizedOptions, call: Call, budget: Budget): Promise<Result<TData>> {
  const { method, path, options } = call;
  const url = resolveUrl(config, path, options.query);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError('signal must be an AbortSignal');

  const headers = new Headers(config.headers);
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
  headers.set('accept', 'application/json, application/problem+json');
  if (options.ifMatch !== undefined) headers.set('if-match', options.ifMatch);
  if (options.ifNoneMatch !== undefined) {
    if (options.ifNoneMatch !== '*') throw new TypeError("ifNoneMatch only supports '*' (create only)");
    headers.set('if-none-match', '*');
  }

  // The key exists before the first attempt, so every retry carries the same one.
  let idempotencyKey = headers.get('idempotency-key') ?? undefined;
  if (method === 'POST' && options.idempotencyKey !== undefined && options.idempotencyKey !== false) {
    idempotencyKey = options.idempotencyKey;
  }
  if (idempotencyKey !== undefined) assertIdempotencyKey(idempotencyKey);
  else if (method === 'POST' && options.idempotencyKey !== false && config.autoIdempotencyKey) {
    idempotencyKey = newIdempotencyKey();
  }
  if (idempotencyKey !== undefined) headers.set('idempotency-key', idempotencyKey);
  const keyField = idempotencyKey === undefined ? {} : { idempotencyKey };

  if (signal?.aborted === true) {
    return fail({
      kind: 'aborted',
      message: 'The call was cancelled before anything was sent.',
      sent: 'no',
      retryable: true,
      attempts: 0,
      ...keyField,
    });
  }

  let payload = call.body;
  if (options.schema !== undefined) {
    if (payload instanceof URLSearchParams) {
      throw new TypeError('schema cannot check URLSearchParams; pass a plain object with form: true');
    }
    const checked = await validateInput(options.schema, payload);
    if (!checked.ok) {
      return fail({
        kind: 'invalid_input',
        message: `The input is not valid; nothing was sent: ${checked.fieldErrors.map(describeFieldError).join('; ')}`,
        fieldErrors: checked.fieldErrors,
        sent: 'no',
        retryable: false,
        attempts: 0,
        ...keyField,
      });
    }
    payload = checked.value;
  }
  const encoded = encodeBody(payload, options.form === true);
  if (encoded.contentType !== undefined) headers.set('content-type', encoded.contentType);

  const safeToRepeat = isSafeToRepeat(method, idempotencyKey !== undefined);
  let sent: Sent = 'no';
  let attempts = 0;
  let last: ClientError | undefined;
  for (;;) {
    const remainingMs = budget.deadlineAtMs - Date.now();
    if (remainingMs <= 0) {
      // Only reachable when update() shares a budget that ran out between its requests.
      return fail(last ?? deadlineError(config, sent, attempts, keyField));
    }
    attempts += 1;
    headers.set('x-retry-count', String(attempts - 1));
    const deadlineBinds = remainingMs < config.timeoutMs;
    const outcome = await sendAttempt({
      fetch: config.fetch,
      url,
      method,
      headers,
      body: encoded.body,
      timeoutMs: Math.min(config.timeoutMs, remainingMs),
      signal,
    });
    sent = combineSent(sent, sentOf(outcome));

    if (outcome.type === 'response' && outcome.status >= 200 && outcome.status < 300) {
      return success(
        outcome,
        options.responseSchema as StandardSchemaV1<unknown, TData> | undefined,
        attempts,
        keyField,
        path,
      );
    }
    const judged = judge(outcome, { config, method, path, sent, attempts, safeToRepeat, deadlineBinds });
    const error: ClientError = { ...judged.error, ...keyField };
    last = error;
    if (!judged.retry) return fail({ ...error, message: explainNoRetry(error, method, idempotencyKey) });
    if (attempts >= config.maxAttempts) {
      return fail({ ...error, message: `${error.message} (gave up after ${attempts} attempts)` });
    }
    const fromRetryAfter = error.retryAfterMs !== undefined;
    const delayMs = error.retryAfterMs ?? backoffDelayMs(attempts - 1, config.baseDelayMs, config.maxDelayMs);
    if (Date.now() + delayMs >= budget.deadlineAtMs) {
      // Waiting would outlive the deadline: say so now instead of sleeping into a certain timeout.
      const waited = fromRetryAfter
        ? ` The server asked to wait ${formatMs(delayMs)}, which is past this call's deadline of ${formatMs(config.deadlineMs)}.`
        : ` No time was left before the deadline of ${formatMs(config.deadlineMs)} for another attempt.`;
      return fail({ ...error, message: `${error.message}${waited}` });
    }
    config.onRetry?.({ method, url, attempt: attempts, delayMs, fromRetryAfter, error });
    if (!(await sleep(delayMs, signal))) {
      return fail({
        ...error,
        kind: 'aborted',
        message: `The call was cancelled while waiting to retry (${error.message})`,
        retryable: error.retryable,
      });
    }
  }
}

function fail(error: ClientError): { ok: false; error: ClientError } {
  return { ok: false, error };
}

function deadlineError(
  config: NormalizedOptions,
  sent: Sent,
  attempts: number,
  keyField: object,
): ClientError {
  return {
    kind: 'timeout',
    message: `The deadline of ${formatMs(config.deadlineMs)} passed before the call could finish.`,
    sent,
    retryable: true,
    attempts,
    ...keyField,
  };
}

async function success<TData>(
  outcome: Extract<AttemptOutcome, { type: 'response' }>,
  responseSchema: StandardSchemaV1<unknown, TData> | undefined,
  attempts: number,
  keyField: { idempotencyKey?: string },
  path: string,
): Promise<Result<TData>> {
  const { status, headers, body } = outcome;
  const accepted = `The server accepted the request (HTTP ${status})`;
  if (body.type === 'unreadable') {
    return fail({
      kind: 'bad_response',
      status,
      message: `${accepted} but its answer could not be read: ${body.reason}. Do not repeat it blindly; check ${path}.`,
      sent: 'yes',
      retryable: false,
      attempts,
      ...keyField,
    });
  }
  let data: unknown = body.type === 'json' ? body.value : undefined;
  if (responseSchema !== undefined) {
    const checked = await validateInput(responseSchema, data);
    if (!checked.ok) {
      return fail({
        kind: 'bad_response',
        status,
        message: `${accepted} but its answer has an unexpected shape: ${checked.fieldErrors.map(describeFieldError).join('; ')}`,
        fieldErrors: checked.fieldErrors,
        sent: 'yes',
        retryable: false,
        attempts,
        ...keyField,
      });
    }
    data = checked.value;
  }
  return {
    ok: true,
    status,
    data: data as TData,
    location: headers.get('location') ?? undefined,
    etag: headers.get('etag') ?? undefined,
    replayed: headers.get('idempotent-replayed')?.trim().toLowerCase() === 'true',
    attempts,
    headers,
    ...keyField,
  };
}

interface JudgeContext {
  config: NormalizedOptions;
  method: string;
  path: string;
  sent: Sent;
  attempts: number;
  safeToRepeat: boolean;
  deadlineBinds: boolean;
}

/** Turns a failed attempt into the error the caller would see, and whether the policy allows another try. */
function judge(outcome: AttemptOutcome, context: JudgeContext): { error: ClientError; retry: boolean } {
  const { config, sent, attempts, safeToRepeat } = context;
  switch (outcome.type) {
    case 'aborted':
      return {
        error: {
          kind: 'aborted',
          message:
            sent === 'no'
              ? 'The call was cancelled.'
              : 'The call was cancelled; the request may already have reached the server.',
          sent,
          retryable: sent === 'no' || safeToRepeat,
          attempts,
          ...(outcome.reason === undefined ? {} : { cause: outcome.reason }),
        },
        retry: false,
      };
    case 'timeout': {
      const retry = mayRetryFailure({ sent: 'maybe' }, safeToRepeat);
      return {
        error: {
          kind: 'timeout',
          message: context.deadlineBinds
            ? `The call's deadline of ${formatMs(config.deadlineMs)} passed before the server answered.`
            : `The server did not answer within ${formatMs(config.timeoutMs)}.`,
          sent,
          retryable: retry,
          attempts,
        },
        retry: retry && !context.deadlineBinds,
      };
    }
    case 'network': {
      const retry = mayRetryFailure({ sent: outcome.sent }, safeToRepeat);
      const code = outcome.code === undefined ? '' : ` (${outcome.code})`;
      return {
        error: {
          kind: 'network',
          message:
            outcome.sent === 'no'
              ? `Could not reach ${config.baseUrl.host}${code}; the request was not sent.`
              : `The connection failed${code}; the request may have reached the server.`,
          sent,
          retryable: retry,
          attempts,
          cause: outcome.cause,
        },
        retry,
      };
    }
    case 'response':
      return judgeResponse(outcome, context);
  }
}

function judgeResponse(
  outcome: Extract<AttemptOutcome, { type: 'response' }>,
  context: JudgeContext,
): { error: ClientError; retry: boolean } {
  const { status, headers, body } = outcome;
  const problem = body.type === 'json' && isObject(body.value) ? (body.value as Problem) : undefined;
  const problemType = typeof problem?.type === 'string' ? problem.type : '';
  const inUse = status === 409 && /(^|[:/])idempotency-key-in-use$/.test(problemType);
  const retry = mayRetryFailure({ status, inUse }, context.safeToRepeat);
  const retryAfterMs = parseRetryAfterMs(headers.get('retry-after'), Date.now());

  let kind: ErrorKind;
  let message: string;
  if (body.type === 'unreadable') {
    // An HTML error page from a proxy, or broken JSON: we will not guess what it means.
    kind = 'bad_response';
    message = `The server answered HTTP ${status} with ${body.reason}${status >= 500 ? ' (often a proxy or gateway error page)' : ''}.`;
  } else {
    kind = kindForStatus(status, problemType, inUse);
    message = messageFor(kind, status, problem, context.path);
  }
  const fieldErrors = kind === 'validation' ? readFieldErrors(problem) : undefined;
  const error: ClientError = {
    kind,
    status,
    message,
    sent: context.sent,
    retryable: retry,
    attempts: context.attempts,
    ...(problem === undefined ? {} : { problem }),
    ...(fieldErrors === undefined ? {} : { fieldErrors }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
  return { error, retry };
}

function kindForStatus(status: number, problemType: string, inUse: boolean): ErrorKind {
  if (status >= 500) return 'server';
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
    case 410:
      return 'not_found';
    case 409:
      return inUse ? 'in_use' : 'conflict';
    case 412:
      return 'precondition_failed';
    case 428:
      return 'precondition_required';
    case 429:
      return 'rate_limited';
    case 422:
      return /(^|[:/])idempotency-key-reuse$/.test(problemType) ? 'idempotency_key_reuse' : 'validation';
  }
  // Any other 4xx (400, 405, 413, 415, …): the server refused the request as sent.
  if (status >= 400) return 'validation';
  // 1xx, or a 3xx fetch did not follow (304, 300): not an answer this client can use.
  return 'bad_response';
}

/** Servers write `detail` for people; where the client knows better (412, 428, 5xx) it speaks itself. */
function messageFor(kind: ErrorKind, status: number, problem: Problem | undefined, path: string): string {
  const detail =
    typeof problem?.detail === 'string' && problem.detail.trim() !== '' ? problem.detail : undefined;
  if (kind === 'precondition_failed' || kind === 'precondition_required' || kind === 'server') {
    return defaultMessage(kind, status, path);
  }
  if (kind === 'bad_response') return `The server answered with an unexpected HTTP ${status}.`;
  return detail ?? defaultMessage(kind, status, path);
}

/** Adds what the caller needs to know when the policy refused to repeat a request. */
function explainNoRetry(error: ClientError, method: string, idempotencyKey: string | undefined): string {
  if (
    method === 'POST' &&
    idempotencyKey === undefined &&
    error.sent === 'maybe' &&
    (error.kind === 'timeout' || error.kind === 'network')
  ) {
    return `${error.message} It was not retried: a POST without an Idempotency-Key could act twice. Check whether it took effect before trying again.`;
  }
  if (error.attempts > 1 && (error.kind === 'not_found' || error.kind === 'precondition_failed')) {
    // An earlier attempt that timed out may have deleted or replaced it already.
    return `${error.message} — an earlier attempt of this call may already have taken effect.`;
  }
  return error.message;
}

function readFieldErrors(problem: Problem | undefined): FieldError[] | undefined {
  if (!Array.isArray(problem?.errors)) return undefined;
  return problem.errors
    .filter(isObject)
    .map((e) => ({ pointer: String(e.pointer ?? ''), detail: String(e.detail ?? '') }));
}

function sentOf(outcome: AttemptOutcome): Sent {
  switch (outcome.type) {
    case 'response':
      return sentForStatus(outcome.status);
    case 'timeout':
      return 'maybe';
    case 'aborted':
    case 'network':
      return outcome.sent;
  }
}

function resolveUrl(config: NormalizedOptions, path: string, query: Query | undefined): string {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
  const url = new URL(path, config.baseUrl);
  // The client's credentials go to its own origin only; a Location elsewhere must be fetched by hand.
  if (url.origin !== config.baseUrl.origin) {
    throw new TypeError(`path ${path} leaves the client's origin ${config.baseUrl.origin}`);
  }
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.append(name, String(value));
  }
  return url.href;
}

/** Resolves true after the wait, false as soon as the signal aborts (even mid-wait). */
function sleep(delayMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function describeFieldError(error: FieldError): string {
  const field = error.pointer === '' ? 'input' : error.pointer.slice(1).replaceAll('/', '.');
  return `${field}: ${error.detail}`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
