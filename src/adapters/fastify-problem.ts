// Fastify error and not-found handlers that answer every failure as application/problem+json
// (PROTOCOL.md rule 19): our ProblemErrors as they are, schema failures as 422 with pointers.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  type FieldError,
  type ProblemBody,
  ProblemError,
  problemContentType,
  problemForStatus,
  problemTypePrefix,
} from '../http/problem.js';

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
    const errors = fastifyError.validation.map(toFieldError);
    if (fastifyError.validationContext === 'body') {
      return sendProblem(reply, {
        type: `${problemTypePrefix}validation`,
        title: 'Unprocessable content',
        status: 422,
        detail: `The request body is not valid: ${errors.map((e) => `${e.pointer || '(body)'} ${e.detail}`).join('; ')}.`,
        errors,
      });
    }
    const detail = `The ${fastifyError.validationContext ?? 'request'} is not valid: ${errors.map((e) => `${e.pointer} ${e.detail}`).join('; ')}.`;
    return sendProblem(reply, { ...problemForStatus(400, detail, 'bad-request'), errors });
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return sendProblem(
      reply,
      problemForStatus(status, clientErrorDetail(fastifyError), clientErrorType(status)),
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

function clientErrorType(status: number): string {
  return status === 415 ? 'unsupported-media-type' : status === 413 ? 'content-too-large' : 'bad-request';
}

function clientErrorDetail(error: FastifyError): string {
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return 'This route accepts application/json or application/x-www-form-urlencoded bodies.';
  }
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'The JSON body is empty.';
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'The request body is too large.';
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
