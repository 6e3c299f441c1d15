// The attempt loop: sends a prepared call again and again while the retry policy allows it,
// waiting between attempts, and never past the call's deadline or the caller's signal.

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { runHooks } from './hooks.js';
import type { NormalizedOptions } from './options.js';
import { explainNoRetry, judge, sentOf, success } from './outcome.js';
import { type Call, prepareCall } from './request.js';
import { type ClientError, fail, formatMs, type Result, type Sent } from './result.js';
import { backoffDelayMs, combineSent, isSafeToRepeat } from './retry.js';
import { sleep } from './sleep.js';
import { sendAttempt } from './transport.js';

/** One logical call's shared budget: update() runs several requests under one deadline. */
export interface Budget {
  deadlineAtMs: number;
}

export async function run<TData>(
  config: NormalizedOptions,
  call: Call,
  budget: Budget,
): Promise<Result<TData>> {
  const { method, path, options } = call;
  const prepared = await prepareCall(config, call);
  if (!prepared.ok) return prepared;
  const { url, headers, body, signal, idempotencyKey, keyField } = prepared.request;

  const safeToRepeat = isSafeToRepeat(method, idempotencyKey !== undefined, headers.has('if-match'));
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
    const attemptContext = { method, url, attempt: attempts, idempotencyKey };
    if (config.hooks.beforeRequest.length > 0) {
      await runHooks(config.hooks.beforeRequest, { ...attemptContext, headers });
    }
    const deadlineBinds = remainingMs < config.timeoutMs;
    const outcome = await sendAttempt({
      fetch: config.fetch,
      url,
      method,
      headers,
      body,
      timeoutMs: Math.min(config.timeoutMs, remainingMs),
      signal,
      redirect: config.redirect,
      responseType: options.responseType ?? 'json',
      maxResponseBytes: config.maxResponseBytes,
    });
    sent = combineSent(sent, sentOf(outcome));
    if (outcome.type === 'response' && config.hooks.afterResponse.length > 0) {
      await runHooks(config.hooks.afterResponse, {
        ...attemptContext,
        status: outcome.status,
        headers: outcome.headers,
      });
    }

    if (outcome.type === 'response' && isSuccess(outcome.status) && outcome.body.type !== 'truncated') {
      return success(
        outcome,
        options.responseSchema as StandardSchemaV1<unknown, TData> | undefined,
        attempts,
        keyField,
        path,
        method,
      );
    }
    const judged = judge(outcome, { config, method, path, url, sent, attempts, safeToRepeat, deadlineBinds });
    const error: ClientError = { ...judged.error, ...keyField };
    last = error;
    if (!judged.retry)
      return fail({
        ...error,
        message: explainNoRetry(error, method, safeToRepeat, config.fetchMayResend),
      });
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
    if (config.shouldRetry !== undefined) {
      const verdict = await config.shouldRetry({ method, url, attempt: attempts, error, idempotencyKey });
      if (verdict === false) {
        return fail({ ...error, message: `${error.message} (not retried: your shouldRetry rule said no)` });
      }
    }
    config.onRetry?.({ method, url, attempt: attempts, delayMs, fromRetryAfter, error });
    if (config.hooks.beforeRetry.length > 0) {
      await runHooks(config.hooks.beforeRetry, { ...attemptContext, error, delayMs, fromRetryAfter });
    }
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

/** 2xx, and a 304: the answer to a conditional GET that what the caller holds is still current. */
function isSuccess(status: number): boolean {
  return (status >= 200 && status < 300) || status === 304;
}
