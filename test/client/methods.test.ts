// patch() and head(), conditional GET with ifNoneMatch, and the ETag cache, over real loopback
// HTTP against scripted servers.
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const fast = { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } };
const busy = (res: Parameters<typeof sendJson>[0]) =>
  sendJson(res, 503, problem(503, 'unavailable', 'busy'), { 'retry-after': '0' });

describe('patch()', () => {
  it('is not retried after a 503 without a key or If-Match (it could apply twice)', async () => {
    server = await startFaultServer((_req, res) => busy(res));
    const result = await createClient({ baseUrl: server.url, ...fast }).patch('/users/1', { bio: 'x' });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.headers['idempotency-key']).toBeUndefined();
    expect(!result.ok && result.error).toMatchObject({ kind: 'server', retryable: false });
  });

  it('is not retried after a dropped connection, and says why', async () => {
    server = await startFaultServer((_req, res) => res.socket?.destroy());
    const result = await createClient({ baseUrl: server.url, ...fast }).patch('/users/1', { bio: 'x' });
    expect(server.requests).toHaveLength(1);
    expect(!result.ok && result.error.message).toMatch(
      /a PATCH without an Idempotency-Key or If-Match could act twice/,
    );
  });

  it('is retried with If-Match, and with a key of yours (kept on every attempt)', async () => {
    server = await startFaultServer((req, res, index) => {
      if (index % 2 === 0) busy(res);
      else sendJson(res, 200, JSON.parse(req.body), { etag: '"v2"' });
    });
    const client = createClient({ baseUrl: server.url, ...fast });
    const matched = await client.patch('/users/1', { bio: 'x' }, { ifMatch: '"v1"' });
    expect(matched.ok && [matched.attempts, matched.data, matched.etag]).toEqual([2, { bio: 'x' }, '"v2"']);
    const keyed = await client.patch('/users/1', { bio: 'y' }, { idempotencyKey: 'p-1' });
    expect(keyed.ok && keyed.attempts).toBe(2);
    expect(
      server.requests.map((r) => [r.method, r.headers['if-match'], r.headers['idempotency-key']]),
    ).toEqual([
      ['PATCH', '"v1"', undefined],
      ['PATCH', '"v1"', undefined],
      ['PATCH', undefined, 'p-1'],
      ['PATCH', undefined, 'p-1'],
    ]);
  });
});

describe('head()', () => {
  it('returns the headers and no data', async () => {
    server = await startFaultServer((_req, res) => {
      res.writeHead(200, { etag: '"v9"', 'content-type': 'application/json', 'content-length': '20' }).end();
    });
    const result = await createClient({ baseUrl: server.url }).head('/users/1');
    expect(result).toMatchObject({ ok: true, status: 200, etag: '"v9"', data: undefined });
    expect(server.requests[0]?.method).toBe('HEAD');
  });
});

describe('conditional GET', () => {
  /** Answers 304 when If-None-Match matches the current version, else 200 with it. */
  function versioned(state: { version: number }) {
    return startFaultServer((req, res) => {
      const etag = `"v${state.version}"`;
      if (req.headers['if-none-match'] === etag) res.writeHead(304, { etag }).end();
      else sendJson(res, 200, { version: state.version }, { etag });
    });
  }

  it('etagCache: sends the remembered ETag and returns the remembered data on 304', async () => {
    const state = { version: 1 };
    server = await versioned(state);
    const client = createClient({ baseUrl: server.url, etagCache: true });
    const first = await client.get<{ version: number }>('/users/1');
    expect(first).toMatchObject({ ok: true, status: 200, notModified: false, data: { version: 1 } });
    if (first.ok) first.data.version = 99; // the caller's copy, not the cache's
    const second = await client.get('/users/1');
    expect(second).toMatchObject({ ok: true, status: 304, notModified: true, data: { version: 1 } });
    state.version = 2;
    const third = await client.get('/users/1');
    expect(third).toMatchObject({ ok: true, status: 200, data: { version: 2 } });
    expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"v1"', '"v1"']);
  });

  it('etagCache: a write through the client forgets the URL; the cache is bounded', async () => {
    const state = { version: 1 };
    server = await versioned(state);
    const client = createClient({ baseUrl: server.url, etagCache: { maxEntries: 1 } });
    await client.get('/users/1');
    await client.put('/users/1', { version: 1 });
    await client.get('/users/1');
    await client.get('/users/2'); // evicts /users/1
    await client.get('/users/1');
    const gets = server.requests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.headers['if-none-match'])).toEqual([undefined, undefined, undefined, undefined]);
    expect(() => createClient({ baseUrl: server?.url ?? '', etagCache: { maxEntries: 0 } })).toThrow(
      TypeError,
    );
  });

  it('without a cache, a 304 has no data: the caller keeps its own copy', async () => {
    server = await versioned({ version: 3 });
    const result = await createClient({ baseUrl: server.url }).get('/users/1', { ifNoneMatch: '"v3"' });
    expect(result).toMatchObject({ ok: true, notModified: true, data: undefined });
  });
});
