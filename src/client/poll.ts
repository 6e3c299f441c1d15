// client.poll(): follows a long-running operation (PROTOCOL rules 21 and 32) to its end under one
// deadline, waiting as the server asks (`Retry-After`) or with full-jitter backoff, and answers
// with a typed terminal result, or a timeout that carries the URL to resume from.

import type { GetOptions } from './call-options.js';
import type { OperationRef } from './operation.js';
import { type ClientError, formatMs, type Result } from './result.js';
import { backoffDelayMs, parseRetryAfterMs } from './retry.js';
import { sleep } from './sleep.js';

/** How long poll() follows an operation when the call sets no `deadlineMs`. */
export const defaultPollDeadlineMs = 5 * 60_000;
/** Backoff cap for the first wait when the server sends no `Retry-After`; doubles per poll. */
export const defaultPollIntervalMs = 1_000;
export const defaultMaxPollIntervalMs = 15_000;

export const operationStatuses = ['notStarted', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type OperationStatus = (typeof operationStatuses)[number];

/** The operation resource as the monitor sent it (members the client does not know are kept). */
export interface OperationState {
  id?: string;
  status: OperationStatus;
  percentComplete?: number;
  /** When failed: why. */
  error?: { code: string; message: string };
  /** When succeeded: where the result is. */
  resourceLocation?: string;
  [member: string]: unknown;
}

export interface PollOptions {
  /** The whole poll, every request and wait included (default 5 minutes). */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Long-poll: ask the server to hold each answer up to this many seconds (`Prefer: wait=N`). */
  wait?: number;
  /** Called with every non-terminal state the server reports, e.g. to show `percentComplete`. */
  onProgress?: (operation: OperationState) => void;
  /** Backoff cap for the first wait when the server sends no `Retry-After` (default 1 s). */
  intervalMs?: number;
  /** Ceiling of that backoff (default 15 s). */
  maxIntervalMs?: number;
  headers?: Record<string, string>;
}

export type PollResult =
  | {
      ok: true;
      status: 'succeeded';
      operation: OperationState;
      /** Where the operation's result is (the operation's `resourceLocation`). */
      resourceLocation: string | undefined;
      operationUrl: string;
    }
  | {
      ok: false;
      status: 'failed';
      error: { code: string; message: string };
      operation: OperationState;
      operationUrl: string;
    }
  | { ok: false; status: 'canceled'; operation: OperationState; operationUrl: string }
  | {
      /** The deadline passed while the operation was still going: `poll(operationUrl)` resumes it. */
      ok: false;
      status: 'timeout';
      message: string;
      operationUrl: string;
      /** The last state seen, if any answer arrived. */
      operation: OperationState | undefined;
    }
  | {
      /** The monitor could not be read (404, 401, a cancel, an unreadable answer, …). */
      ok: false;
      status: 'error';
      error: ClientError;
      operationUrl: string;
      operation: OperationState | undefined;
    };

export type PollGet = (path: string, options: GetOptions) => Promise<Result<unknown>>;

export async function poll(
  get: PollGet,
  attemptTimeoutMs: number,
  target: OperationRef | { operation?: OperationRef } | string,
  options: PollOptions,
): Promise<PollResult> {
  const ref = refOf(target);
  const operationUrl = ref.url;
  const deadlineMs = options.deadlineMs ?? defaultPollDeadlineMs;
  const deadlineAtMs = Date.now() + deadlineMs;
  const intervalMs = options.intervalMs ?? defaultPollIntervalMs;
  const maxIntervalMs = options.maxIntervalMs ?? defaultMaxPollIntervalMs;
  let last: OperationState | undefined;
  let waitMs = ref.retryAfterMs ?? 0;
  let fromRetryAfter = ref.retryAfterMs !== undefined;
  const timeout = (why: string): PollResult => ({
    ok: false,
    status: 'timeout',
    message: `${describeState(operationUrl, last)} ${why}; call poll('${operationUrl}') again to resume.`,
    operationUrl,
    operation: last,
  });

  for (let polls = 0; ; polls += 1) {
    if (waitMs > 0) {
      if (Date.now() + waitMs >= deadlineAtMs) {
        // Sleeping into a certain timeout helps nobody: say so now.
        return timeout(
          fromRetryAfter
            ? `and the server asked to wait ${formatMs(waitMs)}, past the poll deadline of ${formatMs(deadlineMs)}`
            : `and the poll deadline of ${formatMs(deadlineMs)} leaves no time for another look`,
        );
      }
      if (!(await sleep(waitMs, options.signal))) return aborted(operationUrl, last);
    }
    const remainingMs = deadlineAtMs - Date.now();
    if (remainingMs <= 0) return timeout(`after the poll deadline of ${formatMs(deadlineMs)}`);
    // A long-poll must fit the deadline, and the request must outlive the server's hold.
    const waitSeconds =
      options.wait === undefined ? 0 : Math.min(options.wait, Math.floor(remainingMs / 1000));
    const headers: Record<string, string> = { ...options.headers };
    if (waitSeconds > 0) headers.prefer = `wait=${waitSeconds}`;
    const answer = await get(operationUrl, {
      deadlineMs: remainingMs,
      timeoutMs: waitSeconds * 1000 + attemptTimeoutMs,
      headers,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    if (!answer.ok) {
      if (answer.error.kind === 'aborted')
        return { ok: false, status: 'error', error: answer.error, operationUrl, operation: last };
      if (Date.now() >= deadlineAtMs) return timeout(`after the poll deadline of ${formatMs(deadlineMs)}`);
      // A monitor read is safe to repeat: a passing outage (a 503, a lost connection) is waited out.
      if (!answer.error.retryable)
        return { ok: false, status: 'error', error: answer.error, operationUrl, operation: last };
      fromRetryAfter = answer.error.retryAfterMs !== undefined;
      waitMs = answer.error.retryAfterMs ?? backoffDelayMs(polls, intervalMs, maxIntervalMs);
      continue;
    }
    const state = readState(answer.data);
    if (state === undefined) {
      return {
        ok: false,
        status: 'error',
        error: {
          kind: 'bad_response',
          status: answer.status,
          message: `${operationUrl} answered HTTP ${answer.status} with something that is not an operation (it needs a "status" of ${operationStatuses.join(', ')}).`,
          sent: 'yes',
          retryable: false,
          attempts: answer.attempts,
        },
        operationUrl,
        operation: last,
      };
    }
    last = state;
    switch (state.status) {
      case 'succeeded':
        return {
          ok: true,
          status: 'succeeded',
          operation: state,
          resourceLocation: state.resourceLocation,
          operationUrl,
        };
      case 'failed':
        return {
          ok: false,
          status: 'failed',
          error: state.error ?? {
            code: 'unknown',
            message: 'The operation failed and the server did not say why.',
          },
          operation: state,
          operationUrl,
        };
      case 'canceled':
        return { ok: false, status: 'canceled', operation: state, operationUrl };
    }
    options.onProgress?.(state);
    const retryAfterMs = parseRetryAfterMs(answer.headers.get('retry-after'), Date.now());
    fromRetryAfter = retryAfterMs !== undefined;
    waitMs = retryAfterMs ?? backoffDelayMs(polls, intervalMs, maxIntervalMs);
  }
}

function refOf(target: OperationRef | { operation?: OperationRef } | string): OperationRef {
  if (typeof target === 'string') return { url: target };
  if ('url' in target && typeof target.url === 'string') return target;
  const operation = (target as { operation?: OperationRef }).operation;
  if (operation === undefined) {
    throw new TypeError(
      'poll: the result names no operation (it was not a 202 with Operation-Location or Location)',
    );
  }
  return operation;
}

function readState(data: unknown): OperationState | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const status = (data as { status?: unknown }).status;
  if (!operationStatuses.includes(status as OperationStatus)) return undefined;
  const state = data as OperationState;
  const error = state.error as unknown;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    state.error = { ...(error as object), code: String(code ?? 'unknown'), message: String(message ?? '') };
  }
  return state;
}

function describeState(url: string, state: OperationState | undefined): string {
  if (state === undefined) return `Operation ${url} has not answered yet`;
  const progress = typeof state.percentComplete === 'number' ? `, ${state.percentComplete}% complete` : '';
  return `Operation ${url} is still ${state.status}${progress}`;
}

function aborted(operationUrl: string, last: OperationState | undefined): PollResult {
  return {
    ok: false,
    status: 'error',
    error: {
      kind: 'aborted',
      message: `Polling was cancelled; the operation goes on. Call poll('${operationUrl}') to resume.`,
      sent: 'yes',
      retryable: true,
      attempts: 0,
    },
    operationUrl,
    operation: last,
  };
}
