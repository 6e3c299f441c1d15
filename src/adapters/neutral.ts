// What the Express and Hono adapters share, framework-free: request bodies (accepted media
// types, the size limit, bytes → parsed value; failures as 413, 415, 400 problems) and the
// 404 / 405 + Allow problems, so both decide them the same way.
import { BadRequestError, ProblemError } from '../http/problem.js';
import {
  type CommittedResponse,
  createLifecycle,
  type HandledResponse,
  type HeaderValues,
  type IdempotencyMode,
  type LifecycleOptions,
  type LifecycleOutcome,
  type NeutralRequest,
  type RequestContext,
  type RequestLifecycle,
} from '../idempotency/lifecycle.js';
import type { ResponseDraft } from '../idempotency/response.js';
import type { StoredResponse } from '../idempotency/store.js';

/** Bodies over this many bytes are refused with 413 unless a route says otherwise. */
export const defaultBodyLimitBytes = 1024 * 1024;

/** Media types a route accepts unless it says otherwise. */
export const defaultAcceptedMediaTypes = ['application/json'] as const;

/**
 * A media type a route accepts, and what its handler gets as `body`:
 * - `application/json` (and any `+json` type): the parsed value;
 * - `application/x-www-form-urlencoded`: an object of string fields (a repeated field is the last one);
 * - `text/plain` (or any `text/*`): the string, decoded as UTF-8 (invalid UTF-8 is 400);
 * - anything else (e.g. `application/octet-stream`, or `*\/*` for every type): the bytes.
 */
export type AcceptedMediaType = string;

export interface BodyOptions {
  /** Media types the route accepts; another one is 415. A request without a body is always accepted. */
  accepts?: readonly AcceptedMediaType[];
  /** Most bytes a body may have; a larger one is 413. */
  limitBytes?: number;
}

export interface NormalisedBodyOptions {
  accepts: readonly string[];
  limitBytes: number;
}

export function normaliseBodyOptions(
  options: BodyOptions = {},
  base?: NormalisedBodyOptions,
): NormalisedBodyOptions {
  const limitBytes = options.limitBytes ?? base?.limitBytes ?? defaultBodyLimitBytes;
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
    throw new TypeError(`limitBytes must be a whole number of bytes ≥ 0, got ${limitBytes}`);
  }
  const accepts = (options.accepts ?? base?.accepts ?? defaultAcceptedMediaTypes).map((type) =>
    type.trim().toLowerCase(),
  );
  if (accepts.length === 0) throw new TypeError('accepts needs at least one media type');
  return { accepts, limitBytes };
}

export class ContentTooLargeError extends ProblemError {
  override name = 'ContentTooLargeError';
  constructor(limitBytes?: number) {
    super({
      status: 413,
      type: 'content-too-large',
      title: 'Content too large',
      detail:
        limitBytes === undefined
          ? 'The request body is too large for this route.'
          : `The request body is too large: this route accepts at most ${limitBytes} bytes.`,
    });
  }
}

export class UnsupportedMediaTypeError extends ProblemError {
  override name = 'UnsupportedMediaTypeError';
  constructor(received: string, accepts: readonly string[]) {
    super({
      status: 415,
      type: 'unsupported-media-type',
      title: 'Unsupported media type',
      detail: `This route does not accept ${received || 'a body without Content-Type'}; send ${accepts.join(' or ')}.`,
      headers: { 'accept-post': accepts.join(', ') },
    });
  }
}

/** The media type of a Content-Type value, lower-case, without parameters; '' when absent. */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

/** Refuses a declared Content-Length over the limit before a byte is read. */
export function checkDeclaredLength(contentLength: string | undefined, limitBytes: number): void {
  if (contentLength === undefined) return;
  const length = Number(contentLength);
  if (Number.isFinite(length) && length > limitBytes) throw new ContentTooLargeError(limitBytes);
}

/** One array of these parts' bytes. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const body = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** What the handler gets for these bytes and this Content-Type, or the 400/415 problem. */
export function parseBody(
  bytes: Uint8Array,
  contentType: string | undefined,
  accepts: readonly string[],
): unknown {
  const type = mediaTypeOf(contentType);
  if (bytes.byteLength === 0 && type === '') return undefined;
  if (!accepts.some((accepted) => matches(accepted, type)))
    throw new UnsupportedMediaTypeError(type, accepts);
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(bytes);
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(decodeUtf8(bytes, 'form')));
  }
  if (type.startsWith('text/')) return decodeUtf8(bytes, 'text');
  return bytes;
}

function matches(accepted: string, type: string): boolean {
  if (accepted === '*/*') return true;
  if (accepted.endsWith('/*')) return type.startsWith(accepted.slice(0, -1));
  if (accepted === 'application/json') return type === 'application/json' || type.endsWith('+json');
  return accepted === type;
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new BadRequestError(`The ${what} body is not valid UTF-8.`, 'invalid-body');
  }
}

function parseJson(bytes: Uint8Array): unknown {
  const text = decodeUtf8(bytes, 'JSON');
  if (text.trim() === '') throw new BadRequestError('The JSON body is empty.', 'invalid-body');
  try {
    // `__proto__` as a key would become an own property that spreads into prototypes later.
    return JSON.parse(text, (key, value) => {
      if (key === '__proto__') throw new SyntaxError('"__proto__" is not an accepted key');
      return value;
    });
  } catch (error) {
    throw new BadRequestError(`The body is not valid JSON: ${(error as Error).message}.`, 'invalid-body');
  }
}

/** A 405 problem for a known path whose routes answer only `allowed` (RFC 9110 §15.5.6). */
export class MethodNotAllowedError extends ProblemError {
  override name = 'MethodNotAllowedError';
  constructor(method: string, path: string, allowed: readonly string[]) {
    super({
      status: 405,
      type: 'method-not-allowed',
      title: 'Method not allowed',
      detail: `${path} does not answer ${method}; it answers ${allowed.join(', ')}.`,
      headers: { allow: allowed.join(', ') },
    });
  }
}

/** Sorted, deduplicated, with HEAD wherever GET is (every framework here answers it). */
export function allowHeaderMethods(methods: Iterable<string>): string[] {
  const set = new Set([...methods].map((method) => method.toUpperCase()));
  if (set.has('GET')) set.add('HEAD');
  return [...set].sort();
}

export function notFoundError(method: string, path: string): ProblemError {
  return new ProblemError({
    status: 404,
    type: 'not-found',
    title: 'Not found',
    detail: `No route ${method} ${path}.`,
  });
}

/**
 * What an Express or Hono handler gets: the lifecycle's context (its key, `idFor`, `commit`,
 * and the named `step` / `call` that resume on a retry) and the body, read once.
 */
export interface AdapterContext<Tx> extends RequestContext<Tx> {
  /** The parsed body (see `AcceptedMediaType`); undefined when the request has none. */
  readonly body: unknown;
  /** The body's bytes exactly as received (what the fingerprint is computed from). */
  readonly rawBody: Uint8Array;
}

export type AdapterHandler<Tx, Request> = (
  context: AdapterContext<Tx>,
  request: Request,
) => ResponseDraft | CommittedResponse | Promise<ResponseDraft | CommittedResponse>;

export interface AdapterRouteOptions extends BodyOptions {
  mode: IdempotencyMode;
}

/** One request as an adapter hands it over: what it knows now, and how to read the rest. */
export interface AdapterRequest {
  method: string;
  route: string;
  path: string;
  /** Lower-case names; a repeated key header as an array. */
  headers: HeaderValues;
  scope: () => string;
  /** Reads the body's bytes, refusing more than `limitBytes` with ContentTooLargeError. */
  readBody: (limitBytes: number) => Promise<Uint8Array>;
}

/**
 * The steps before the lifecycle, in the order a client should learn about them: the scope
 * (who is calling), the key, then the body (413, 415, 400). None of them reaches the handler,
 * so none is stored (PROTOCOL rule 11). Then the lifecycle runs the handler. Never throws.
 */
export async function runAdapterRequest<Tx, Request>(
  lifecycle: RequestLifecycle<Tx>,
  input: AdapterRequest,
  route: { mode: IdempotencyMode } & NormalisedBodyOptions,
  handler: AdapterHandler<Tx, Request>,
  request: Request,
): Promise<HandledResponse> {
  let scope: string;
  let key: string | undefined;
  let rawBody: Uint8Array;
  let body: unknown;
  try {
    scope = input.scope();
    key = lifecycle.readKey(input.headers, route.mode);
    checkDeclaredLength(single(input.headers['content-length']), route.limitBytes);
    rawBody = await input.readBody(route.limitBytes);
    body = parseBody(rawBody, single(input.headers['content-type']), route.accepts);
  } catch (error) {
    const response = lifecycle.problem(error);
    return {
      response,
      outcome: 'refused',
      key: undefined,
      recordId: undefined,
      ...(response.status >= 500 ? { error } : {}),
    };
  }
  const neutral: NeutralRequest = {
    method: input.method,
    route: input.route,
    path: input.path,
    headers: input.headers,
    body: rawBody,
    scope,
  };
  return lifecycle.handle(neutral, { mode: route.mode, key }, (context) => {
    // On the context's prototype chain, so its methods keep working whatever their shape.
    const withBody: AdapterContext<Tx> = Object.assign(Object.create(context) as RequestContext<Tx>, {
      body,
      rawBody,
    });
    return handler(withBody, request);
  });
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** What `createExpressIdempotency` and `createHonoIdempotency` take, for their request type. */
export type AdapterOptions<Tx, Request> = (LifecycleOptions<Tx> | { lifecycle: RequestLifecycle<Tx> }) & {
  /**
   * Who is calling (tenant, account, principal); keys never replay across scopes. Throw a
   * ProblemError (e.g. a 400 or 401) to refuse the request before anything runs.
   */
  scope: (request: Request) => string;
  /** Defaults for every route: accepted media types (JSON) and the body limit (1 MiB). */
  body?: BodyOptions;
  /** Called once per wrapped request with what the lifecycle did (for metrics). */
  onOutcome?: (outcome: LifecycleOutcome, request: Request) => void;
  /** Called with every failure answered as 5xx (the client only sees a plain 500). Default: console.error. */
  onError?: (error: unknown, request: Request) => void;
};

export type RouteSettings = { mode: IdempotencyMode } & NormalisedBodyOptions;

/** What both adapters build once from their options, and run per request. */
export interface RouteRunner<Tx, Request> {
  readonly lifecycle: RequestLifecycle<Tx>;
  /** A route's settings: its mode, and its body options over the adapter's defaults. */
  settings(mode: IdempotencyMode | AdapterRouteOptions): RouteSettings;
  /** Runs one request (see `runAdapterRequest`), reports it, and returns the answer to write. */
  run(
    input: AdapterRequest,
    settings: RouteSettings,
    handler: AdapterHandler<Tx, Request>,
    request: Request,
  ): Promise<StoredResponse>;
}

export function createRouteRunner<Tx, Request>(
  options: AdapterOptions<Tx, Request>,
  logToConsole: (error: unknown, request: Request) => void,
): RouteRunner<Tx, Request> {
  const lifecycle = 'lifecycle' in options ? options.lifecycle : createLifecycle(options);
  const defaults = normaliseBodyOptions(options.body);
  const { onOutcome } = options;
  const onError = options.onError ?? logToConsole;
  return {
    lifecycle,
    settings(mode) {
      const routeOptions = typeof mode === 'string' ? { mode } : mode;
      return { mode: routeOptions.mode, ...normaliseBodyOptions(routeOptions, defaults) };
    },
    async run(input, settings, handler, request) {
      const handled = await runAdapterRequest(lifecycle, input, settings, handler, request);
      onOutcome?.(handled.outcome, request);
      if (handled.error !== undefined) onError(handled.error, request);
      return handled.response;
    },
  };
}
