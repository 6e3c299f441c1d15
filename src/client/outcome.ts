// Outcome judging: turns what one attempt got back (a response, a timeout, a network failure, a
// cancel) into the typed Result the caller sees, and says whether the retry policy allows another.

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { validateInput } from './body.js';
import { operationOf } from './operation.js';
import type { NormalizedOptions } from './options.js';
import { crossOriginTarget } from './redirects.js';
import {
  type ClientError,
  defaultMessage,
  describeFieldError,
  type ErrorKind,
  type FieldError,
  fail,
  formatMs,
  type Problem,
  type Result,
  type Sent,
} from './result.js';
import { mayRetryFailure, parseRetryAfterMs, sentForStatus } from './retry.js';
import type { AttemptOutcome, ParsedBody } from './transport.js';

export interface JudgeContext {
  config: NormalizedOptions;
  method: string;
  path: string;
  /** The URL the call was sent to, to tell a redirect elsewhere from one within the origin. */
  url: string;
  sent: Sent;
  attempts: number;
  safeToRepeat: boolean;
  deadlineBinds: boolean;
}

/** A 2xx answer as a success, unless its body cannot be read or does not match the response schema. */
export async function success<TData>(
  outcome: Extract<AttemptOutcome, { type: 'response' }>,
  responseSchema: StandardSchemaV1<unknown, TData> | undefined,
  attempts: number,
  keyField: { idempotencyKey?: string },
  path: string,
  method: string,
): Promise<Result<TData>> {
  const { status, headers, body } = outcome;
  const isRead = method === 'GET' || method === 'HEAD';
  const accepted = isRead
    ? `The server answered HTTP ${status}`
    : `The server accepted the request (HTTP ${status})`;
  if (body.type === 'too-large') {
    return fail({
      kind: 'bad_response',
      status,
      message: `${accepted} but its answer is larger than maxResponseBytes (${body.limitBytes} bytes); raise the limit or use responseType: 'stream'.`,
      sent: 'yes',
      retryable: false,
      attempts,
      ...keyField,
    });
  }
  if (body.type === 'unreadable') {
    // A read may simply be something other than JSON (a CSV export); a write's answer was lost.
    const advice = isRead
      ? "To read an answer that is not JSON, pass responseType: 'text', 'bytes' or 'stream'."
      : `Do not repeat it blindly; check ${path}.`;
    return fail({
      kind: 'bad_response',
      status,
      message: `${accepted} but its answer could not be read: ${body.reason}. ${advice}`,
      sent: 'yes',
      retryable: false,
      attempts,
      ...keyField,
    });
  }
  let data: unknown = body.type === 'json' || body.type === 'value' ? body.value : undefined;
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
  const operation = operationOf(status, headers);
  return {
    ok: true,
    status,
    data: data as TData,
    location: headers.get('location') ?? undefined,
    etag: headers.get('etag') ?? undefined,
    notModified: status === 304,
    replayed: headers.get('idempotent-replayed')?.trim().toLowerCase() === 'true',
    attempts,
    headers,
    ...keyField,
    ...(operation === undefined ? {} : { operation }),
  };
}

/** Turns a failed attempt into the error the caller would see, and whether the policy allows another try. */
export function judge(
  outcome: AttemptOutcome,
  context: JudgeContext,
): { error: ClientError; retry: boolean } {
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
    case 'hidden-redirect':
      return {
        error: {
          kind: 'bad_response',
          message:
            "The server redirected, and the browser hides where to, so the client could not check that it stays on its origin and did not follow it. Call the final URL, or choose redirect: 'follow' if every origin it may lead to may see your headers.",
          sent: 'yes',
          retryable: false,
          attempts,
        },
        retry: false,
      };
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

  if (body.type === 'truncated') return judgeTruncated(outcome, body, context);
  const elsewhere = status >= 300 && status < 400 ? crossOriginTarget(headers, context.url) : undefined;
  if (elsewhere !== undefined) {
    const error: ClientError = {
      kind: 'bad_response',
      status,
      message: `The server redirected (HTTP ${status}) to another origin, ${elsewhere}; the client did not follow it, so your headers and credentials were not sent there. Call it yourself if you trust it.`,
      sent: context.sent,
      retryable: false,
      attempts: context.attempts,
      location: headers.get('location') ?? elsewhere,
    };
    return { error, retry: false };
  }
  let kind: ErrorKind;
  let message: string;
  if (body.type === 'unreadable' && status >= 500) {
    // A proxy's HTML error page: the body is unreadable but the status says all we need.
    kind = 'server';
    message = `${defaultMessage('server', status, context.path).slice(0, -1)}; it sent ${body.reason} (often a proxy or gateway error page).`;
  } else if (body.type === 'unreadable') {
    // An HTML page or broken JSON where an answer was expected: we will not guess what it means.
    kind = 'bad_response';
    message = `The server answered HTTP ${status} with ${body.reason}.`;
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

/**
 * The answer's head arrived and its body was cut off. The status is the server's word on what it
 * did (a 201 means it acted), so it is kept with `Location` and `ETag`; only the body is missing.
 */
function judgeTruncated(
  outcome: Extract<AttemptOutcome, { type: 'response' }>,
  body: Extract<ParsedBody, { type: 'truncated' }>,
  context: JudgeContext,
): { error: ClientError; retry: boolean } {
  const { status, headers } = outcome;
  const location = headers.get('location') ?? undefined;
  const etag = headers.get('etag') ?? undefined;
  const acted = status >= 200 && status < 300;
  const code = body.code === undefined ? '' : ` (${body.code})`;
  const where = location === undefined ? '' : ` The resource is at ${location}.`;
  const message = acted
    ? `The server accepted the request (HTTP ${status}), but the connection broke before its answer's body was complete${code}.${where}`
    : `The server answered HTTP ${status}, but the connection broke before the body was complete${code}.`;
  // Repeating is as safe as the request: a keyed POST gets the stored answer back in full.
  const retry = context.safeToRepeat;
  const error: ClientError = {
    kind: acted ? 'network' : kindForStatus(status, '', false),
    status,
    message,
    sent: context.sent,
    retryable: retry,
    attempts: context.attempts,
    cause: body.cause,
    ...(location === undefined ? {} : { location }),
    ...(etag === undefined ? {} : { etag }),
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
export function explainNoRetry(
  error: ClientError,
  method: string,
  safeToRepeat: boolean,
  fetchMayResend: boolean,
): string {
  if (!safeToRepeat && error.sent === 'maybe' && (error.kind === 'timeout' || error.kind === 'network')) {
    const unprotected =
      method === 'PATCH'
        ? 'a PATCH without an Idempotency-Key or If-Match'
        : `a ${method} without an Idempotency-Key`;
    if (fetchMayResend) {
      // Seen in Chromium: a reset keep-alive socket made the browser send the POST again itself.
      return `${error.message} This client did not retry it (${unprotected} could act twice), but the browser may have re-sent it on its own, so it may have taken effect more than once. Check before trying again; in a browser only an Idempotency-Key protects a ${method}.`;
    }
    return `${error.message} It was not retried: ${unprotected} could act twice. Check whether it took effect before trying again.`;
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

/** What one attempt says about whether the request reached the server. */
export function sentOf(outcome: AttemptOutcome): Sent {
  switch (outcome.type) {
    case 'response':
      return sentForStatus(outcome.status);
    case 'hidden-redirect':
      return 'yes';
    case 'timeout':
      return 'maybe';
    case 'aborted':
    case 'network':
      return outcome.sent;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
