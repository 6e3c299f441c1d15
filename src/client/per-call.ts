// Per-call overrides of the client's timing, retry and hooks options, checked as createClient
// checks its own and folded into one effective configuration for that call.

import type { CallControl } from './call-options.js';
import { mergeHooks } from './hooks.js';
import {
  checkShouldRetry,
  type NormalizedOptions,
  nonNegative,
  positive,
  positiveInteger,
} from './options.js';

/** The client's configuration with this call's overrides applied (the same object when there are none). */
export function configForCall(
  config: NormalizedOptions,
  options: CallControl | undefined,
): NormalizedOptions {
  if (options === undefined) return config;
  const { timeoutMs, deadlineMs, retry, hooks, maxResponseBytes } = options;
  // The common call overrides nothing: no copy, no checks, nothing added to its cost.
  if (
    timeoutMs === undefined &&
    deadlineMs === undefined &&
    retry === undefined &&
    hooks === undefined &&
    maxResponseBytes === undefined
  ) {
    return config;
  }
  const where = 'call options';
  const effective: NormalizedOptions = { ...config, hooks: mergeHooks(where, config.hooks, hooks) };
  if (timeoutMs !== undefined) effective.timeoutMs = positive(`${where}: timeoutMs`, timeoutMs);
  if (deadlineMs !== undefined) effective.deadlineMs = positive(`${where}: deadlineMs`, deadlineMs);
  if (maxResponseBytes !== undefined) {
    effective.maxResponseBytes = positiveInteger(`${where}: maxResponseBytes`, maxResponseBytes);
  }
  if (retry !== undefined) {
    if (typeof retry !== 'object' || retry === null) throw new TypeError(`${where}: retry must be an object`);
    if (retry.maxAttempts !== undefined) {
      effective.maxAttempts = positiveInteger(`${where}: retry.maxAttempts`, retry.maxAttempts);
    }
    if (retry.baseDelayMs !== undefined) {
      effective.baseDelayMs = nonNegative(`${where}: retry.baseDelayMs`, retry.baseDelayMs);
    }
    if (retry.maxDelayMs !== undefined) {
      effective.maxDelayMs = nonNegative(`${where}: retry.maxDelayMs`, retry.maxDelayMs);
    }
    const rule = checkShouldRetry(where, retry.shouldRetry);
    // A call's rule replaces the client's: both only narrow, and the call knows its own case.
    if (rule !== undefined) effective.shouldRetry = rule;
  }
  return effective;
}
