// Client options as the caller writes them, and the one place they are checked and filled
// with defaults. Bad options are programmer errors, so this is where the client throws.

import { defaultEtagCacheEntries, EtagCache, type EtagCacheOptions } from './etag-cache.js';
import { type Hooks, mergeHooks, type NormalizedHooks, noHooks } from './hooks.js';
import { fetchMayResendWrites } from './platform.js';
import { type RedirectPolicy, redirectPolicies } from './redirects.js';
import { defaultMaxResponseBytes } from './response-body.js';
import type { ClientError } from './result.js';

/** Per attempt: long enough for a slow write, short enough that a hung socket is noticed. */
export const defaultTimeoutMs = 10_000;
/** Whole call, all attempts and waits included. */
export const defaultDeadlineMs = 30_000;
/** First try plus three retries. */
export const defaultMaxAttempts = 4;
export const defaultBaseDelayMs = 100;
export const defaultMaxDelayMs = 5_000;
/** How many times update() re-reads and re-applies after a 412 before giving up. */
export const defaultMaxConflictRetries = 3;

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Attempts per call, the first included. 1 disables retries. */
  maxAttempts?: number;
  /** Backoff cap for the first retry; doubles per retry (full jitter: a random wait up to the cap). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Your own "should I retry this?" rule. It is asked only when the client's policy already
   * allows the retry, so it can only narrow what is safe, never widen it: `false` stops.
   */
  shouldRetry?: (info: ShouldRetryInfo) => boolean | undefined | Promise<boolean | undefined>;
}

export interface ShouldRetryInfo {
  method: string;
  url: string;
  /** The attempt that failed, 1-based. */
  attempt: number;
  error: ClientError;
  idempotencyKey: string | undefined;
}

export interface RetryInfo {
  method: string;
  url: string;
  /** The attempt that failed, 1-based. */
  attempt: number;
  /** The wait before the next attempt. */
  delayMs: number;
  /** Whether the wait came from the server's `Retry-After`. */
  fromRetryAfter: boolean;
  /** Why the attempt failed (its `attempts` counts attempts so far). */
  error: ClientError;
}

export interface ClientOptions {
  /**
   * Where requests go. A path in it is a prefix: with `https://api.test/v1`, `/users` and `users`
   * are `/v1/users`, and a path that already starts with `/v1/` (a Location) is kept as it is.
   */
  baseUrl: string | URL;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Extra headers on every request (e.g. your own `Authorization` scheme). */
  headers?: Record<string, string>;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  /** Per attempt. */
  timeoutMs?: number;
  /** Whole call: no attempt and no wait outlives it. */
  deadlineMs?: number;
  retry?: RetryOptions;
  /** Called before each wait between attempts; for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
  /** Run before each attempt, after each answer and before each retry (a call's hooks run after these). */
  hooks?: Hooks;
  /** Cap on an answer read as `text`, `bytes` or `stream` (default 10 MiB). */
  maxResponseBytes?: number;
  /**
   * Remember each GET's JSON answer and ETag, send If-None-Match next time, and on 304 return the
   * remembered data (`notModified: true`). Off by default; `true` keeps 100 URLs.
   */
  etagCache?: boolean | EtagCacheOptions;
  /**
   * Generate an `Idempotency-Key` for every POST that has none (default true). Turn off for
   * servers that reject the header; a single call can opt out with `idempotencyKey: false`.
   * A POST without a key is never retried once it may have been sent.
   */
  autoIdempotencyKey?: boolean;
  /**
   * `same-origin` (default) follows only redirects that stay on `baseUrl`'s origin, so headers you
   * configured (an `x-api-key`) never reach another origin; `follow` is fetch's own behaviour,
   * which drops only `Authorization`. Browsers hide a redirect's target from `same-origin`, so
   * there a redirect is a `bad_response` failure unless you choose `follow`.
   */
  redirect?: RedirectPolicy;
}

export interface NormalizedOptions {
  baseUrl: URL;
  headers: Record<string, string>;
  fetch: FetchLike;
  timeoutMs: number;
  deadlineMs: number;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  onRetry: ((info: RetryInfo) => void) | undefined;
  shouldRetry: RetryOptions['shouldRetry'];
  hooks: NormalizedHooks;
  maxResponseBytes: number;
  etagCache: EtagCache | undefined;
  autoIdempotencyKey: boolean;
  redirect: RedirectPolicy;
  /** Whether fetch may repeat a write by itself (browsers), so messages must not promise it ran once. */
  fetchMayResend: boolean;
}

export function normalizeOptions(options: ClientOptions): NormalizedOptions {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createClient: options are required');
  let baseUrl: URL;
  try {
    baseUrl = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`createClient: baseUrl must be an absolute URL, got ${String(options.baseUrl)}`);
  }
  if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:') {
    throw new TypeError(`createClient: baseUrl must be http or https, got ${baseUrl.protocol}`);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  if (options.token !== undefined) {
    if (typeof options.token !== 'string' || options.token === '') {
      throw new TypeError('createClient: token must be a non-empty string');
    }
    headers.authorization = `Bearer ${options.token}`;
  }
  // Checks names and values now, so a bad header is a throw here rather than a "network" failure later.
  new Headers(headers);

  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new TypeError('createClient: fetch must be a function');
  }
  if (options.fetch === undefined && typeof globalThis.fetch !== 'function') {
    throw new TypeError('createClient: no global fetch here; pass options.fetch');
  }

  const retry = options.retry ?? {};
  const normalized: NormalizedOptions = {
    baseUrl,
    headers,
    // Unbound global fetch throws "Illegal invocation" in browsers.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    timeoutMs: positive('createClient: timeoutMs', options.timeoutMs ?? defaultTimeoutMs),
    deadlineMs: positive('createClient: deadlineMs', options.deadlineMs ?? defaultDeadlineMs),
    maxAttempts: positiveInteger('createClient: retry.maxAttempts', retry.maxAttempts ?? defaultMaxAttempts),
    baseDelayMs: nonNegative('createClient: retry.baseDelayMs', retry.baseDelayMs ?? defaultBaseDelayMs),
    maxDelayMs: nonNegative('createClient: retry.maxDelayMs', retry.maxDelayMs ?? defaultMaxDelayMs),
    onRetry: options.onRetry,
    shouldRetry: checkShouldRetry('createClient', retry.shouldRetry),
    hooks: mergeHooks('createClient', noHooks, options.hooks),
    maxResponseBytes: positiveInteger(
      'createClient: maxResponseBytes',
      options.maxResponseBytes ?? defaultMaxResponseBytes,
    ),
    etagCache: etagCacheFrom(options.etagCache),
    autoIdempotencyKey: options.autoIdempotencyKey ?? true,
    redirect: options.redirect ?? 'same-origin',
    fetchMayResend: fetchMayResendWrites(),
  };
  if (!redirectPolicies.includes(normalized.redirect)) {
    throw new TypeError(
      `createClient: redirect must be 'same-origin' or 'follow', got ${String(normalized.redirect)}`,
    );
  }
  if (normalized.onRetry !== undefined && typeof normalized.onRetry !== 'function') {
    throw new TypeError('createClient: onRetry must be a function');
  }
  return normalized;
}

export function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

export function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be zero or more milliseconds, got ${String(value)}`);
  }
  return value;
}

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a whole number of at least 1, got ${String(value)}`);
  }
  return value;
}

export function checkShouldRetry(
  where: string,
  rule: RetryOptions['shouldRetry'],
): RetryOptions['shouldRetry'] {
  if (rule !== undefined && typeof rule !== 'function') {
    throw new TypeError(`${where}: retry.shouldRetry must be a function`);
  }
  return rule;
}

function etagCacheFrom(option: ClientOptions['etagCache']): EtagCache | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return new EtagCache(defaultEtagCacheEntries);
  if (typeof option !== 'object' || option === null) {
    throw new TypeError('createClient: etagCache must be true, false or { maxEntries }');
  }
  const maxEntries = positiveInteger(
    'createClient: etagCache.maxEntries',
    option.maxEntries ?? defaultEtagCacheEntries,
  );
  return new EtagCache(maxEntries);
}
