// `retrysafe/express`: Express 5 over the request lifecycle. It only translates: a wrapped
// route's request becomes a neutral request (its body read once, here), the handler runs inside
// `lifecycle.handle`, and the neutral answer is written with Node's own `res` methods. Every
// decision (key, replay, settle, problems) is the lifecycle's; no `res` method is patched and
// nothing is stored after it was sent.
//
//   const retrysafe = createExpressIdempotency({ store, scope: (req) => req.get('x-account-id') ?? '' });
//   app.post('/payments', retrysafe.route('required', async (ctx, req) =>
//     ctx.commit((db) => { insert(db, ctx.body); return { status: 201, body: { … } }; })));
//   app.use(methodNotAllowed(app), problemNotFound(), problemErrorHandler());
//
// Do not mount `express.json()` in front of wrapped routes: the adapter reads the bytes itself
// (they are fingerprinted) and hands the parsed body to the handler as `ctx.body`. If a parser
// did run first, its parsed body is written back as JSON, which fingerprints the same.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ProblemError, statusTitle } from '../http/problem.js';
import type { HeaderValues, IdempotencyMode, RequestLifecycle } from '../idempotency/lifecycle.js';
import { problemResponse, serverErrorResponse } from '../idempotency/response.js';
import type { StoredResponse } from '../idempotency/store.js';
import {
  type AdapterHandler,
  type AdapterOptions,
  type AdapterRouteOptions,
  allowHeaderMethods,
  ContentTooLargeError,
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

export type ExpressIdempotencyOptions<Tx> = AdapterOptions<Tx, Request>;

export type ExpressRouteHandler<Tx> = AdapterHandler<Tx, Request>;

export interface ExpressIdempotency<Tx> {
  readonly lifecycle: RequestLifecycle<Tx>;
  /**
   * An Express handler for one route: reads the body once, runs `handler(ctx, req)` through
   * the lifecycle under `mode`, and writes its answer. Return a draft, or what `ctx.commit`
   * returned when the route writes.
   */
  route(mode: IdempotencyMode | AdapterRouteOptions, handler: ExpressRouteHandler<Tx>): RequestHandler;
}

export function createExpressIdempotency<Tx = never>(
  options: ExpressIdempotencyOptions<Tx>,
): ExpressIdempotency<Tx> {
  const runner = createRouteRunner(options, logToConsole);
  const { lifecycle } = runner;
  const { scope } = options;

  return {
    lifecycle,
    route(mode, handler) {
      const settings = runner.settings(mode);
      return async function retrysafeRoute(req, res, next) {
        try {
          const response = await runner.run(
            {
              method: req.method,
              route: req.baseUrl + routePath(req),
              path: pathOf(req.originalUrl),
              headers: neutralHeaders(req, lifecycle.headerName),
              scope: () => scope(req),
              readBody: (limitBytes) => readBody(req, res, limitBytes),
            },
            settings,
            handler,
            req,
          );
          writeResponse(res, response);
        } catch (error) {
          next(error);
        }
      };
    },
  };
}

/** Writes a neutral answer with Node's own methods, byte for byte (no charset or ETag added). */
export function writeResponse(res: ServerResponse, response: StoredResponse): void {
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  const bodyless = response.status === 204 || response.status === 304;
  if (!bodyless) res.setHeader('content-length', response.body.byteLength);
  res.end(bodyless || response.body.byteLength === 0 ? undefined : response.body);
}

/** Last in the chain: every request no route answered is a 404 problem. */
export function problemNotFound(): RequestHandler {
  return function problemNotFoundHandler(req, res) {
    writeProblem(res, notFoundError(req.method, pathOf(req.originalUrl)));
  };
}

/**
 * After the routes, before `problemNotFound()`: a path some route of `app` (or of a router)
 * answers, asked with another method, is 405 with `Allow` (PROTOCOL rule 30). It looks at the
 * routes declared directly on `app` or that router: mount it inside each router you nest.
 */
export function methodNotAllowed(app: { router: unknown } | object): RequestHandler {
  const router = ('router' in app ? app.router : app) as { stack?: RouterLayer[] };
  return function methodNotAllowedHandler(req, res, next) {
    const allowed = new Set<string>();
    // Relative to where this middleware is mounted, as the router's own layers see it.
    const path = req.path;
    for (const layer of router.stack ?? []) {
      if (layer.route === undefined || layer.matchers === undefined) continue;
      if (!layer.matchers.some((match) => match(path) !== false)) continue;
      for (const method of layer.route._methods()) allowed.add(method);
    }
    if (allowed.size === 0 || allowed.has(req.method) || allowed.has('*')) return next();
    writeProblem(res, new MethodNotAllowedError(req.method, path, allowHeaderMethods(allowed)));
  };
}

interface RouterLayer {
  route?: { _methods(): string[] };
  matchers?: ((path: string) => unknown)[];
}

/**
 * The app's error handler (`app.use(problemErrorHandler())`, last): a ProblemError as its
 * problem, errors of Express's body parsers (when you use them elsewhere) as 400 / 413 / 415,
 * anything else as a 500 that reveals nothing and is passed to `onError` (default console.error).
 */
export function problemErrorHandler(
  options: { onError?: (error: unknown, req: Request) => void } = {},
): ErrorRequestHandler {
  const onError = options.onError ?? logToConsole;
  return function retrysafeErrorHandler(error: unknown, req: Request, res: Response, next) {
    if (res.headersSent) return next(error);
    const response = problemAnswer(toProblemError(error) ?? error);
    if (response.status >= 500) onError(error, req);
    writeResponse(res, response);
  };
}

/** Errors of Express's body parsers (`express.json()` and co.), when you use them elsewhere. */
function toProblemError(error: unknown): unknown {
  if (error instanceof ProblemError) return error;
  const { status, type, limit } = (error ?? {}) as { status?: unknown; type?: unknown; limit?: unknown };
  if (type === 'entity.too.large')
    return new ContentTooLargeError(typeof limit === 'number' ? limit : undefined);
  if (typeof status !== 'number' || status < 400 || status >= 500 || typeof type !== 'string')
    return undefined;
  return new ProblemError({
    status,
    type: status === 415 ? 'unsupported-media-type' : 'bad-request',
    title: statusTitle(status),
    detail:
      type === 'entity.parse.failed' ? 'The body is not valid JSON.' : 'The request body could not be read.',
  });
}

function problemAnswer(error: unknown): StoredResponse {
  return error instanceof ProblemError ? problemResponse(error) : serverErrorResponse();
}

function writeProblem(res: ServerResponse, error: ProblemError): void {
  writeResponse(res, problemResponse(error));
}

function routePath(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? path : String(path ?? req.path);
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Lower-case headers with the key header's copies kept apart, so a repeated key is refused. */
function neutralHeaders(req: IncomingMessage, keyHeader: string): HeaderValues {
  const distinct = req.headersDistinct[keyHeader];
  if (distinct === undefined || distinct.length < 2) return req.headers;
  return { ...req.headers, [keyHeader]: distinct };
}

/**
 * The body's bytes, at most `limitBytes`. Past the limit the rest is drained unread and the
 * connection closes after the 413, so a client that keeps sending cannot hold the socket.
 */
function readBody(req: Request, res: ServerResponse, limitBytes: number): Promise<Uint8Array> {
  const parsed = req as Request & { _body?: boolean };
  if (parsed._body === true || req.readableEnded) return Promise.resolve(writtenBack(req.body));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total <= limitBytes) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      req.resume();
      res.setHeader('connection', 'close');
      reject(new ContentTooLargeError(limitBytes));
    };
    const onEnd = () => {
      req.off('error', onFail);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onFail = (error: Error) => reject(error);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onFail);
  });
}

const encoder = new TextEncoder();

function writtenBack(body: unknown): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return encoder.encode(body);
  return encoder.encode(JSON.stringify(body));
}

function logToConsole(error: unknown, req: Request): void {
  console.error(`retrysafe: ${req.method} ${req.originalUrl} failed`, error);
}
