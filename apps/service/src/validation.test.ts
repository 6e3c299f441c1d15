// Unit tests for the service's validation settings: text that cannot be stored as sent is
// refused in every part, oversized values are checked to their first error, and PUT's path
// id is validated before its precondition hook reads the database with it.
import Fastify, { type FastifyInstance } from 'fastify';
import { problemErrorHandler } from 'retrysafe/fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  maxEntriesForEveryError,
  registerValidation,
  storableTextIssues,
  validateParamsFirst,
} from './validation.js';

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    bio: { type: 'string' },
    tags: { type: 'array', maxItems: 5, items: { type: 'object', required: ['name'] } },
  },
} as const;

let app: FastifyInstance;
let lookedUp: string[];
afterEach(async () => app?.close());

async function build(): Promise<void> {
  app = Fastify({ logger: false });
  app.setErrorHandler(problemErrorHandler);
  registerValidation(app);
  lookedUp = [];
  app.post('/things', { schema: { body: bodySchema } }, async () => ({ ok: true }));
  app.get(
    '/things',
    { schema: { querystring: { type: 'object', properties: { q: { type: 'string' } } } } },
    async () => ({}),
  );
  app.put<{ Params: { id: string } }>(
    '/things/:id',
    {
      schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 8 } } } },
      preValidation: [
        validateParamsFirst,
        async (request) => {
          lookedUp.push(request.params.id);
        },
      ],
    },
    async () => ({ ok: true }),
  );
  await app.ready();
}

const post = (payload: string) =>
  app.inject({ method: 'POST', url: '/things', payload, headers: { 'content-type': 'application/json' } });

describe('storableTextIssues', () => {
  it('finds U+0000 and lone surrogates in values and field names, with JSON Pointers', () => {
    const issues = storableTextIssues({
      a: ['ok', 'x\u0000'],
      'b/c': { d: '\ud800' },
      'k\udc00': 1,
      e: '😀',
    });
    expect(issues.map((i) => i.instancePath).sort()).toEqual(['/a/1', '/b~1c/d', '/k\udc00']);
    expect(storableTextIssues('\u0000')).toHaveLength(1);
    expect(storableTextIssues({ pair: '\ud83d\ude00', plain: 'é', bom: '\ufeff' })).toEqual([]);
  });

  it('walks a deeply nested value without overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(200_000)}"\\u0000"${']'.repeat(200_000)}`);
    expect(storableTextIssues(deep)).toHaveLength(1);
  });
});

describe('registerValidation', () => {
  // Regression: a lone surrogate was stored as U+FFFD on SQLite (the GET then differed from the
  // 201 and its ETag) and made PostgreSQL's jsonb/text fail with a 500; U+0000 likewise.
  it.each([
    ['a lone surrogate', '"x\\ud800y"'],
    ['U+0000', '"x\\u0000y"'],
  ])('answers 422 with a pointer for %s in a body string', async (_name, json) => {
    await build();
    const res = await post(`{"bio":${json}}`);
    expect(res.statusCode).toBe(422);
    expect(res.json().errors).toEqual([
      { pointer: '/bio', detail: expect.stringMatching(/^must not contain/) },
    ]);
  });

  it('answers 400 for U+0000 in the query string', async () => {
    await build();
    const res = await app.inject({ method: 'GET', url: '/things?q=a%00b' });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toContain('The query string is not valid: /q must not contain U+0000');
  });

  // Regression: with every error collected, 1 MiB of broken items took about 2 s of CPU and
  // answered with tens of megabytes of errors.
  it(`checks a value holding more than ${maxEntriesForEveryError} entries only to its first error`, async () => {
    await build();
    const tags = JSON.stringify(Array.from({ length: 50_000 }, () => ({})));
    const started = performance.now();
    const res = await post(`{"tags":${tags}}`);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(res.statusCode).toBe(422);
    expect(res.json().errors).toHaveLength(1);
    const few = await post(`{"tags":${JSON.stringify([{}, {}, {}])}}`);
    expect(few.json().errors).toHaveLength(3);
  });
});

// Regression: PUT /users/{id} looked the id up in its precondition hook before the params
// schema ran, so a NUL in the id reached PostgreSQL and came back as a 500.
describe('validateParamsFirst', () => {
  it('answers 400 for invalid path parameters before later preValidation hooks run', async () => {
    await build();
    const res = await app.inject({ method: 'PUT', url: '/things/a%00b', payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toContain('The path parameters are not valid: /id must not contain U+0000');
    const long = await app.inject({ method: 'PUT', url: '/things/123456789', payload: {} });
    expect(long.statusCode).toBe(400);
    expect(lookedUp).toEqual([]);
    expect((await app.inject({ method: 'PUT', url: '/things/ok', payload: {} })).statusCode).toBe(200);
    expect(lookedUp).toEqual(['ok']);
  });
});
