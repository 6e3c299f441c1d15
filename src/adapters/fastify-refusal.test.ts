// Regression (found by `npm run fuzz`): a request refused for its Idempotency-Key whose body also
// failed validation answered HTTP 422 with a problem body saying 400, when the app had an async
// onSend hook — the refusal was sent from the hook, then Fastify went on to validate the body.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../stores/memory.js';
import { idempotency, useProblemDetails } from './fastify.js';

let app: FastifyInstance;
afterEach(async () => {
  await app.close();
});

async function build(): Promise<{ runs: () => number }> {
  let runs = 0;
  app = Fastify();
  useProblemDetails(app);
  // An async onSend hook (compression, our test hooks): the reply is not "sent" until it resolves.
  app.addHook('onSend', async (_request, _reply, payload) => payload);
  await app.register(idempotency, { store: createMemoryStore(), scope: () => 'tenant' });
  app.post(
    '/orders',
    {
      config: { idempotency: 'required' },
      schema: {
        body: {
          type: 'object',
          required: ['cents'],
          properties: { cents: { type: 'integer', minimum: 1 } },
        },
      },
    },
    async (_request, reply) => {
      runs++;
      return reply.idempotent(() => ({ status: 201, body: { ok: true } }));
    },
  );
  return { runs: () => runs };
}

describe('a refused key on a request whose body is also invalid', () => {
  it.each([
    ['malformed', { 'idempotency-key': 'a b' }, 'idempotency-key-invalid'],
    ['missing', {}, 'idempotency-key-missing'],
  ])('answers the %s key 400 in both the status line and the problem body', async (_name, headers, type) => {
    const { runs } = await build();
    const res = await app.inject({ method: 'POST', url: '/orders', payload: { cents: 0 }, headers });
    expect(res.statusCode).toBe(400);
    const problem = res.json() as { status: number; type: string };
    expect(problem.status).toBe(400);
    expect(problem.type).toBe(`urn:retrysafe:problem:${type}`);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(runs()).toBe(0);
  });
});
