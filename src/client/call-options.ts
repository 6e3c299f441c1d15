// What a caller can pass to one call of the client (get, post, put, delete, update), beside the
// client-wide options in options.ts.

import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Hooks } from './hooks.js';
import type { RetryOptions } from './options.js';
import type { ResponseType } from './response-body.js';

export type Query = Record<string, string | number | boolean | undefined>;

/** What one call may change of the client's timing, retries and hooks. */
export interface CallControl {
  /** Per attempt, for this call only. */
  timeoutMs?: number;
  /** This whole call, all attempts and waits included. */
  deadlineMs?: number;
  /** Replaces the named retry settings for this call; `shouldRetry` can only narrow the policy. */
  retry?: RetryOptions;
  /** Run after the client's hooks, for this call only. */
  hooks?: Hooks;
  /** Cap on a `text`, `bytes` or `stream` answer (default 10 MiB). */
  maxResponseBytes?: number;
}

export interface CallOptions<TData = unknown> extends CallControl {
  signal?: AbortSignal;
  /** Extra headers for this call; they override the client's. */
  headers?: Record<string, string>;
  /** Appended to the URL's query string; `undefined` values are left out. */
  query?: Query;
  /**
   * How a success body becomes `data`: `json` (default, content type checked), `text` (a
   * string), `bytes` (a Uint8Array), `stream` (a ReadableStream), or `response` (the raw
   * Response, unread). Error answers are always read as problem JSON.
   */
  responseType?: ResponseType;
  /** Checks the success body; a mismatch is `bad_response`, so `data` is never wrongly typed. */
  responseSchema?: StandardSchemaV1<unknown, TData>;
}

export interface GetOptions<TData = unknown> extends CallOptions<TData> {
  /**
   * The ETag(s) of the copy you hold: a 304 then succeeds with `notModified: true` and no data,
   * so you keep using your copy.
   */
  ifNoneMatch?: string;
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
   * retried when it certainly never left (connection refused, DNS failure). In a browser only a
   * key protects a POST: the browser itself re-sends a request when a reused connection is reset,
   * out of this client's sight, so `false` there means it may run more than once.
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

export interface PatchOptions<TData = unknown> extends WriteOptions<TData> {
  /**
   * The ETag you read: apply only to that version. It also makes the PATCH safe to retry (a
   * repeat after it applied meets a new ETag and is refused with 412, not applied twice).
   */
  ifMatch?: string;
  /**
   * Your key, for servers that honour Idempotency-Key on PATCH (none is generated for a PATCH).
   * Without a key or `ifMatch`, a PATCH is retried only when it certainly never left.
   */
  idempotencyKey?: string | false;
}

export type HeadOptions = Omit<GetOptions, 'responseType' | 'responseSchema'>;

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
// `void` is deliberate: a callback that only mutates its argument returns void, and TypeScript
// does not let `void` stand in for `undefined`, so without it the documented "mutate it" form fails.
// biome-ignore lint/suspicious/noConfusingVoidType: void is the return type of a mutating callback.
export type Change<TData> = (current: TData) => TData | undefined | void | Promise<TData | undefined | void>;
