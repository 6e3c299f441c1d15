// One logical call made ready to send, once for all its attempts: the URL, the headers, one
// idempotency key, and the body validated and encoded. Programmer errors throw here.

import { encodeBody, UnsendableBodyError, validateInput } from './body.js';
import type { PostOptions, Query, WriteOptions } from './call-options.js';
import { assertIdempotencyKey, newIdempotencyKey } from './keys.js';
import { isNativeBody, type WireBody } from './native-body.js';
import type { NormalizedOptions } from './options.js';
import { type ResponseType, responseTypes } from './response-body.js';
import { describeFieldError, type Failure, fail } from './result.js';

export interface Call {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body: unknown;
  /** `ifNoneMatch` is an ETag list on reads, and only `*` (create only) on writes. */
  options: WriteOptions & PostOptions & { ifMatch?: string; ifNoneMatch?: string };
}

export interface PreparedRequest {
  url: string;
  /** Sent by every attempt; the attempt loop only sets `x-retry-count` on it. */
  headers: Headers;
  body: WireBody | undefined;
  signal: AbortSignal | undefined;
  idempotencyKey: string | undefined;
  /** Spread into every result, so a caller can retry by hand with the same key. */
  keyField: { idempotencyKey?: string };
}

/** The request every attempt sends, or the failure that means nothing is sent at all. */
export async function prepareCall(
  config: NormalizedOptions,
  call: Call,
): Promise<{ ok: true; request: PreparedRequest } | Failure> {
  const { method, path, options } = call;
  const url = resolveUrl(config, path, options.query);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError('signal must be an AbortSignal');

  if (options.responseType !== undefined && !responseTypes.includes(options.responseType)) {
    throw new TypeError(
      `responseType must be one of ${responseTypes.join(', ')}, got ${String(options.responseType)}`,
    );
  }
  const headers = new Headers(config.headers);
  for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
  // A caller reading text or bytes says what it wants in its own Accept; JSON is ours to ask for.
  if (options.responseType === undefined || options.responseType === 'json' || !headers.has('accept')) {
    headers.set('accept', acceptFor(options.responseType));
  }
  if (options.ifMatch !== undefined) headers.set('if-match', options.ifMatch);
  if (options.ifNoneMatch !== undefined) {
    const isRead = method === 'GET' || method === 'HEAD';
    if (!isRead && options.ifNoneMatch !== '*') {
      throw new TypeError("ifNoneMatch on a write only supports '*' (create only)");
    }
    headers.set('if-none-match', options.ifNoneMatch);
  }

  // The key exists before the first attempt, so every retry carries the same one.
  let idempotencyKey = headers.get('idempotency-key') ?? undefined;
  const takesKey = method === 'POST' || method === 'PATCH';
  if (takesKey && options.idempotencyKey !== undefined && options.idempotencyKey !== false) {
    idempotencyKey = options.idempotencyKey;
  }
  if (idempotencyKey !== undefined) assertIdempotencyKey(idempotencyKey);
  // Only POST gets a key of its own: a PATCH is keyed when the caller says its server honours keys there.
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
    if (payload instanceof URLSearchParams || isNativeBody(payload)) {
      throw new TypeError(
        'schema checks plain values only; pass a plain object (with form: true for a form)',
      );
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
  let encoded: Awaited<ReturnType<typeof encodeBody>>;
  try {
    encoded = await encodeBody(payload, {
      form: options.form === true,
      contentType: headers.get('content-type') ?? undefined,
      mayRepeat: config.maxAttempts > 1,
    });
  } catch (error) {
    if (!(error instanceof UnsendableBodyError)) throw error;
    return fail({
      kind: 'invalid_input',
      message: `The body cannot be sent: ${error.message}. Nothing was sent.`,
      sent: 'no',
      retryable: false,
      attempts: 0,
      ...keyField,
    });
  }
  if (encoded.contentType !== undefined) headers.set('content-type', encoded.contentType);

  // A stream body (streamed) is only ever sent by a call of one attempt (mayRepeat above).
  return { ok: true, request: { url, headers, body: encoded.body, signal, idempotencyKey, keyField } };
}

export function resolveUrl(config: NormalizedOptions, path: string, query: Query | undefined): string {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
  const url = new URL(underBasePath(config.baseUrl, path), config.baseUrl);
  // The client's credentials go to its own origin only; a Location elsewhere must be fetched by hand.
  if (url.origin !== config.baseUrl.origin) {
    throw new TypeError(`path ${path} leaves the client's origin ${config.baseUrl.origin}`);
  }
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.append(name, String(value));
  }
  return url.href;
}

/**
 * A `baseUrl` with a path (`https://api.test/v1`) is a prefix, as ky's `prefixUrl` is: `/users`
 * and `users` both mean `/v1/users`, where WHATWG resolution would drop the `/v1`. A path that
 * already starts with the prefix (a `Location` such as `/v1/users/42`) and a full URL stay as they are.
 */
function underBasePath(baseUrl: URL, path: string): string {
  const prefix = baseUrl.pathname.replace(/\/+$/, '');
  if (prefix === '' || /^[a-z][a-z\d+.-]*:/i.test(path) || path.startsWith('//')) return path;
  if (path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`)) return path;
  return `${prefix}/${path.replace(/^\/+/, '')}`;
}

/** Problem JSON is always accepted, so an error answer can still be read. */
function acceptFor(responseType: ResponseType | undefined): string {
  if (responseType === undefined || responseType === 'json')
    return 'application/json, application/problem+json';
  return '*/*, application/problem+json';
}
