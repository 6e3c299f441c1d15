// One HTTP attempt: fetch under a per-attempt time limit and the caller's signal, then the body
// read only if its content type says JSON. It reports what happened; it decides nothing.

import type { WireBody } from './native-body.js';
import { classifyNetworkFailure } from './network.js';
import type { FetchLike } from './options.js';
import { maxRedirects, type RedirectPolicy, sameOriginHop } from './redirects.js';
import { cappedStream, ResponseTooLargeError, type ResponseType, readBytes } from './response-body.js';

export interface AttemptRequest {
  fetch: FetchLike;
  url: string;
  method: string;
  headers: Headers;
  body: WireBody | undefined;
  /** Already the smaller of the per-attempt timeout and what is left of the deadline. */
  timeoutMs: number;
  signal: AbortSignal | undefined;
  redirect: RedirectPolicy;
  /** How a successful answer's body is read; error answers are always read as problem JSON. */
  responseType: ResponseType;
  maxResponseBytes: number;
}

export type ParsedBody =
  | { type: 'none' }
  | { type: 'json'; value: unknown }
  /** A success body read as the caller asked (`responseType` text, bytes, stream or response). */
  | { type: 'value'; value: unknown }
  /** Larger than `maxResponseBytes`: not read further. */
  | { type: 'too-large'; limitBytes: number }
  /** A body we refuse to interpret: wrong content type (an HTML error page) or broken JSON. */
  | { type: 'unreadable'; contentType: string | undefined; reason: string }
  /** The status and headers arrived, then the connection broke before the body was complete. */
  | { type: 'truncated'; code: string | undefined; cause: unknown };

export type AttemptOutcome =
  | { type: 'response'; status: number; headers: Headers; body: ParsedBody }
  /** A browser under `redirect: 'manual'` hides a redirect's status and target (an opaque redirect). */
  | { type: 'hidden-redirect' }
  | { type: 'timeout' }
  | { type: 'aborted'; sent: 'no' | 'maybe'; reason: unknown }
  | { type: 'network'; sent: 'no' | 'maybe'; code: string | undefined; cause: unknown };

/** Statuses that never carry a body, whatever the headers say. */
const bodylessStatuses = new Set([204, 205, 304]);

export async function sendAttempt(request: AttemptRequest): Promise<AttemptOutcome> {
  // Our own controller, so we know whether *we* stopped the request (timeout) or the caller did.
  const controller = new AbortController();
  let stoppedBy: 'timeout' | 'caller' | undefined;
  const timer = setTimeout(() => {
    stoppedBy ??= 'timeout';
    controller.abort();
  }, request.timeoutMs);
  const onCallerAbort = (): void => {
    stoppedBy ??= 'caller';
    controller.abort(request.signal?.reason);
  };
  request.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (request.signal?.aborted === true) onCallerAbort();

  let response: Response | undefined;
  try {
    response = await fetchFollowing(request, controller.signal);
    if (response.type === 'opaqueredirect') {
      await response.body?.cancel();
      return { type: 'hidden-redirect' };
    }
    // The body is read under the same limit: a server that sends headers and then stalls is a timeout too.
    const body = await readBody(response, request);
    return { type: 'response', status: response.status, headers: response.headers, body };
  } catch (error) {
    if (stoppedBy === 'timeout') return { type: 'timeout' };
    if (stoppedBy === 'caller') return { type: 'aborted', sent: 'maybe', reason: request.signal?.reason };
    if (response !== undefined) {
      // The status line and headers arrived, so the server acted and said how; keep what it said.
      const { code } = classifyNetworkFailure(error);
      const body: ParsedBody = { type: 'truncated', code, cause: error };
      return { type: 'response', status: response.status, headers: response.headers, body };
    }
    return { type: 'network', ...classifyNetworkFailure(error), cause: error };
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onCallerAbort);
  }
}

/** fetch, following redirects itself under `same-origin` (at most `maxRedirects` hops, as fetch). */
async function fetchFollowing(request: AttemptRequest, signal: AbortSignal): Promise<Response> {
  const origin = new URL(request.url).origin;
  let { url, method, headers, body } = request;
  for (let hop = 0; ; hop++) {
    const init: RequestInit = {
      method,
      headers,
      signal,
      redirect: request.redirect === 'follow' ? 'follow' : 'manual',
    };
    if (body !== undefined) init.body = body;
    // Node's fetch sends a stream only when told it is half-duplex; browsers accept the same flag.
    if (body instanceof ReadableStream) (init as RequestInit & { duplex: 'half' }).duplex = 'half';
    const response = await request.fetch(url, init);
    if (request.redirect === 'follow' || hop >= maxRedirects) return response;
    const next = sameOriginHop(response, url, method, origin);
    // A stream was consumed by the first request; hand the 307/308 back rather than send nothing.
    if (next === undefined || (next.keepsBody && body instanceof ReadableStream)) return response;
    await response.body?.cancel();
    if (!next.keepsBody && body !== undefined) {
      body = undefined;
      headers = new Headers(headers);
      headers.delete('content-type');
    }
    ({ url, method } = next);
  }
}

/** The content type is checked before parsing, so an HTML page never reaches JSON.parse or the caller. */
async function readBody(response: Response, request: AttemptRequest): Promise<ParsedBody> {
  const { responseType, maxResponseBytes } = request;
  const succeeded = response.status >= 200 && response.status < 300;
  // The raw Response is handed over untouched, even a 204's (its headers are the answer).
  if (succeeded && responseType === 'response') return { type: 'value', value: response };
  if (bodylessStatuses.has(response.status) || request.method === 'HEAD') {
    await response.body?.cancel();
    return { type: 'none' };
  }
  if (succeeded && responseType !== 'json') {
    try {
      if (responseType === 'stream')
        return { type: 'value', value: cappedStream(response, maxResponseBytes) };
      const bytes = await readBytes(response, maxResponseBytes);
      return { type: 'value', value: responseType === 'text' ? new TextDecoder().decode(bytes) : bytes };
    } catch (error) {
      if (error instanceof ResponseTooLargeError) return { type: 'too-large', limitBytes: error.limitBytes };
      throw error;
    }
  }
  const contentType = response.headers.get('content-type') ?? undefined;
  const text = await response.text();
  if (text.trim() === '') return { type: 'none' };
  if (!isJson(contentType)) {
    return { type: 'unreadable', contentType, reason: `${contentType ?? 'no content type'} instead of JSON` };
  }
  try {
    return { type: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { type: 'unreadable', contentType, reason: 'malformed JSON' };
  }
}

/** `application/json`, `application/problem+json`, any `+json` suffix (RFC 6839); parameters ignored. */
export function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return essence === 'application/json' || /^application\/[\w.+-]+\+json$/.test(essence);
}
