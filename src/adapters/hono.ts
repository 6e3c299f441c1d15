// `retrysafe/hono`: Hono 4 over the request lifecycle, on any runtime Hono runs on (on Node
// through @hono/node-server). It only translates: a wrapped route's Request becomes a neutral
// request (its body read once, here), the handler runs inside `lifecycle.handle`, and the
// neutral answer becomes a Response. Every decision is the lifecycle's.
//
//   const retrysafe = createHonoIdempotency({ store, scope: (c) => c.req.header('x-account-id') ?? '' });
//   app.post('/payments', retrysafe.route('required', (ctx, c) =>
//     ctx.commit((db) => { insert(db, ctx.body); return { status: 201, body: { … } }; })));
//   app.notFound(problemNotFound(app)); // 404, or 405 + Allow for a known path
//   app.onError(problemOnError());
//
// Read the body from `ctx.body` (parsed) or `ctx.rawBody` (bytes), not from `c.req`: the
// adapter has read the stream to fingerprint it.
import type { Context, ErrorHandler, Handler, Hono, NotFoundHandler } from 'hono';
import { routePath } from 'hono/route';
import { TrieRouter } from 'hono/router/trie-router';
import { ProblemError } from '../http/problem.js';
import type { HeaderValues, IdempotencyMode, RequestLifecycle } from '../idempotency/lifecycle.js';
import { problemResponse, serverErrorResponse } from '../idempotency/response.js';
import type { StoredResponse } from '../idempotency/store.js';
import {
  type AdapterHandler,
  type AdapterOptions,
  type AdapterRouteOptions,
  allowHeaderMethods,
  ContentTooLargeError,
  concatBytes,
  createRouteRunner,
  MethodNotAllowedError,
  notFoundError,
} from './neutral.js';

export {
  defaultIdempotencyHeader,
  type IdempotencyMode,
  replayedHeaderNames,
  type StepCall,
} from '../idempotency/lifecycle.js';
export {
  type AcceptedMediaType,
  type AdapterContext,
  type AdapterRouteOptions,
  type BodyOptions,
  ContentTooLargeError,
  defaultAcceptedMediaTypes,
  defaultBodyLimitBytes,
  MethodNotAllowedError,
  UnsupportedMediaTypeError,
} from './neutral.js';

export type HonoIdempotencyOptions<Tx> = AdapterOptions<Tx, Context>;

export type HonoRouteHandler<Tx> = AdapterHandler<Tx, Context>;

export interface HonoIdempotency<Tx> {
  readonly lifecycle: RequestLifecycle<Tx>;
  /**
   * A Hono handler for one route: reads the body once, runs `handler(ctx, c)` through the
   * lifecycle under `mode`, and answers with its Response. Return a draft, or what
   * `ctx.commit` returned when the route writes.
   */
  route(mode: IdempotencyMode | AdapterRouteOptions, handler: HonoRouteHandler<Tx>): Handler;
}

export function createHonoIdempotency<Tx = never>(options: HonoIdempotencyOptions<Tx>): HonoIdempotency<Tx> {
  const runner = createRouteRunner(options, logToConsole);
  const { lifecycle } = runner;
  const { scope } = options;

  return {
    lifecycle,
    route(mode, handler) {
      const settings = runner.settings(mode);
      return async function retrysafeRoute(c: Context) {
        const response = await runner.run(
          {
            method: c.req.method,
            route: routePath(c),
            path: c.req.path,
            headers: neutralHeaders(c, lifecycle.headerName),
            scope: () => scope(c),
            readBody: (limitBytes) => readBody(c, limitBytes),
          },
          settings,
          handler,
          c,
        );
        return toResponse(response);
      };
    },
  };
}

/** A neutral answer as a Response, byte for byte. */
export function toResponse(response: StoredResponse): Response {
  const bodyless = response.status === 204 || response.status === 304 || response.body.byteLength === 0;
  const body = bodyless ? null : (response.body as Uint8Array<ArrayBuffer>);
  return new Response(body, { status: response.status, headers: response.headers });
}

/**
 * For `app.notFound(…)`: a 404 problem; given the app, a path one of its routes answers with
 * another method is 405 with `Allow` (PROTOCOL rule 30). Pass the app whose routes count,
 * after the routes are declared or before: they are read on the first miss after a change.
 */
export function problemNotFound(app?: Pick<Hono, 'routes'>): NotFoundHandler {
  let known: { count: number; router: TrieRouter<string> } | undefined;
  const allowedFor = (path: string): Set<string> => {
    if (app === undefined) return new Set();
    if (known?.count !== app.routes.length) {
      const router = new TrieRouter<string>();
      // Only method routes: `use` and `all` entries answer every method, so they never make a 405.
      for (const route of app.routes) if (route.method !== 'ALL') router.add('GET', route.path, route.method);
      known = { count: app.routes.length, router };
    }
    const [matched] = known.router.match('GET', path);
    return new Set(matched.map(([method]) => method));
  };
  return function retrysafeNotFound(c) {
    const allowed = allowedFor(c.req.path);
    if (allowed.size > 0 && !allowed.has(c.req.method)) {
      return toResponse(
        problemResponse(new MethodNotAllowedError(c.req.method, c.req.path, allowHeaderMethods(allowed))),
      );
    }
    return toResponse(problemResponse(notFoundError(c.req.method, c.req.path)));
  };
}

/**
 * For `app.onError(…)`: a ProblemError as its problem, Hono's HTTPException (e.g. from
 * `hono/body-limit`) as a problem with its status, anything else as a 500 that reveals
 * nothing and is passed to `onError` (default console.error).
 */
export function problemOnError(
  options: { onError?: (error: unknown, c: Context) => void } = {},
): ErrorHandler {
  const onError = options.onError ?? logToConsole;
  return function retrysafeOnError(error, c) {
    if (error instanceof ProblemError) return toResponse(problemResponse(error));
    const status = (error as { status?: unknown }).status;
    if (error.name === 'HTTPException' && typeof status === 'number' && status >= 400 && status < 500) {
      const problem =
        status === 413
          ? new ContentTooLargeError()
          : new ProblemError({
              status,
              type: 'http-error',
              title: 'Client error',
              detail: error.message || 'The request was refused.',
            });
      return toResponse(problemResponse(problem));
    }
    onError(error, c);
    return toResponse(serverErrorResponse());
  };
}

/** Lower-case headers; on Node, the key header's copies kept apart, so a repeated key is refused. */
function neutralHeaders(c: Context, keyHeader: string): HeaderValues {
  const headers: HeaderValues = {};
  c.req.raw.headers.forEach((value, name) => {
    headers[name] = value;
  });
  // Fetch joins a repeated header with ", "; the comma alone already makes such a key invalid.
  const incoming = (
    c.env as { incoming?: { headersDistinct?: Record<string, string[] | undefined> } } | undefined
  )?.incoming;
  const distinct = incoming?.headersDistinct?.[keyHeader];
  if (distinct !== undefined && distinct.length > 1) headers[keyHeader] = distinct;
  return headers;
}

async function readBody(c: Context, limitBytes: number): Promise<Uint8Array> {
  const request = c.req.raw;
  if (request.bodyUsed) {
    // A middleware read it before (Hono caches what it read): take those bytes.
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength > limitBytes) throw new ContentTooLargeError(limitBytes);
    return bytes;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel();
      throw new ContentTooLargeError(limitBytes);
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

function logToConsole(error: unknown, c: Context): void {
  console.error(`retrysafe: ${c.req.method} ${c.req.path} failed`, error);
}
