// Fastify error, not-found, framework-error and client-error handlers that answer every failure
// as application/problem+json (PROTOCOL.md rule 19): our ProblemErrors as they are, schema
// failures as 422 with pointers, and even requests Node's HTTP parser refuses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  BadRequestError,
  type FieldError,
  type ProblemBody,
  ProblemError,
  problemContentType,
  problemForStatus,
  problemTypePrefix,
  statusTitle,
} from '../http/problem.js';

/**
 * Most field errors one problem lists. A 1 MiB body of 100 000 broken array items would
 * otherwise answer with tens of megabytes of errors: the first ones say what to fix.
 */
export const maxReportedFieldErrors = 50;

const partNames: Record<string, string> = {
  params: 'path parameters',
  querystring: 'query string',
  headers: 'header fields',
};

interface SchemaIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

export function sendProblem(
  reply: FastifyReply,
  problem: ProblemBody,
  headers: Record<string, string> = {},
): FastifyReply {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  return reply.code(problem.status).type(problemContentType).send(JSON.stringify(problem));
}

export function problemErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof ProblemError) {
    if (error.status >= 500) request.log.error({ err: error.cause ?? error }, error.message);
    return sendProblem(reply, error.toProblem(), error.headers);
  }
  const fastifyError = error as FastifyError & { validation?: SchemaIssue[] };
  if (fastifyError.validation) {
    const errors = fastifyError.validation.slice(0, maxReportedFieldErrors).map(toFieldError);
    const omitted = fastifyError.validation.length - errors.length;
    const more = omitted > 0 ? `; and ${omitted} more` : '';
    if (fastifyError.validationContext === 'body') {
      return sendProblem(reply, {
        type: `${problemTypePrefix}validation`,
        title: 'Unprocessable content',
        status: 422,
        detail: `The request body is not valid: ${errors.map((e) => `${e.pointer || '(body)'} ${e.detail}`).join('; ')}${more}.`,
        errors,
      });
    }
    const part = partNames[fastifyError.validationContext ?? ''] ?? 'request';
    const detail = `The ${part} ${part.endsWith('s') ? 'are' : 'is'} not valid: ${errors.map((e) => `${e.pointer} ${e.detail}`).join('; ')}${more}.`;
    return sendProblem(reply, { ...problemForStatus(400, detail, 'bad-request'), errors });
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return sendProblem(
      reply,
      problemForStatus(status, clientErrorDetail(fastifyError, request), clientErrorType(status)),
    );
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(
    reply,
    problemForStatus(500, 'Something went wrong on our side; nothing was saved. Try again.', 'server-error'),
  );
}

export function problemNotFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    problemForStatus(404, `No route ${request.method} ${request.url.split('?')[0]}.`, 'not-found'),
  );
}

/**
 * A not-found handler that answers a known path asked with another method as 405 with `Allow`
 * (PROTOCOL rule 30; Fastify itself answers 404), and anything else as `problemNotFoundHandler`.
 * Call it before declaring routes: it learns them from an `onRoute` hook, matching their URL
 * patterns (`:param`, `:param(regex)`, `*`) against the request's path.
 */
export function problemMethodNotAllowedHandler(
  app: FastifyInstance,
): (request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
    routes.push({ pattern: routePattern(route.url ?? route.path ?? ''), methods });
  });
  return function problemNotFoundOrMethodNotAllowed(request, reply) {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = new Set<string>();
    for (const route of routes) if (route.pattern.test(path)) for (const m of route.methods) allowed.add(m);
    if (allowed.size === 0 || allowed.has(request.method)) return problemNotFoundHandler(request, reply);
    if (allowed.has('GET')) allowed.add('HEAD');
    const allow = [...allowed].sort().join(', ');
    return sendProblem(
      reply,
      problemForStatus(
        405,
        `${path} does not answer ${request.method}; it answers ${allow}.`,
        'method-not-allowed',
      ),
      { allow },
    );
  };
}

/** A find-my-way URL pattern as a RegExp over a concrete path (a trailing slash either way). */
function routePattern(url: string): RegExp {
  let source = '';
  for (let i = 0; i < url.length; i++) {
    const char = url[i]!;
    if (char === '*') source += '.*';
    else if (char === ':' && url[i + 1] === ':') {
      source += ':';
      i++;
    } else if (char === ':') {
      let end = i + 1;
      while (end < url.length && /\w/.test(url[end]!)) end++;
      let part = '[^/]+';
      if (url[end] === '(') {
        let depth = 0;
        const start = end;
        for (; end < url.length; end++) {
          if (url[end] === '(') depth++;
          else if (url[end] === ')' && --depth === 0) break;
        }
        part = `(?:${url.slice(start + 1, end).replace(/^\^|\$$/g, '')})`;
        end++;
      }
      if (url[end] === '?') {
        // An optional last parameter: the path may also end before its slash.
        source = `${source.replace(/\/$/, '')}(?:/${part})?`;
        end++;
      } else source += part;
      i = end - 1;
    } else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source.replace(/\/$/, '')}/?$`);
}

const clientErrorAnswers: Record<string, [status: number, detail: string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request did not arrive in time; send it again.'],
  HPE_HEADER_OVERFLOW: [
    431,
    'The request header fields are larger than this server accepts; send fewer or shorter headers.',
  ],
};

/**
 * Fastify's `clientErrorHandler` option, for requests Node's HTTP parser refuses before Fastify
 * sees them (a bad method, bytes a header may not hold, a malformed chunk, a lying
 * Content-Length, header fields over the size limit): answers 400, 408 or 431 problem+json and
 * closes the connection, since the rest of its bytes cannot be trusted. Like Node's own
 * handler, it writes nothing when a response on that connection has already begun.
 */
export function problemClientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!inFlight?.headersSent) {
    const [status, detail] = clientErrorAnswers[error.code ?? ''] ?? [
      400,
      'The request is not valid HTTP/1.1 (request line, header fields or body framing); nothing was done.',
    ];
    writeProblemAndClose(socket, status, detail);
  }
  socket.destroy(error);
}

/**
 * For the server's `connect` event: Node hands a CONNECT request to that event, never to
 * Fastify, and without a listener it drops the connection without a word.
 */
export function problemConnectHandler(_request: IncomingMessage, socket: Duplex): void {
  writeProblemAndClose(socket, 400, 'CONNECT is for proxies; this server is not one.');
  socket.destroy();
}

/**
 * For the server's `checkExpectation` event: Node answers an `Expect` other than 100-continue
 * with a bare 417 of its own unless someone listens; this is the same answer as a problem.
 */
export function problemCheckExpectationHandler(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(
    problemForStatus(417, 'This server meets no expectation but 100-continue.', 'expectation-failed'),
  );
  response.writeHead(417, { 'content-type': problemContentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function writeProblemAndClose(socket: Duplex, status: number, detail: string): void {
  if (!socket.writable) return;
  const body = JSON.stringify(problemForStatus(status, detail, clientErrorType(status)));
  socket.end(
    `HTTP/1.1 ${status} ${statusTitle(status)}\r\nContent-Type: ${problemContentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function clientErrorType(status: number): string {
  return clientErrorTypes[status] ?? 'bad-request';
}

const clientErrorTypes: Record<number, string> = {
  408: 'request-timeout',
  413: 'content-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
  431: 'request-header-fields-too-large',
};

function clientErrorDetail(error: FastifyError, request: FastifyRequest): string {
  if (error.code === 'FST_ERR_BAD_URL') {
    return 'The URL does not decode: percent-encode it as UTF-8 (RFC 3986).';
  }
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return 'A path segment is longer than any id this service issues.';
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return 'This route accepts application/json or application/x-www-form-urlencoded bodies.';
  }
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'The JSON body is empty.';
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return `The request body is too large: this route accepts at most ${request.routeOptions.bodyLimit} bytes.`;
  }
  if (error instanceof SyntaxError) return `The body is not valid JSON: ${error.message}.`;
  return error.message;
}

function toFieldError(issue: SchemaIssue): FieldError {
  const base = issue.instancePath;
  if (issue.keyword === 'required') {
    return {
      pointer: `${base}/${escapePointer(String(issue.params.missingProperty))}`,
      detail: 'is required',
    };
  }
  if (issue.keyword === 'additionalProperties') {
    return {
      pointer: `${base}/${escapePointer(String(issue.params.additionalProperty))}`,
      detail: 'is not a known field',
    };
  }
  if (issue.keyword === 'format')
    return { pointer: base, detail: `must be a valid ${String(issue.params.format)}` };
  return { pointer: base, detail: issue.message ?? 'is invalid' };
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Options for `Fastify({ ...problemServerOptions, … })`: requests refused before routing (by
 * the router or Node's HTTP parser) answer problem+json, and a missing Host is left to the
 * hook `useProblemDetails` adds, which answers it as a problem instead of Node's bare 400.
 */
export const problemServerOptions = {
  // A URL that does not decode (400) or a path parameter longer than the router's
  // `maxParamLength` (414) fails before any route or hook runs.
  frameworkErrors: problemErrorHandler,
  clientErrorHandler: problemClientErrorHandler,
  http: { requireHostHeader: false },
};

/**
 * Every failure the app or its Node server can produce, as problem+json: the error and
 * not-found handlers (405 + Allow for a known path: call this before declaring routes), CONNECT, odd `Expect`s, and HTTP/1.1 requests without Host. Pair it
 * with `problemServerOptions`.
 */
export function useProblemDetails(app: FastifyInstance): void {
  app.setErrorHandler(problemErrorHandler);
  // 405 + Allow for the routes declared after this call, 404 for the rest.
  app.setNotFoundHandler(problemMethodNotAllowedHandler(app));
  // Node gives these to server events, not to Fastify; without a listener it drops a CONNECT
  // silently and answers a strange Expect with a bare 417.
  app.server.on('connect', problemConnectHandler);
  app.server.on('checkExpectation', problemCheckExpectationHandler);
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      done(
        new BadRequestError('An HTTP/1.1 request needs a Host header field (RFC 9112 §3.2).', 'missing-host'),
      );
    } else done();
  });
}
