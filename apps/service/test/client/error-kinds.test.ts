// Every error kind the client can report, each produced for real: by the reference service where
// it can produce it, by a scripted loopback server where only a fault can. The last test checks
// that the list below covers every kind the client exports.

import { type Client, createClient, type ErrorKind, errorKinds, type Result } from 'retrysafe/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  closedPortUrl,
  problem,
  sendJson,
  startFaultServer,
  type TestServer,
} from '../../../../test/client/servers.js';
import { type StartedService, startService } from '../helpers/service.js';

let service: StartedService;
let faults: TestServer;
let writer: Client;
const produced = new Set<ErrorKind>();
const fastRetry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
const order = { items: [{ sku: 'pen', quantity: 1, unitPriceCents: 300 }], currency: 'EUR' };

beforeAll(async () => {
  service = await startService();
  faults = await startFaultServer((req, res) => {
    if (req.path === '/in-use') sendJson(res, 409, problem(409, 'idempotency-key-in-use', 'running'));
    else if (req.path === '/rate-limited') sendJson(res, 429, problem(429, 'rate-limited', 'slow down'));
    else if (req.path === '/boom') sendJson(res, 500, problem(500, 'internal', 'boom'));
    else if (req.path === '/slow') setTimeout(() => sendJson(res, 200, {}), 500).unref();
    else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<h1>Welcome</h1>');
    }
  });
  writer = createClient({ baseUrl: service.url, token: 'demo-writer-a', retry: fastRetry });
});
afterAll(async () => {
  await faults?.close();
  await service?.stop();
});

/** Asserts the failure kind (and status, when given) and records it as produced. */
function expectKind(result: Result<unknown>, kind: ErrorKind, status?: number): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.kind).toBe(kind);
  if (status !== undefined) expect(result.error.status).toBe(status);
  expect(result.error.message.length).toBeGreaterThan(10);
  produced.add(kind);
}

async function newUser(username: string): Promise<{ path: string; etag: string; id: string }> {
  const result = await writer.post<{ id: string }>('/users', { username, email: `${username}@example.com` });
  if (!result.ok) throw new Error(result.error.message);
  return { path: result.location!, etag: result.etag!, id: result.data.id };
}

describe('kinds from the reference service', () => {
  it('invalid_input: a schema rejects the body locally', async () => {
    const schema = z.object({ email: z.email() });
    expectKind(await writer.post('/users', { email: 'x' }, { schema }), 'invalid_input');
  });

  it('validation: the service answers 422 with field errors', async () => {
    const result = await writer.post('/users', { username: 'no' });
    expectKind(result, 'validation', 422);
    expect(!result.ok && result.error.fieldErrors?.map((e) => e.pointer)).toContain('/email');
  });

  it('unauthorized: no token', async () => {
    expectKind(await createClient({ baseUrl: service.url }).get('/users'), 'unauthorized', 401);
  });

  it('forbidden: a reader writes', async () => {
    const reader = createClient({ baseUrl: service.url, token: 'demo-reader-a' });
    expectKind(
      await reader.post('/users', { username: 'rita', email: 'rita@example.com' }),
      'forbidden',
      403,
    );
  });

  it('not_found: an order that does not exist', async () => {
    expectKind(await writer.get('/orders/00000000-0000-4000-8000-000000000000'), 'not_found', 404);
  });

  it('conflict: a username that is taken, with the service’s words', async () => {
    await newUser('alice');
    const result = await writer.post('/users', { username: 'alice', email: 'other@example.com' });
    expectKind(result, 'conflict', 409);
    expect(!result.ok && result.error.message).toContain("Username 'alice' is already taken");
    expect(!result.ok && result.error.problem?.existing).toMatch(/^\/users\//);
  });

  it('precondition_failed: a stale If-Match, and a second create-by-PUT', async () => {
    const user = await newUser('bob');
    const stale = await writer.put(
      user.path,
      { username: 'bob', email: 'b@example.com' },
      { ifMatch: '"stale"' },
    );
    expectKind(stale, 'precondition_failed', 412);
    expect(!stale.ok && stale.error.message).toBe(
      `User ${user.id} was changed by someone else — reload and try again`,
    );

    const path = `/users/${crypto.randomUUID()}`;
    const body = { username: 'carl', email: 'carl@example.com' };
    const createdByPut = await writer.put(path, body, { ifNoneMatch: '*' });
    expect(createdByPut.ok && createdByPut.status).toBe(201);
    expectKind(await writer.put(path, body, { ifNoneMatch: '*' }), 'precondition_failed', 412);
  });

  it('precondition_required: PUT without If-Match', async () => {
    const user = await newUser('cleo');
    expectKind(
      await writer.put(user.path, { username: 'cleo', email: 'c@example.com' }),
      'precondition_required',
      428,
    );
  });

  it('idempotency_key_reuse: the same key with a different body', async () => {
    const key = `reuse-${crypto.randomUUID()}`;
    const first = await writer.post('/orders', order, { idempotencyKey: key });
    expect(first.ok).toBe(true);
    const other = { ...order, note: 'different' };
    const result = await writer.post('/orders', other, { idempotencyKey: key });
    expectKind(result, 'idempotency_key_reuse', 422);
    expect(!result.ok && result.error.retryable).toBe(false);
  });

  it('DELETE with If-Match answers 204 and then not_found', async () => {
    const user = await newUser('dora');
    const deleted = await writer.delete(user.path, { ifMatch: user.etag });
    expect(deleted.ok && deleted.status).toBe(204);
    expectKind(await writer.get(user.path), 'not_found', 404);
  });
});

describe('kinds only a fault produces', () => {
  it('in_use: the key stays busy past the last attempt', async () => {
    const client = createClient({ baseUrl: faults.url, retry: { maxAttempts: 1 } });
    expectKind(await client.post('/in-use', {}), 'in_use', 409);
  });

  it('rate_limited', async () => {
    const client = createClient({ baseUrl: faults.url, retry: { maxAttempts: 1 } });
    expectKind(await client.get('/rate-limited'), 'rate_limited', 429);
  });

  it('server', async () => {
    expectKind(await createClient({ baseUrl: faults.url }).get('/boom'), 'server', 500);
  });

  it('timeout', async () => {
    const client = createClient({ baseUrl: faults.url, timeoutMs: 30, retry: { maxAttempts: 1 } });
    expectKind(await client.get('/slow'), 'timeout');
  });

  it('network', async () => {
    const client = createClient({ baseUrl: await closedPortUrl(), retry: fastRetry });
    expectKind(await client.get('/users'), 'network');
  });

  it('bad_response', async () => {
    expectKind(await createClient({ baseUrl: faults.url }).get('/html'), 'bad_response', 200);
  });

  it('aborted', async () => {
    const controller = new AbortController();
    const pending = createClient({ baseUrl: faults.url }).get('/slow', { signal: controller.signal });
    controller.abort();
    expectKind(await pending, 'aborted');
  });
});

it('produced every error kind the client exports', () => {
  expect([...produced].sort()).toEqual([...errorKinds].sort());
});
