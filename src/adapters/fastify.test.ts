// Unit tests for the Fastify adapter, driven with `inject` against the SQLite store (business
// rows in the same :memory: database) and the memory store: keys, replay, rollback, 4xx storage,
// scopes, optional mode, in-use, validation before the claim, and problem+json answers.
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { strongEtag } from '../http/etag.js';
import { ConflictError, problemTypePrefix } from '../http/problem.js';
import { createMemoryStore } from '../stores/memory.js';
import { createSqliteStore, type SqliteDatabase } from '../stores/sqlite.js';
import { idempotency, problemErrorHandler, problemNotFoundHandler } from './fastify.js';

const orderSchema = {
  type: 'object',
  required: ['sku', 'quantity'],
  additionalProperties: false,
  properties: { sku: { type: 'string', minLength: 1 }, quantity: { type: 'integer', minimum: 1 } },
} as const;

interface OrderBody {
  sku: string;
  quantity: number;
}

interface TestApp {
  app: FastifyInstance;
  db: SqliteDatabase;
  /** How many times each route's handler body ran (replays never reach it). */
  runs: Record<string, number>;
  /** Stored idempotency records. */
  /** Completed records: answers that a retry would replay. */
  storedAnswers(): number;
  /** Opens the gate the /slow route waits on; `reached` resolves when it starts waiting. */
  gate: { reached: Promise<void>; open(): void };
  close(): Promise<void>;
}

type StoreKind = 'sqlite' | 'memory';

async function buildApp(kind: StoreKind): Promise<TestApp> {
  const db = new Database(':memory:');
  const sqliteStore = kind === 'sqlite' ? createSqliteStore({ database: db }) : undefined;
  const memoryStore = kind === 'memory' ? createMemoryStore() : undefined;
  db.exec(
    'CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL, quantity INTEGER NOT NULL)',
  );
  const runs: Record<string, number> = {};
  const ran = (name: string) => {
    runs[name] = (runs[name] ?? 0) + 1;
  };
  let reached!: () => void;
  let open!: () => void;
  const gate = {
    reached: new Promise<void>((resolve) => {
      reached = resolve;
    }),
    opened: new Promise<void>((resolve) => {
      open = resolve;
    }),
  };

  const app = Fastify({
    logger: false,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler(problemNotFoundHandler);
  const scope = (request: { headers: Record<string, unknown> }) =>
    String(request.headers['x-tenant'] ?? 'anonymous');
  if (sqliteStore) await app.register(idempotency, { store: sqliteStore, scope });
  if (memoryStore) await app.register(idempotency, { store: memoryStore, scope });

  const insert = (body: OrderBody) =>
    Number(
      db.prepare('INSERT INTO orders (sku, quantity) VALUES (?, ?)').run(body.sku, body.quantity)
        .lastInsertRowid,
    );
  const createOrder = (body: OrderBody) => {
    const id = insert(body);
    const representation = { id, ...body };
    return {
      status: 201,
      headers: { location: `/orders/${id}`, etag: strongEtag(JSON.stringify(representation)) },
      body: representation,
    };
  };

  app.post<{ Body: OrderBody }>(
    '/orders',
    { config: { idempotency: 'required' }, schema: { body: orderSchema } },
    async (request, reply) => {
      ran('orders');
      return reply.idempotent(() => createOrder(request.body));
    },
  );
  app.post<{ Body: OrderBody }>(
    '/explode',
    { config: { idempotency: 'required' } },
    async (request, reply) => {
      ran('explode');
      return reply.idempotent(() => {
        insert(request.body);
        throw new Error('secret database detail');
      });
    },
  );
  app.post<{ Body: OrderBody }>(
    '/unavailable',
    { config: { idempotency: 'optional' } },
    async (request, reply) => {
      ran('unavailable');
      return reply.idempotent(() => {
        insert(request.body);
        return { status: 503, headers: { 'retry-after': 2 }, body: { try: 'later' } };
      });
    },
  );
  app.post<{ Body: { username: string } }>(
    '/users',
    { config: { idempotency: 'required' } },
    async (request) => {
      ran('users');
      throw new ConflictError(`Username ${request.body.username} is taken.`, 'username-taken');
    },
  );
  app.post<{ Body: OrderBody }>(
    '/users-tx',
    { config: { idempotency: 'required' } },
    async (request, reply) => {
      ran('users-tx');
      return reply.idempotent(() => {
        insert(request.body);
        throw new ConflictError('Username is taken.', 'username-taken');
      });
    },
  );
  app.post<{ Body: OrderBody }>('/slow', { config: { idempotency: 'required' } }, async (request, reply) => {
    ran('slow');
    reached();
    await gate.opened;
    return reply.idempotent(() => createOrder(request.body));
  });
  app.post<{ Body: OrderBody }>('/notes', { config: { idempotency: 'optional' } }, async (request, reply) => {
    ran('notes');
    return reply.idempotent(() => createOrder(request.body));
  });
  await app.ready();

  return {
    app,
    db,
    runs,
    // A released claim keeps its row (so a retry reuses its record id); only answers count.
    storedAnswers: () =>
      sqliteStore
        ? (
            db.prepare("SELECT count(*) AS n FROM retrysafe_idempotency WHERE state = 'completed'").get() as {
              n: number;
            }
          ).n
        : [...(memoryStore?.records.values() ?? [])].filter((record) => record.state === 'completed').length,
    gate: { reached: gate.reached, open },
    close: async () => {
      await app.close();
      db.close();
    },
  };
}

function rowCount(t: TestApp): number {
  return (t.db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n;
}

function post(t: TestApp, url: string, payload: unknown, key?: string, extra: Record<string, string> = {}) {
  return t.app.inject({
    method: 'POST',
    url,
    payload: payload as Record<string, unknown>,
    headers: { ...(key === undefined ? {} : { 'idempotency-key': key }), ...extra },
  });
}

function expectProblem(res: LightMyRequestResponse, status: number, type: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as { type: string; status: number; title: string; detail: string };
  expect(body.type).toBe(`${problemTypePrefix}${type}`);
  expect(body.status).toBe(status);
  expect(typeof body.title).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

const order = { sku: 'A-1', quantity: 2 };

/** Sends `request` as raw bytes and returns everything the server wrote before closing. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(request);
  });
}

describe.each(['sqlite', 'memory'] as const)('Fastify idempotency adapter with the %s store', (kind) => {
  let t: TestApp;
  afterEach(async () => {
    t.gate.open();
    await t.close();
  });

  it('answers 400 idempotency-key-missing, saying how to resubmit, when a required key is missing', async () => {
    t = await buildApp(kind);
    const res = await post(t, '/orders', order);
    const body = expectProblem(res, 400, 'idempotency-key-missing');
    expect(body.detail).toContain('Idempotency-Key');
    expect(t.runs.orders).toBeUndefined();
    expect(t.storedAnswers()).toBe(0);
  });

  it.each([
    ['has a comma', 'a,b'],
    ['is too long', 'k'.repeat(256)],
    ['is an unterminated quoted string', '"abc'],
    ['is an empty quoted string', '""'],
  ])('answers 400 idempotency-key-invalid when the key %s', async (_name, key) => {
    t = await buildApp(kind);
    const res = await post(t, '/orders', order, key);
    expectProblem(res, 400, 'idempotency-key-invalid');
    expect(t.runs.orders).toBeUndefined();
    expect(t.storedAnswers()).toBe(0);
  });

  it('answers 400 idempotency-key-invalid when the key header is sent twice', async () => {
    t = await buildApp(kind);
    const res = await t.app.inject({
      method: 'POST',
      url: '/orders',
      payload: order,
      headers: { 'idempotency-key': ['k1', 'k2'] },
    });
    expectProblem(res, 400, 'idempotency-key-invalid');
    expect(t.storedAnswers()).toBe(0);
  });

  // Regression: over real HTTP Node joins a repeated header into "k1, k1", so the refusal said
  // "contains a comma" — true, but not what the client did. (inject has no headersDistinct.)
  it('says "sent more than once" for a key header repeated over real HTTP, even with equal copies', async () => {
    t = await buildApp(kind);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const answer = await rawHttp(
      port,
      'POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n' +
        `Idempotency-Key: k1\r\nIdempotency-Key: k1\r\nContent-Length: ${JSON.stringify(order).length}\r\n\r\n` +
        JSON.stringify(order),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('sent more than once');
    expect(t.runs.orders).toBeUndefined();
    expect(t.storedAnswers()).toBe(0);
  });

  it('executes once and replays status, body, Location, ETag and content type with Idempotent-Replayed: true', async () => {
    t = await buildApp(kind);
    const first = await post(t, '/orders', order, 'k1');
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(first.headers.location).toBe('/orders/1');
    expect(first.headers.etag).toMatch(/^"[^"]+"$/);

    const again = await post(t, '/orders', { quantity: 2, sku: 'A-1' }, '"k1"');
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.rawPayload.equals(first.rawPayload)).toBe(true);
    for (const name of ['location', 'etag', 'content-type'] as const) {
      expect(again.headers[name]).toBe(first.headers[name]);
    }
    expect(t.runs.orders).toBe(1);
    expect(rowCount(t)).toBe(1);
  });

  it('answers 422 idempotency-key-reuse for the same key with a different body, executing nothing', async () => {
    t = await buildApp(kind);
    await post(t, '/orders', order, 'k1');
    const res = await post(t, '/orders', { sku: 'A-1', quantity: 3 }, 'k1');
    expectProblem(res, 422, 'idempotency-key-reuse');
    expect(t.runs.orders).toBe(1);
    expect(rowCount(t)).toBe(1);
  });

  it('answers 500 problem+json when the work throws, stores nothing, and executes a retry with the same key', async () => {
    t = await buildApp(kind);
    const res = await post(t, '/explode', order, 'k1');
    const body = expectProblem(res, 500, 'server-error');
    expect(body.detail).not.toContain('secret');
    expect(t.storedAnswers()).toBe(0);
    const retry = await post(t, '/explode', order, 'k1');
    expect(retry.statusCode).toBe(500);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(t.runs.explode).toBe(2);
  });

  it('sends a 503 answered by the work without storing it', async () => {
    t = await buildApp(kind);
    const res = await post(t, '/unavailable', order, 'k1');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json()).toEqual({ try: 'later' });
    expect(t.storedAnswers()).toBe(0);
    await post(t, '/unavailable', order, 'k1');
    expect(t.runs.unavailable).toBe(2);
  });

  it('stores a 4xx ProblemError thrown by the handler (outside reply.idempotent) and replays it', async () => {
    t = await buildApp(kind);
    const first = await post(t, '/users', { username: 'ada' }, 'k1');
    expectProblem(first, 409, 'username-taken');
    const again = await post(t, '/users', { username: 'ada' }, 'k1');
    expect(again.statusCode).toBe(409);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect(again.body).toBe(first.body);
    expect(t.runs.users).toBe(1);
  });

  it('keeps the same key apart in two scopes: two executions, two resources', async () => {
    t = await buildApp(kind);
    const a = await post(t, '/orders', order, 'shared', { 'x-tenant': 'a' });
    const b = await post(t, '/orders', order, 'shared', { 'x-tenant': 'b' });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(b.headers.location).not.toBe(a.headers.location);
    expect(t.runs.orders).toBe(2);
    const replayA = await post(t, '/orders', order, 'shared', { 'x-tenant': 'a' });
    expect(replayA.headers.location).toBe(a.headers.location);
  });

  it('runs an optional-key route without a key and records nothing', async () => {
    t = await buildApp(kind);
    const first = await post(t, '/notes', order);
    const second = await post(t, '/notes', order);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers.location).not.toBe(first.headers.location);
    expect(t.runs.notes).toBe(2);
    expect(t.storedAnswers()).toBe(0);
  });

  it('protects an optional-key route when a key is sent', async () => {
    t = await buildApp(kind);
    await post(t, '/notes', order, 'k1');
    const again = await post(t, '/notes', order, 'k1');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(t.runs.notes).toBe(1);
  });

  it('answers 409 idempotency-key-in-use with Retry-After while the first request runs, then replays', async () => {
    t = await buildApp(kind);
    const first = post(t, '/slow', order, 'k1');
    await t.gate.reached;
    const during = await post(t, '/slow', order, 'k1');
    expectProblem(during, 409, 'idempotency-key-in-use');
    expect(Number(during.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    t.gate.open();
    const done = await first;
    expect(done.statusCode).toBe(201);
    const after = await post(t, '/slow', order, 'k1');
    expect(after.headers['idempotent-replayed']).toBe('true');
    expect(after.rawPayload.equals(done.rawPayload)).toBe(true);
    expect(t.runs.slow).toBe(1);
  });

  it('validates the body before claiming: a 422 stores nothing and the same key then executes', async () => {
    t = await buildApp(kind);
    const invalid = await post(t, '/orders', { sku: 'A-1' }, 'k1');
    const body = expectProblem(invalid, 422, 'validation');
    expect(body).toMatchObject({ errors: [{ pointer: '/quantity' }] });
    expect(t.storedAnswers()).toBe(0);
    expect(t.runs.orders).toBeUndefined();
    const valid = await post(t, '/orders', order, 'k1');
    expect(valid.statusCode).toBe(201);
    expect(valid.headers['idempotent-replayed']).toBeUndefined();
  });

  it('answers an unknown route with a 404 problem', async () => {
    t = await buildApp(kind);
    const res = await t.app.inject({ method: 'GET', url: '/nowhere?x=1' });
    const body = expectProblem(res, 404, 'not-found');
    expect(body.detail).toContain('/nowhere');
  });
});

describe('Fastify idempotency adapter: writes inside the SQLite store transaction', () => {
  let t: TestApp;
  afterEach(async () => t.close());

  it('rolls back the row of work that inserts and then throws, so the retry inserts exactly once', async () => {
    t = await buildApp('sqlite');
    await post(t, '/explode', order, 'k1');
    expect(rowCount(t)).toBe(0);
    expect(t.storedAnswers()).toBe(0);
  });

  it('rolls back the row of work that answers 503', async () => {
    t = await buildApp('sqlite');
    await post(t, '/unavailable', order, 'k1');
    expect(rowCount(t)).toBe(0);
  });

  it('rolls back the row of an optional-key request without a key that answers 503', async () => {
    t = await buildApp('sqlite');
    const res = await post(t, '/unavailable', order);
    expect(res.statusCode).toBe(503);
    expect(t.storedAnswers()).toBe(0);
    expect(rowCount(t)).toBe(0);
  });

  it('rolls back the row of a 4xx ProblemError thrown inside reply.idempotent, then stores and replays the 4xx', async () => {
    t = await buildApp('sqlite');
    const first = await post(t, '/users-tx', order, 'k1');
    expectProblem(first, 409, 'username-taken');
    expect(rowCount(t)).toBe(0);
    const again = await post(t, '/users-tx', order, 'k1');
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);
    expect(t.runs['users-tx']).toBe(1);
  });
});

describe('Fastify idempotency adapter with the memory store (no transaction)', () => {
  // Regression (was a bug in engine.ts, Execution#commitOutsideStore releases on every throw): a 4xx ProblemError
  // thrown inside reply.idempotent is answered but never stored, so the retry executes again.
  it('stores and replays a 4xx ProblemError thrown inside reply.idempotent', async () => {
    const t = await buildApp('memory');
    try {
      const first = await post(t, '/users-tx', order, 'k1');
      expect(first.statusCode).toBe(409);
      const again = await post(t, '/users-tx', order, 'k1');
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(t.runs['users-tx']).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describe('Fastify idempotency adapter with a custom header name', () => {
  let app: FastifyInstance;
  afterEach(async () => app.close());

  async function build(): Promise<void> {
    app = Fastify({ logger: false });
    app.setErrorHandler(problemErrorHandler);
    await app.register(idempotency, {
      store: createMemoryStore(),
      scope: () => 't',
      headerName: 'X-Request-Key',
    });
    let id = 0;
    app.post('/things', { config: { idempotency: 'required' } }, async (_request, reply) =>
      reply.idempotent(() => ({ status: 201, headers: { location: `/things/${++id}` } })),
    );
    await app.ready();
  }

  it('reads the key from the configured header and ignores Idempotency-Key', async () => {
    await build();
    const first = await app.inject({ method: 'POST', url: '/things', headers: { 'x-request-key': 'k1' } });
    const again = await app.inject({ method: 'POST', url: '/things', headers: { 'x-request-key': 'k1' } });
    expect(first.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const wrong = await app.inject({ method: 'POST', url: '/things', headers: { 'idempotency-key': 'k1' } });
    expect(wrong.statusCode).toBe(400);
  });

  it('names the configured header when the key is invalid', async () => {
    await build();
    const res = await app.inject({ method: 'POST', url: '/things', headers: { 'x-request-key': 'a,b' } });
    expect((res.json() as { detail: string }).detail).toContain('X-Request-Key header contains a comma');
  });

  // Regression (was a bug in fastify.ts, readKey): the missing-key error is built with the literal 'Idempotency-Key',
  // so the 400 tells the client to resubmit with a header this server does not read (rule 6).
  it('names the configured header when the key is missing, so the client can resubmit', async () => {
    await build();
    const res = await app.inject({ method: 'POST', url: '/things' });
    expect(res.statusCode).toBe(400);
    expect((res.json() as { detail: string }).detail).toContain('X-Request-Key');
  });
});
