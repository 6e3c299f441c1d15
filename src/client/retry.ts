// The retry policy in one place: which failures may be repeated without a second effect
// (PROTOCOL rule 27), how long to wait (capped exponential backoff, full jitter, Retry-After),
// and how the `sent` facts of several attempts add up.

import type { Sent } from './result.js';

/** Methods whose repetition cannot add a second effect (RFC 9110 §9.2.2). */
const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/**
 * Statuses worth another attempt, and whether the server is saying it did not act.
 * 429 is a refusal before the handler ran (PROTOCOL rule 11), so even an unkeyed POST may repeat it.
 * 502/504 come from a gateway whose upstream may have acted; 503 and 408 may come from one too.
 * 500 is not retried: it is usually a bug that repeats, and the caller should see it at once.
 */
const retryableStatuses = new Map<number, 'refused' | 'unknown'>([
  [408, 'unknown'],
  [429, 'refused'],
  [502, 'unknown'],
  [503, 'unknown'],
  [504, 'unknown'],
]);

/**
 * True when repeating the request cannot create a second effect. A PATCH with If-Match is: once
 * it applied, the ETag changed, so a repeat is refused with 412 instead of applied twice.
 */
export function isSafeToRepeat(method: string, hasIdempotencyKey: boolean, hasIfMatch = false): boolean {
  const upper = method.toUpperCase();
  return hasIdempotencyKey || idempotentMethods.has(upper) || (upper === 'PATCH' && hasIfMatch);
}

/**
 * Whether a failed attempt may be repeated.
 * @param inUse a 409 whose problem type is `idempotency-key-in-use`: the first request is still running.
 */
export function mayRetryFailure(
  failure: { status: number; inUse: boolean } | { sent: Sent },
  safeToRepeat: boolean,
): boolean {
  if ('sent' in failure) return failure.sent === 'no' || (failure.sent === 'maybe' && safeToRepeat);
  if (failure.inUse) return safeToRepeat;
  const meaning = retryableStatuses.get(failure.status);
  if (meaning === 'refused') return true;
  return meaning === 'unknown' && safeToRepeat;
}

/**
 * Full jitter (a uniformly random wait up to the cap) spreads retries from many clients that
 * failed together, instead of sending them back in synchronized waves.
 * @param retryIndex 0 for the wait before the second attempt.
 */
export function backoffDelayMs(
  retryIndex: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  // Exponent capped so 2 ** n stays finite for absurd attempt counts.
  const capMs = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(retryIndex, 30));
  return Math.floor(random() * capMs);
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) is either whole seconds or an HTTP date. Returns the wait in
 * milliseconds (0 for a date in the past), or undefined when absent or unreadable.
 */
export function parseRetryAfterMs(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only accept something that looks like a date: Date.parse also accepts bare numbers like "1.5".
  if (!/[A-Za-z]/.test(trimmed)) return undefined;
  const atMs = Date.parse(trimmed);
  if (Number.isNaN(atMs)) return undefined;
  return Math.max(0, atMs - nowMs);
}

/**
 * What the caller learns about side effects across all attempts: the last answer from the
 * server wins; otherwise one attempt that may have been delivered makes the whole call "maybe".
 */
export function combineSent(previous: Sent, latest: Sent): Sent {
  if (latest === 'yes') return 'yes';
  if (latest === 'maybe' || previous === 'maybe') return 'maybe';
  return previous === 'yes' ? 'yes' : 'no';
}

/**
 * `sent` for an attempt that got an answer. A gateway's 502/504 (and a 408 or 503, which may come
 * from one) says nothing about whether the origin acted, so those stay `maybe`.
 */
export function sentForStatus(status: number): Sent {
  return retryableStatuses.get(status) === 'unknown' ? 'maybe' : 'yes';
}
