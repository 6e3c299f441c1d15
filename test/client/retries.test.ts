// The client's retry policy over real loopback HTTP against scripted fault servers: which
// failures are repeated, with which key and headers, how long it waits, and when it stops.
import * as v from 'valibot';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ClientOptions, createClient, type RetryInfo } from '../../src/client/index.js';
import { closedPortUrl, problem, sendJson, startFaultServer, type TestServer } from './servers.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const created = { id: 'o1', totalCents: 100 };

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Tiny backoff so retries cost milliseconds; each test says what it needs beyond that. */
function clientFor(url: string, extra: Partial<ClientOptions> = {}) {
  return createClient({
    baseUrl: url,
    token: 'demo-writer-a',
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  });
}

describe('headers across attempts', () => {
  it('sends X-Retry-Count 0, 1, 2 and one generated Idempotency-Key on every attempt of a POST', async () => {
    server = await startFaultServer((_req, res, index) => {
      if (index < 2) sendJson(res, 503, problem(503, 'unavailable', 'busy'), { 'retry-after': '0' });
      else sendJson(res, 201, created, { location: '/orders/o1' });
    });
    const result = await clientFor(server.url).post('/orders', { currency: 'EUR' });
    expect(result.ok && result.attempts).toBe(3);
    expect(server.requests.map((r) => r.headers['x-retry-count'])).toEqual(['0', '1', '2']);
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[0]).toMatch(uuidPattern);
    expect(new Set(keys).size).toBe(1);
    expect(result.ok && result.idempotencyKey).toBe(keys[0]);
    expect(result.ok && result.location).toBe('/orders/o1');
  });

  it('keeps a caller-supplied Idempotency-Key on every retry', async () => {
    server = await startFaultServer((_req, res, index) => {
      if (index === 0) sendJson(res, 502, problem(502, 'bad-gateway', 'upstream failed'));
      else sendJson(res, 201, created);
    });
    const result = await clientFor(server.url).post(
      '/orders',
      { currency: 'EUR' },
      { idempotencyKey: 'order-7' },
    );
    expect(result.ok).toBe(true);
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual(['order-7', 'order-7']);
  });

  it('generates a new key per logical POST, not per client', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, created));
    const client = clientFor(server.url);
    await client.post('/orders', {});
    await client.post('/orders', {});
    const [first, second] = server.requests.map((r) => r.headers['idempotency-key']);
    expect(first).not.toBe(second);
  });

  it('sends no key with idempotencyKey: false or autoIdempotencyKey: false', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, created));
    await clientFor(server.url).post('/users', {}, { idempotencyKey: false });
    await clientFor(server.url, { autoIdempotencyKey: false }).post('/users', {});
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual([undefined, undefined]);
  });

  it('sends JSON, form bodies and the bearer token as the server expects', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, created));
    const client = clientFor(server.url);
    await client.post('/users', { username: 'ann', interests: ['a', 'b'], age: undefined }, { form: true });
    await client.post('/users', new URLSearchParams({ username: 'bo' }));
    await client.post('/users', { username: 'cy' });
    const [form, params, json] = server.requests;
    expect(form?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(form?.body).toBe('username=ann&interests=a&interests=b');
    expect(params?.body).toBe('username=bo');
    expect(json?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(json?.body ?? '')).toEqual({ username: 'cy' });
    expect(json?.headers.authorization).toBe('Bearer demo-writer-a');
  });
});

describe('maybe-sent and never-sent failures', () => {
  it('does not retry a POST without a key after the connection dropped mid-request', async () => {
    server = await startFaultServer((_req, res) => res.socket?.destroy());
    const result = await clientFor(server.url).post('/users', { username: 'ann' }, { idempotencyKey: false });
    expect(server.requests).toHaveLength(1);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ kind: 'network', sent: 'maybe', retryable: false, attempts: 1 });
    expect(result.error.message).toContain('not retried');
  });

  it('retries the same dropped POST when it carries a key', async () => {
    server = await startFaultServer((_req, res) => res.socket?.destroy());
    const result = await clientFor(server.url).post('/orders', {});
    expect(server.requests).toHaveLength(3);
    expect(!result.ok && result.error).toMatchObject({
      kind: 'network',
      sent: 'maybe',
      retryable: true,
      attempts: 3,
    });
  });

  it('reports a refused connection as never sent, and retries it even for a POST without a key', async () => {
    const retries: RetryInfo[] = [];
    const client = clientFor(await closedPortUrl(), { onRetry: (info) => retries.push(info) });
    const result = await client.post('/users', { username: 'ann' }, { idempotencyKey: false });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ kind: 'network', sent: 'no', retryable: true, attempts: 3 });
    expect(retries).toHaveLength(2);
    expect(result.error.message).toContain('ECONNREFUSED');
  });

  it('turns a response slower than the timeout into timeout / maybe, and does not repeat an unkeyed POST', async () => {
    server = await startFaultServer((_req, res) => {
      setTimeout(() => sendJson(res, 201, created), 400).unref();
    });
    const client = clientFor(server.url, { timeoutMs: 40 });
    const post = await client.post('/users', {}, { idempotencyKey: false });
    expect(!post.ok && post.error).toMatchObject({
      kind: 'timeout',
      sent: 'maybe',
      retryable: false,
      attempts: 1,
    });
    expect(server.requests).toHaveLength(1);

    const get = await client.get('/users/1');
    expect(!get.ok && get.error).toMatchObject({
      kind: 'timeout',
      sent: 'maybe',
      retryable: true,
      attempts: 3,
    });
    expect(server.requests).toHaveLength(4);
  });

  it('lets no attempt outlive the overall deadline', async () => {
    server = await startFaultServer((_req, res) => {
      setTimeout(() => sendJson(res, 200, {}), 1_000).unref();
    });
    const result = await clientFor(server.url, { timeoutMs: 5_000, deadlineMs: 60 }).get('/slow');
    expect(!result.ok && result.error).toMatchObject({ kind: 'timeout', attempts: 1 });
    expect(!result.ok && result.error.message).toContain('deadline');
    expect(server.requests).toHaveLength(1);
  });
});

describe('Retry-After', () => {
  it('waits out 409 idempotency-key-in-use and then gets the replayed answer', async () => {
    server = await startFaultServer((_req, res, index) => {
      if (index === 0) {
        sendJson(res, 409, problem(409, 'idempotency-key-in-use', 'still running'), { 'retry-after': '0' });
      } else sendJson(res, 201, created, { 'idempotent-replayed': 'true' });
    });
    const retries: RetryInfo[] = [];
    const result = await clientFor(server.url, { onRetry: (info) => retries.push(info) }).post('/orders', {});
    expect(result.ok && result.replayed).toBe(true);
    expect(retries[0]).toMatchObject({ fromRetryAfter: true, delayMs: 0, error: { kind: 'in_use' } });
  });

  it('honours a 429 Retry-After given as an HTTP date, even for a POST without a key', async () => {
    server = await startFaultServer((_req, res, index) => {
      if (index === 0) {
        const at = new Date(Date.now() + 1_500).toUTCString();
        sendJson(res, 429, problem(429, 'rate-limited', 'slow down'), { 'retry-after': at });
      } else sendJson(res, 201, created);
    });
    const retries: RetryInfo[] = [];
    const client = clientFor(server.url, { onRetry: (info) => retries.push(info) });
    const result = await client.post('/users', {}, { idempotencyKey: false });
    expect(result.ok).toBe(true);
    expect(server.requests).toHaveLength(2);
    // The date has whole seconds, so the wait is 0.5–1.5 s; the backoff alone would be under 5 ms.
    expect(retries[0]?.fromRetryAfter).toBe(true);
    expect(retries[0]?.delayMs).toBeGreaterThan(400);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(1_500);
  });

  it('fails at once when Retry-After is past the deadline, with the wait in the error', async () => {
    server = await startFaultServer((_req, res) => {
      sendJson(res, 429, problem(429, 'rate-limited', 'slow down'), { 'retry-after': '30' });
    });
    const result = await clientFor(server.url, { deadlineMs: 1_000 }).get('/users');
    expect(server.requests).toHaveLength(1);
    expect(!result.ok && result.error).toMatchObject({
      kind: 'rate_limited',
      status: 429,
      retryAfterMs: 30_000,
      retryable: true,
      attempts: 1,
    });
    expect(!result.ok && result.error.message).toContain('past this call');
  });
});

describe('cancellation', () => {
  it('aborts in the middle of a backoff wait without sending again', async () => {
    server = await startFaultServer((_req, res) => {
      sendJson(res, 503, problem(503, 'unavailable', 'busy'), { 'retry-after': '5' });
    });
    const controller = new AbortController();
    let retries = 0;
    const client = clientFor(server.url, {
      onRetry: () => {
        retries += 1;
        setTimeout(() => controller.abort(), 20);
      },
    });
    const result = await client.get('/users', { signal: controller.signal });
    expect(retries).toBe(1);
    expect(server.requests).toHaveLength(1);
    expect(!result.ok && result.error).toMatchObject({ kind: 'aborted', attempts: 1, status: 503 });
  });

  it('aborts a request in flight as maybe-sent, and one aborted beforehand as never sent', async () => {
    server = await startFaultServer((_req, res) => {
      setTimeout(() => sendJson(res, 201, created), 1_000).unref();
    });
    const controller = new AbortController();
    const pending = clientFor(server.url).post('/orders', {}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    const inFlight = await pending;
    expect(!inFlight.ok && inFlight.error).toMatchObject({ kind: 'aborted', sent: 'maybe', attempts: 1 });

    const before = await clientFor(server.url).post('/orders', {}, { signal: AbortSignal.abort() });
    expect(!before.ok && before.error).toMatchObject({ kind: 'aborted', sent: 'no', attempts: 0 });
    expect(server.requests).toHaveLength(1);
  });
});

describe('responses that are not what they claim', () => {
  it('turns an HTML 502 page into server (the status says enough), and retries it for a GET', async () => {
    server = await startFaultServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    });
    const result = await clientFor(server.url).get('/users/1');
    expect(server.requests).toHaveLength(3);
    expect(!result.ok && result.error).toMatchObject({ kind: 'server', status: 502, sent: 'maybe' });
    expect(!result.ok && result.error.message).toMatch(/HTTP 502.*proxy or gateway error page/);
    expect(!result.ok && result.error.problem).toBeUndefined();
  });

  it('never hands an HTML 200 page to the caller as data', async () => {
    server = await startFaultServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Sign in to the Wi-Fi</title>');
    });
    const result = await clientFor(server.url).get('/users/1');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatchObject({
      kind: 'bad_response',
      status: 200,
      sent: 'yes',
      attempts: 1,
    });
  });

  it('rejects a JSON body that fails the response schema', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 200, { id: 42 }));
    const result = await clientFor(server.url).get('/users/1', {
      responseSchema: z.object({ id: z.string() }),
    });
    expect(!result.ok && result.error.kind).toBe('bad_response');
    expect(!result.ok && result.error.fieldErrors?.[0]?.pointer).toBe('/id');
  });

  it('reports a 500 as server and does not retry it, even for a GET', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 500, problem(500, 'internal', 'boom')));
    const result = await clientFor(server.url).get('/users/1');
    expect(server.requests).toHaveLength(1);
    expect(!result.ok && result.error).toMatchObject({ kind: 'server', status: 500, retryable: false });
  });
});

describe('input validation', () => {
  const zodUser = z.object({ username: z.string().min(3), email: z.email() });
  const valibotUser = v.object({
    username: v.pipe(v.string(), v.minLength(3)),
    email: v.pipe(v.string(), v.email()),
  });

  it.each([
    ['zod', zodUser],
    ['valibot', valibotUser],
  ])('sends nothing when %s rejects the input, and names the fields', async (_name, schema) => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, created));
    const result = await clientFor(server.url).post('/users', { username: 'al', email: 'nope' }, { schema });
    expect(server.requests).toHaveLength(0);
    expect(!result.ok && result.error).toMatchObject({ kind: 'invalid_input', sent: 'no', attempts: 0 });
    expect(!result.ok && result.error.fieldErrors?.map((e) => e.pointer).sort()).toEqual([
      '/email',
      '/username',
    ]);
  });

  it('sends the schema output when the input is valid', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, created));
    const schema = z.object({ username: z.string().trim(), interests: z.array(z.string()).default([]) });
    const result = await clientFor(server.url).post('/users', { username: '  ann ' }, { schema });
    expect(result.ok).toBe(true);
    expect(JSON.parse(server.requests[0]?.body ?? '')).toEqual({ username: 'ann', interests: [] });
  });

  it('throws (or rejects) only for programmer errors', async () => {
    expect(() => createClient({ baseUrl: 'not a url' })).toThrow(TypeError);
    expect(() => createClient({ baseUrl: 'http://127.0.0.1:1', retry: { maxAttempts: 0 } })).toThrow(
      TypeError,
    );
    const client = createClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(client.get('http://example.com/steal-the-token')).rejects.toThrow(
      /leaves the client's origin/,
    );
    await expect(client.post('/orders', {}, { idempotencyKey: 'has,comma' })).rejects.toThrow(TypeError);
  });
});
