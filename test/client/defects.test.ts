// Regression tests for the six defects of issue 16, over real loopback HTTP. Each is named after
// the defect and fails on the code before its fix.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: Parameters<typeof startFaultServer>[0]): Promise<TestServer> {
  const server = await startFaultServer(handler);
  servers.push(server);
  return server;
}

function clientFor(url: string, extra: Parameters<typeof createClient>[0] | object = {}) {
  return createClient({ baseUrl: url, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, ...extra });
}

describe('defect 1: an unkeyed POST whose connection is reset after the server read it', () => {
  it('is sent once by Node, and the message says it was not retried (no browser caveat)', async () => {
    const server = await serve((_req, res) => res.socket?.destroy());
    const result = await clientFor(server.url).post('/orders', { a: 1 }, { idempotencyKey: false });
    expect(server.requests).toHaveLength(1);
    expect(!result.ok && result.error).toMatchObject({ kind: 'network', sent: 'maybe', attempts: 1 });
    expect(!result.ok && result.error.message).toMatch(/It was not retried/);
    expect(!result.ok && result.error.message).not.toMatch(/browser/);
  });
});

describe('defect 2: non-JSON bodies are sent faithfully or refused', () => {
  it('sends FormData, Blob, bytes, ArrayBuffer, URLSearchParams and a typed string as they are', async () => {
    const server = await serve((_req, res) => sendJson(res, 201, {}));
    const client = clientFor(server.url);
    const form = new FormData();
    form.append('name', 'ann');
    form.append('avatar', new Blob([new Uint8Array([0xff, 0x00])], { type: 'image/png' }), 'a.png');
    const results = [
      await client.post('/upload', form),
      await client.post('/upload', new Blob(['plain words'], { type: 'text/plain' })),
      await client.post('/upload', new Uint8Array([1, 2, 255])),
      await client.post('/upload', new Uint16Array([0x0102]).buffer),
      await client.post('/upload', new URLSearchParams({ q: 'x y' })),
      await client.post('/upload', 'a,b\n1,2', { headers: { 'content-type': 'text/csv' } }),
    ];
    expect(results.every((r) => r.ok)).toBe(true);
    const [multipart, blob, bytes, buffer, params, csv] = server.requests;
    expect(multipart?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(multipart?.body).toContain('name="name"\r\n\r\nann');
    expect(multipart?.raw.includes(Buffer.from([0xff, 0x00]))).toBe(true);
    expect([blob?.headers['content-type'], blob?.body]).toEqual(['text/plain', 'plain words']);
    expect([bytes?.headers['content-type'], [...(bytes?.raw ?? [])]]).toEqual([
      'application/octet-stream',
      [1, 2, 255],
    ]);
    expect(buffer?.raw.length).toBe(2);
    expect([params?.headers['content-type'], params?.body]).toEqual([
      'application/x-www-form-urlencoded',
      'q=x+y',
    ]);
    expect([csv?.headers['content-type'], csv?.body]).toEqual(['text/csv', 'a,b\n1,2']);
  });

  it('retries a keyed FormData POST with byte-identical bodies, so the server fingerprint matches', async () => {
    const server = await serve((_req, res, index) => {
      if (index === 0) sendJson(res, 503, problem(503, 'unavailable', 'busy'), { 'retry-after': '0' });
      else sendJson(res, 201, {});
    });
    const form = new FormData();
    form.append('file', new Blob(['hello']), 'h.txt');
    const result = await clientFor(server.url).post('/upload', form);
    expect(result.ok && result.attempts).toBe(2);
    const [first, second] = server.requests;
    expect(first?.headers['content-type']).toBe(second?.headers['content-type']);
    expect(first?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(first?.body).toContain('hello');
    expect(first?.raw.equals(second?.raw ?? Buffer.alloc(0))).toBe(true);
  });

  it('sends a stream as it is when the call makes one attempt', async () => {
    const server = await serve((_req, res) => sendJson(res, 201, {}));
    const client = clientFor(server.url, { retry: { maxAttempts: 1 } });
    const result = await client.put('/files/1', new Blob(['streamed']).stream());
    expect(result.ok).toBe(true);
    expect(server.requests[0]?.body).toBe('streamed');
  });

  it('hands back a 307 for a stream body instead of resending a consumed stream', async () => {
    const server = await serve((req, res) => {
      if (req.path === '/old') res.writeHead(307, { location: '/new' }).end();
      else sendJson(res, 201, {});
    });
    const client = clientFor(server.url, { retry: { maxAttempts: 1 } });
    const result = await client.put('/old', new Blob(['streamed']).stream());
    expect(server.requests.map((r) => [r.path, r.body])).toEqual([['/old', 'streamed']]);
    expect(!result.ok && result.error).toMatchObject({ kind: 'bad_response', status: 307 });
  });

  it('refuses a Map, a Set, a class instance or a nested Uint8Array as invalid_input and sends nothing', async () => {
    const server = await serve((_req, res) => sendJson(res, 201, {}));
    const client = clientFor(server.url);
    class Point {
      x = 1;
    }
    for (const body of [new Map([['a', 1]]), new Set([1]), new Point(), { bytes: new Uint8Array([1]) }]) {
      const result = await client.post('/things', body);
      expect(!result.ok && result.error).toMatchObject({ kind: 'invalid_input', sent: 'no', attempts: 0 });
      expect(!result.ok && result.error.message).toMatch(/is not JSON.*Nothing was sent/);
    }
    expect(server.requests).toHaveLength(0);
  });
});

describe('defect 3: update() with a callback that mutates and returns nothing', () => {
  it('compiles (a void callback is a Change) and writes the mutated copy with If-Match', async () => {
    const server = await serve((req, res) => {
      if (req.method === 'GET') sendJson(res, 200, { bio: 'old' }, { etag: '"v1"' });
      else sendJson(res, 200, JSON.parse(req.body), { etag: '"v2"' });
    });
    // Typed on purpose: before the fix this line was TS2345 (void is not a Change<Profile>).
    const result = await clientFor(server.url).update<{ bio: string }>('/profiles/1', (profile) => {
      profile.bio = 'new';
    });
    expect(result.ok && result.data).toEqual({ bio: 'new' });
    expect(server.requests[1]?.headers['if-match']).toBe('"v1"');
  });
});

describe('defect 4: configured credential headers and cross-origin redirects', () => {
  it('does not follow a 307 to another origin, so x-api-key never reaches it', async () => {
    const other = await serve((_req, res) => sendJson(res, 201, {}, { location: '/stolen/1' }));
    const server = await serve((_req, res) => {
      res.writeHead(307, { location: `${other.url}/collect` }).end();
    });
    const client = clientFor(server.url, { headers: { 'x-api-key': 'secret' } });
    const result = await client.post('/orders', { a: 1 });
    expect(other.requests).toHaveLength(0);
    expect(!result.ok && result.error).toMatchObject({
      kind: 'bad_response',
      status: 307,
      sent: 'yes',
      location: `${other.url}/collect`,
    });
    expect(!result.ok && result.error.message).toMatch(/another origin.*did not follow/);
  });

  it('still follows a same-origin 307 with the body, the key and the headers', async () => {
    const server = await serve((req, res) => {
      if (req.path === '/old') res.writeHead(307, { location: '/new' }).end();
      else sendJson(res, 201, { at: req.path }, { location: '/orders/1' });
    });
    const client = clientFor(server.url, { headers: { 'x-api-key': 'secret' } });
    const result = await client.post('/old', { a: 1 });
    expect(result.ok && result.data).toEqual({ at: '/new' });
    const [first, second] = server.requests;
    expect(second?.headers['x-api-key']).toBe('secret');
    expect(second?.headers['idempotency-key']).toBe(first?.headers['idempotency-key']);
    expect(second?.body).toBe('{"a":1}');
  });

  it("follows it anyway with redirect: 'follow' (fetch's behaviour, chosen knowingly)", async () => {
    const other = await serve((_req, res) => sendJson(res, 200, {}));
    const server = await serve((_req, res) => res.writeHead(302, { location: `${other.url}/x` }).end());
    const result = await clientFor(server.url, { redirect: 'follow' }).get('/x');
    expect(result.ok).toBe(true);
    expect(other.requests).toHaveLength(1);
    expect(() => createClient({ baseUrl: server.url, redirect: 'anywhere' as never })).toThrow(TypeError);
  });
});

describe('defect 5: a 304 answer to a conditional GET', () => {
  it('is a success that says not modified, sending If-None-Match', async () => {
    const server = await serve((req, res) => {
      if (req.headers['if-none-match'] === '"v1"') res.writeHead(304, { etag: '"v1"' }).end();
      else sendJson(res, 200, { v: 1 }, { etag: '"v1"' });
    });
    const result = await clientFor(server.url).get('/users/1', { ifNoneMatch: '"v1"' });
    expect(result).toMatchObject({ ok: true, status: 304, notModified: true, data: undefined, etag: '"v1"' });
    const fresh = await clientFor(server.url).get('/users/1');
    expect(fresh).toMatchObject({ ok: true, status: 200, notModified: false, data: { v: 1 } });
  });
});

describe('defect 6: a 201 whose body is cut off', () => {
  let raw: Server | undefined;
  afterEach(async () => {
    raw?.closeAllConnections();
    await new Promise((resolve) => raw?.close(resolve));
    raw = undefined;
  });

  /** Sends the head of a 201 with Location and ETag and half its body, then resets the socket. */
  async function truncatingServer(): Promise<{ url: string; count: () => number }> {
    let count = 0;
    raw = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        count += 1;
        res.writeHead(201, {
          'content-type': 'application/json',
          'content-length': '100',
          location: '/orders/o1',
          etag: '"e1"',
        });
        res.write('{"id":"o1",', () => setTimeout(() => res.socket?.destroy(), 20));
      });
    });
    await new Promise<void>((resolve) => raw?.listen(0, '127.0.0.1', resolve));
    const { port } = raw.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, count: () => count };
  }

  it('keeps the status, Location and ETag, says sent: yes, and explains the body was incomplete', async () => {
    const server = await truncatingServer();
    const result = await clientFor(server.url).post('/orders', {}, { idempotencyKey: false });
    expect(server.count()).toBe(1);
    expect(!result.ok && result.error).toMatchObject({
      status: 201,
      sent: 'yes',
      location: '/orders/o1',
      etag: '"e1"',
      retryable: false,
    });
    expect(!result.ok && result.error.message).toMatch(
      /accepted the request \(HTTP 201\).*before its answer's body was complete.*\/orders\/o1/,
    );
  });

  it('retries a keyed POST (the server replays the stored answer), still sent: yes at the end', async () => {
    const server = await truncatingServer();
    const result = await clientFor(server.url).post('/orders', {});
    expect(server.count()).toBe(3);
    expect(!result.ok && result.error).toMatchObject({ status: 201, sent: 'yes', retryable: true });
  });
});

describe('minor: baseUrl with a path, and schema-typed bodies', () => {
  it('treats a baseUrl path as a prefix, and keeps a Location that already carries it', async () => {
    const server = await serve((req, res) => sendJson(res, 200, { at: req.path }));
    const client = clientFor(`${server.url}/v1`);
    await client.get('/users');
    await client.get('users/2');
    await client.get('/v1/users/42');
    await client.get(`${server.url}/v1/x`);
    await clientFor(`${server.url}/v1/`).get('/users');
    expect(server.requests.map((r) => r.path)).toEqual([
      '/v1/users',
      '/v1/users/2',
      '/v1/users/42',
      '/v1/x',
      '/v1/users',
    ]);
  });

  it('types the body as the schema input (a compile-time check, proven by tsc)', async () => {
    const server = await serve((_req, res) => sendJson(res, 201, {}));
    const schema = z.object({ username: z.string() });
    const client = clientFor(server.url);
    // @ts-expect-error username must be a string: before the fix the body was `unknown` and this compiled.
    const wrong = await client.post('/users', { username: 42 }, { schema });
    expect(!wrong.ok && wrong.error.kind).toBe('invalid_input');
    const right = await client.post('/users', { username: 'ann' }, { schema });
    expect(right.ok).toBe(true);
  });
});
