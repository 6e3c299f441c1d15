// Unit tests for problemErrorHandler / problemNotFoundHandler: every failure becomes
// application/problem+json (PROTOCOL.md rule 19) — schema errors as 422 with JSON Pointers.
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ProblemError,
  problemTypePrefix,
  ServiceUnavailableError,
  ValidationError,
} from '../http/problem.js';
import {
  maxReportedFieldErrors,
  problemCheckExpectationHandler,
  problemClientErrorHandler,
  problemConnectHandler,
  problemErrorHandler,
  problemMethodNotAllowedHandler,
  problemNotFoundHandler,
  problemServerOptions,
} from './fastify-problem.js';

const bodySchema = {
  type: 'object',
  required: ['name', 'items'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1 },
    email: { type: 'string', format: 'email' },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sku', 'quantity'],
        properties: { sku: { type: 'string' }, quantity: { type: 'integer' } },
      },
    },
  },
};

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { pointer: string; detail: string }[];
}

let app: FastifyInstance;
afterEach(async () => app.close());

async function build(): Promise<void> {
  app = Fastify({
    logger: false,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler(problemNotFoundHandler);
  app.post('/things', { schema: { body: bodySchema } }, async () => ({ ok: true }));
  app.post('/small', { bodyLimit: 16 }, async () => ({ ok: true }));
  app.get(
    '/search',
    { schema: { querystring: { type: 'object', properties: { limit: { type: 'integer' } } } } },
    async () => ({}),
  );
  app.get('/crash', async () => {
    throw new Error('password=hunter2 at db.internal:5432');
  });
  app.get('/crash-500', async () => {
    throw Object.assign(new Error('internal pool exhausted'), { statusCode: 500 });
  });
  app.get('/busy', async () => {
    throw new ServiceUnavailableError('Try again shortly.', 7, new Error('pool exhausted'));
  });
  app.get('/invalid-rule', async () => {
    throw new ValidationError([{ pointer: '/quantity', detail: 'exceeds stock' }]);
  });
  app.get('/teapot', async () => {
    throw new ProblemError({
      status: 418,
      type: 'teapot',
      title: 'Teapot',
      detail: 'Short and stout.',
      extensions: { size: 'small' },
    });
  });
  await app.ready();
}

function problemOf(res: LightMyRequestResponse, status: number): Problem {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  const body = res.json() as Problem;
  expect(body.status).toBe(status);
  expect(body.type.startsWith(problemTypePrefix)).toBe(true);
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

const postThings = (payload: unknown) =>
  app.inject({ method: 'POST', url: '/things', payload: payload as Record<string, unknown> });

describe('schema validation failures', () => {
  it('answers 422 validation with a pointer to each missing required field', async () => {
    await build();
    const body = problemOf(await postThings({}), 422);
    expect(body.type).toBe(`${problemTypePrefix}validation`);
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { pointer: '/name', detail: 'is required' },
        { pointer: '/items', detail: 'is required' },
      ]),
    );
    expect(body.errors).toHaveLength(2);
  });

  it('points at an unknown field itself, not at its parent', async () => {
    await build();
    const body = problemOf(await postThings({ name: 'a', items: [], colour: 'red' }), 422);
    expect(body.errors).toEqual([{ pointer: '/colour', detail: 'is not a known field' }]);
  });

  it('escapes ~ and / in pointer segments (RFC 6901)', async () => {
    await build();
    const body = problemOf(await postThings({ name: 'a', items: [], 'a/b~c': 1 }), 422);
    expect(body.errors).toEqual([{ pointer: '/a~1b~0c', detail: 'is not a known field' }]);
  });

  it('points into nested arrays: /items/0/quantity and /items/1/sku', async () => {
    await build();
    const body = problemOf(
      await postThings({ name: 'a', items: [{ sku: 'A', quantity: '2' }, { quantity: 1 }] }),
      422,
    );
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { pointer: '/items/0/quantity', detail: expect.stringContaining('integer') },
        { pointer: '/items/1/sku', detail: 'is required' },
      ]),
    );
    expect(body.detail).toContain('/items/0/quantity');
  });

  it('reports a type error at the body root with an empty pointer', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '[1]',
      headers: { 'content-type': 'application/json' },
    });
    const body = problemOf(res, 422);
    expect(body.errors?.[0]?.pointer).toBe('');
    expect(body.detail).toContain('(body)');
  });

  it('answers 400, not 422, for an invalid query string, with the field errors', async () => {
    await build();
    const body = problemOf(await app.inject({ method: 'GET', url: '/search?limit=ten' }), 400);
    expect(body.type).toBe(`${problemTypePrefix}bad-request`);
    expect(body.errors?.[0]?.pointer).toBe('/limit');
  });
});

// Regression: a 1 MiB body of broken array items answered with every Ajv error — tens of
// megabytes of problem for one request.
describe('many schema errors', () => {
  it(`lists at most ${maxReportedFieldErrors} field errors and says how many more there were`, async () => {
    await build();
    const items = Array.from({ length: 200 }, () => ({ sku: 1 }));
    const body = problemOf(await postThings({ name: 'a', items }), 422);
    expect(body.errors).toHaveLength(maxReportedFieldErrors);
    expect(body.detail).toMatch(/; and \d+ more\.$/);
  });
});

describe('body parsing failures', () => {
  it('answers 400 problem for a body that is not JSON', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '{"name": ',
      headers: { 'content-type': 'application/json' },
    });
    const body = problemOf(res, 400);
    expect(body.type).toBe(`${problemTypePrefix}bad-request`);
    expect(body.detail).toMatch(/JSON/);
  });

  it('answers 400 problem for an empty JSON body', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(problemOf(res, 400).detail).toContain('empty');
  });

  it('answers 415 unsupported-media-type problem for a content type the route does not parse', async () => {
    await build();
    const res = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '<thing/>',
      headers: { 'content-type': 'application/xml' },
    });
    const body = problemOf(res, 415);
    expect(body.type).toBe(`${problemTypePrefix}unsupported-media-type`);
    expect(body.title).toBe('Unsupported media type');
  });

  it('answers 413 content-too-large problem for a body over the limit, naming the limit', async () => {
    await build();
    const res = await app.inject({ method: 'POST', url: '/small', payload: { text: 'x'.repeat(100) } });
    const body = problemOf(res, 413);
    expect(body.type).toBe(`${problemTypePrefix}content-too-large`);
    expect(body.detail).toContain('at most 16 bytes');
  });
});

describe('thrown errors', () => {
  it('answers 500 with a generic detail and never leaks the internal message', async () => {
    await build();
    for (const url of ['/crash', '/crash-500']) {
      const res = await app.inject({ method: 'GET', url });
      const body = problemOf(res, 500);
      expect(body.type).toBe(`${problemTypePrefix}server-error`);
      expect(res.body).not.toMatch(/hunter2|db\.internal|pool exhausted/);
      expect(body.detail).toContain('nothing was saved');
    }
  });

  it('sends a ProblemError as it is, with its headers, and keeps its cause out of the body', async () => {
    await build();
    const res = await app.inject({ method: 'GET', url: '/busy' });
    const body = problemOf(res, 503);
    expect(res.headers['retry-after']).toBe('7');
    expect(body).toEqual({
      type: `${problemTypePrefix}service-unavailable`,
      title: 'Service unavailable',
      status: 503,
      detail: 'Try again shortly.',
    });
  });

  it('keeps the errors array of a business-rule ValidationError', async () => {
    await build();
    const body = problemOf(await app.inject({ method: 'GET', url: '/invalid-rule' }), 422);
    expect(body.errors).toEqual([{ pointer: '/quantity', detail: 'exceeds stock' }]);
  });

  it('includes problem extensions but never lets them override the standard members', async () => {
    await build();
    const body = problemOf(await app.inject({ method: 'GET', url: '/teapot' }), 418);
    expect(body).toMatchObject({
      type: `${problemTypePrefix}teapot`,
      size: 'small',
      detail: 'Short and stout.',
    });
  });
});

describe('unknown routes', () => {
  it('answers 404 problem+json naming the method and path, without the query', async () => {
    await build();
    const res = await app.inject({ method: 'DELETE', url: '/nope?token=abc' });
    const body = problemOf(res, 404);
    expect(body.type).toBe(`${problemTypePrefix}not-found`);
    expect(body.detail).toContain('DELETE /nope');
    expect(body.detail).not.toContain('token');
  });
});

// Regression: requests refused before any route runs got Fastify's or Node's own answers —
// application/json bodies (400, 414, 431) or none at all (CONNECT, Expect, a missing Host).
describe('requests refused before routing', () => {
  it('answers an undecodable URL with 400 and a too-long path parameter with 414, as problems', async () => {
    app = Fastify({
      logger: false,
      frameworkErrors: problemServerOptions.frameworkErrors,
      routerOptions: { maxParamLength: 10 },
    });
    app.setErrorHandler(problemErrorHandler);
    app.get('/things/:id', async () => ({}));
    await app.ready();
    const badUrl = problemOf(await app.inject({ method: 'GET', url: '/things/%ZZ' }), 400);
    expect(badUrl.detail).toContain('does not decode');
    const long = problemOf(await app.inject({ method: 'GET', url: `/things/${'x'.repeat(11)}` }), 414);
    expect(long.type).toBe(`${problemTypePrefix}uri-too-long`);
  });

  function fakeSocket(inFlight?: { headersSent: boolean }) {
    const socket = {
      destroyed: false,
      writable: true,
      written: '',
      _httpMessage: inFlight ?? null,
      end(data: string) {
        socket.written += data;
        socket.writable = false;
      },
      destroy() {
        socket.destroyed = true;
      },
    };
    return socket;
  }

  function parseRaw(raw: string): { status: number; type: string | undefined; body: Problem } {
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    return {
      status: Number(head.split(' ')[1]),
      type: /content-type: ([^\r]+)/i.exec(head)?.[1],
      body: JSON.parse(body) as Problem,
    };
  }

  it.each([
    ['HPE_INVALID_METHOD', 400, 'bad-request'],
    ['HPE_HEADER_OVERFLOW', 431, 'request-header-fields-too-large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'request-timeout'],
  ])('answers the HTTP parser error %s with %i problem+json and closes', (code, status, type) => {
    const socket = fakeSocket();
    problemClientErrorHandler(Object.assign(new Error('parse'), { code }), socket as never);
    const answer = parseRaw(socket.written);
    expect(answer.status).toBe(status);
    expect(answer.type).toBe('application/problem+json; charset=utf-8');
    expect(answer.body).toMatchObject({ status, type: `${problemTypePrefix}${type}` });
    expect(socket.destroyed).toBe(true);
  });

  it('writes nothing when a response on the connection has begun, or the peer reset it', () => {
    const busy = fakeSocket({ headersSent: true });
    problemClientErrorHandler(
      Object.assign(new Error('parse'), { code: 'HPE_INVALID_METHOD' }),
      busy as never,
    );
    expect(busy.written).toBe('');
    expect(busy.destroyed).toBe(true);
    const reset = fakeSocket();
    problemClientErrorHandler(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset as never);
    expect(reset.written).toBe('');
  });

  it('answers CONNECT with a 400 problem and closes', () => {
    const socket = fakeSocket();
    problemConnectHandler({} as never, socket as never);
    expect(parseRaw(socket.written).body).toMatchObject({
      status: 400,
      detail: expect.stringContaining('CONNECT'),
    });
    expect(socket.destroyed).toBe(true);
  });

  it('answers an Expect it cannot meet with a 417 problem', () => {
    const response = { status: 0, headers: {} as Record<string, unknown>, body: '' };
    problemCheckExpectationHandler(
      {} as never,
      {
        writeHead(status: number, headers: Record<string, unknown>) {
          response.status = status;
          response.headers = headers;
        },
        end(body: string) {
          response.body = body;
        },
      } as never,
    );
    expect(response.status).toBe(417);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(response.body)).toMatchObject({ status: 417, title: 'Expectation failed' });
  });
});

describe('problemMethodNotAllowedHandler (PROTOCOL rule 30)', () => {
  async function buildWithRoutes(): Promise<FastifyInstance> {
    const routed = Fastify({ logger: false });
    routed.setNotFoundHandler(problemMethodNotAllowedHandler(routed));
    routed.get('/items/:id', async () => ({ ok: true }));
    routed.put('/items/:id', async () => ({ ok: true }));
    routed.post('/items', async () => ({ ok: true }));
    routed.get('/files/*', async () => ({ ok: true }));
    routed.get('/numbers/:n(^\\d+)', async () => ({ ok: true }));
    await routed.ready();
    app = routed;
    return routed;
  }

  it('answers a known path asked with another method with 405, Allow and problem+json', async () => {
    const routed = await buildWithRoutes();
    const response = await routed.inject({ method: 'DELETE', url: '/items/42?x=1' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('GET, HEAD, PUT');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json<Problem>()).toMatchObject({
      status: 405,
      type: `${problemTypePrefix}method-not-allowed`,
    });
    const collection = await routed.inject({ method: 'GET', url: '/items' });
    expect(collection.statusCode).toBe(405);
    expect(collection.headers.allow).toBe('POST');
  });

  it('matches wildcard and regex parameters and keeps 404 for unknown paths', async () => {
    const routed = await buildWithRoutes();
    expect((await routed.inject({ method: 'POST', url: '/files/a/b.txt' })).statusCode).toBe(405);
    expect((await routed.inject({ method: 'POST', url: '/numbers/12' })).statusCode).toBe(405);
    const notNumber = await routed.inject({ method: 'POST', url: '/numbers/abc' });
    expect(notNumber.statusCode).toBe(404);
    const unknown = await routed.inject({ method: 'DELETE', url: '/nothing/here' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers.allow).toBeUndefined();
    expect(unknown.json<Problem>().type).toBe(`${problemTypePrefix}not-found`);
  });
});
