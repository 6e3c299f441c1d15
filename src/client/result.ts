// What every client call resolves to: a success or a typed failure that says what happened,
// whether the server may have acted (`sent`), and whether repeating the call is safe.

import type { OperationRef } from './operation.js';

/** Every way a call can fail. HTTP and network outcomes never throw; they become one of these. */
export const errorKinds = [
  'invalid_input',
  'validation',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'precondition_failed',
  'precondition_required',
  'idempotency_key_reuse',
  'in_use',
  'rate_limited',
  'server',
  'timeout',
  'network',
  'bad_response',
  'aborted',
] as const;

export type ErrorKind = (typeof errorKinds)[number];

/**
 * Whether the server may have acted on the request.
 * - `no`: it never left this machine (DNS failure, connection refused, invalid input).
 * - `maybe`: it may have reached the server and taken effect; the answer was lost.
 * - `yes`: the server received it and answered; its answer (status, problem) says what it did.
 */
export type Sent = 'no' | 'maybe' | 'yes';

/** A field-level complaint, from local validation or from a server's 422 problem. */
export interface FieldError {
  /** JSON Pointer (RFC 6901) into the request body, `''` for the body itself. */
  pointer: string;
  detail: string;
}

/** An RFC 9457 problem body as the server sent it (extension members kept). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface ClientError {
  kind: ErrorKind;
  /** For humans: what happened and what to do. Never parse it; match on `kind` and `problem.type`. */
  message: string;
  /** The HTTP status of the last response, when there was one. */
  status?: number;
  /** The problem body of the last response, when it sent one. */
  problem?: Problem;
  /** Field errors: local schema issues (`invalid_input`) or the server's `errors` (`validation`). */
  fieldErrors?: FieldError[];
  sent: Sent;
  /**
   * True when repeating the same call later is safe and may succeed. For a keyed POST that
   * means repeating it with the same `idempotencyKey` (given below).
   */
  retryable: boolean;
  /** How long the server asked to wait before trying again, when it said (`Retry-After`). */
  retryAfterMs?: number;
  /** The key this call sent, so a later manual retry can reuse it. */
  idempotencyKey?: string;
  /**
   * HTTP requests this client made (0 when nothing was sent, e.g. invalid input). A browser may
   * re-send a request on its own (a reset keep-alive connection); those are not counted.
   */
  attempts: number;
  /** The underlying exception for network failures, for logs. */
  cause?: unknown;
  /** `Location` of the last response, when it sent one (e.g. a 201 whose body was cut off). */
  location?: string;
  /** `ETag` of the last response, when it sent one. */
  etag?: string;
}

export interface Success<TData> {
  ok: true;
  status: number;
  /** The parsed JSON body; `undefined` when the response had none (204, 304). */
  data: TData;
  /** The `Location` header as sent (usually a path such as `/users/42`). */
  location: string | undefined;
  /** The `ETag` header as sent, quotes included; pass it back as `ifMatch`. */
  etag: string | undefined;
  /** True for a 304 answer to a conditional GET: what you hold (`ifNoneMatch`) is still current; `data` is undefined. */
  notModified: boolean;
  /** True when the server replayed the stored answer to an earlier attempt with the same key. */
  replayed: boolean;
  attempts: number;
  /** The key this call sent, if any. */
  idempotencyKey?: string;
  headers: Headers;
  /** On a 202 Accepted: the operation doing the work, to follow with `client.poll()`. */
  operation?: OperationRef;
}

export interface Failure {
  ok: false;
  error: ClientError;
}

export type Result<TData> = Success<TData> | Failure;

/** `/users/123` → `User 123`; anything else → `The resource at <path>`. Used in human messages. */
export function describeResource(path: string): string {
  const match = /^\/?([A-Za-z][\w-]*?)s?\/([^/?#]+)\/?(?:[?#].*)?$/.exec(pathOf(path));
  if (match === null) return `The resource at ${pathOf(path)}`;
  const noun = match[1] ?? '';
  return `${noun.charAt(0).toUpperCase()}${noun.slice(1)} ${decodeURIComponent(match[2] ?? '')}`;
}

function pathOf(pathOrUrl: string): string {
  try {
    const url = new URL(pathOrUrl);
    return url.pathname;
  } catch {
    return pathOrUrl;
  }
}

/** Generic, human wording per kind; a server's problem `detail` is preferred where it is written for people. */
export function defaultMessage(kind: ErrorKind, status: number | undefined, path: string): string {
  const resource = describeResource(path);
  switch (kind) {
    case 'invalid_input':
      return 'The input is not valid; nothing was sent.';
    case 'validation':
      return 'The server rejected the input as invalid.';
    case 'unauthorized':
      return 'Not signed in, or the credentials were not accepted. Sign in and try again.';
    case 'forbidden':
      return 'These credentials are not allowed to do this.';
    case 'not_found':
      return `${resource} was not found.`;
    case 'conflict':
      return `${resource} conflicts with the current state on the server.`;
    case 'precondition_failed':
      return `${resource} was changed by someone else — reload and try again`;
    case 'precondition_required':
      return `${resource} can only be changed with the version you read (If-Match); read it first.`;
    case 'idempotency_key_reuse':
      return 'This idempotency key was already used for a different request; use a new key for new input.';
    case 'in_use':
      return 'The same request is still being processed; try again shortly with the same key.';
    case 'rate_limited':
      return 'Too many requests; wait and try again.';
    case 'server':
      return `The server failed to handle the request (HTTP ${status ?? '5xx'}).`;
    case 'timeout':
      return 'The server did not answer in time.';
    case 'network':
      return 'The network request failed.';
    case 'bad_response':
      return `The server sent a response that could not be read${status === undefined ? '' : ` (HTTP ${status})`}.`;
    case 'aborted':
      return 'The call was cancelled.';
  }
}

export function fail(error: ClientError): Failure {
  return { ok: false, error };
}

/** `/items/0/sku: must be a string`, for one-line messages. */
export function describeFieldError(error: FieldError): string {
  const field = error.pointer === '' ? 'input' : error.pointer.slice(1).replaceAll('/', '.');
  return `${field}: ${error.detail}`;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}
