// client.poll() over real loopback HTTP against a scripted operation monitor: Retry-After (seconds
// and dates), backoff, long-poll, the deadline and resuming after it, the signal, terminal results.
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const running = (percentComplete: number) => ({ id: 'op1', status: 'running', percentComplete });
const succeeded = { id: 'op1', status: 'succeeded', resourceLocation: '/orders/imports/op1' };

describe('post() on a 202', () => {
  it('exposes the operation from Operation-Location and Retry-After, else from Location', async () => {
    server = await startFaultServer((req, res) => {
      const headers: Record<string, string> =
        req.path === '/a'
          ? { 'operation-location': '/operations/op1', location: '/elsewhere', 'retry-after': '2' }
          : { location: '/operations/op2' };
      sendJson(res, req.path === '/c' ? 201 : 202, { id: 'x', status: 'notStarted' }, headers);
    });
    const client = createClient({ baseUrl: server.url });
    const first = await client.post('/a', {});
    const second = await client.post('/b', {});
    expect(first.ok && first.operation).toEqual({ url: '/operations/op1', retryAfterMs: 2000 });
    expect(second.ok && second.operation).toEqual({ url: '/operations/op2' });
    // A 201 is done work: its Location is the resource, not an operation to follow.
    const created = await client.post('/c', {});
    expect(created.ok && created.operation).toBeUndefined();
  });
});

describe('poll()', () => {
  it('follows a 202 result to success, reporting progress on the way', async () => {
    const states = [running(10), running(60), succeeded];
    server = await startFaultServer((req, res, index) => {
      if (req.method === 'POST') {
        sendJson(res, 202, {}, { 'operation-location': '/operations/op1', 'retry-after': '0' });
        return;
      }
      sendJson(res, 200, states[index - 1], { 'retry-after': '0' });
    });
    const client = createClient({ baseUrl: server.url });
    const accepted = await client.post('/orders/imports', []);
    const progress: number[] = [];
    const result = await client.poll(accepted.ok ? accepted : '/never', {
      onProgress: (operation) => progress.push(operation.percentComplete ?? -1),
    });
    expect(result).toMatchObject({
      ok: true,
      status: 'succeeded',
      resourceLocation: '/orders/imports/op1',
      operationUrl: '/operations/op1',
    });
    expect(progress).toEqual([10, 60]);
    expect(server.requests.filter((r) => r.method === 'GET').map((r) => r.path)).toEqual([
      '/operations/op1',
      '/operations/op1',
      '/operations/op1',
    ]);
  });

  it('honours a Retry-After in seconds or as a date: a wait past the deadline ends at once as a timeout', async () => {
    for (const retryAfter of ['3600', new Date(Date.now() + 3_600_000).toUTCString()]) {
      server = await startFaultServer((_req, res) =>
        sendJson(res, 200, running(5), { 'retry-after': retryAfter }),
      );
      const result = await createClient({ baseUrl: server.url }).poll('/operations/op1', {
        deadlineMs: 5_000,
        intervalMs: 1,
      });
      // Without honouring it, the 1 ms backoff would have polled again many times.
      expect(server.requests).toHaveLength(1);
      expect(result).toMatchObject({ ok: false, status: 'timeout', operationUrl: '/operations/op1' });
      expect(result.status === 'timeout' && result.message).toMatch(
        /still running, 5% complete.*asked to wait.*poll\('\/operations\/op1'\) again to resume/,
      );
      await server.close();
      server = undefined;
    }
  });

  it('backs off with jitter when there is no Retry-After, and waits out a passing 503', async () => {
    server = await startFaultServer((_req, res, index) => {
      if (index === 0) sendJson(res, 503, problem(503, 'unavailable', 'busy'));
      else if (index < 4) sendJson(res, 200, running(index * 20));
      else sendJson(res, 200, succeeded);
    });
    const client = createClient({ baseUrl: server.url, retry: { maxAttempts: 1 } });
    const result = await client.poll('/operations/op1', { intervalMs: 2, maxIntervalMs: 4 });
    expect(result.status).toBe('succeeded');
    expect(server.requests).toHaveLength(5);
  });

  it('long-polls with Prefer: wait=N, and the request outlives the server holding it', async () => {
    server = await startFaultServer((req, res) => {
      // Held past the client's per-attempt timeout of 100 ms, as a long-poll is.
      setTimeout(() => sendJson(res, 200, succeeded), req.headers.prefer === undefined ? 0 : 400);
    });
    const client = createClient({ baseUrl: server.url, timeoutMs: 100, retry: { maxAttempts: 1 } });
    const result = await client.poll('/operations/op1', { wait: 2 });
    expect(server.requests[0]?.headers.prefer).toBe('wait=2');
    expect(result.status).toBe('succeeded');
  });

  it('ends with the failure the operation reports, or canceled', async () => {
    const failed = { id: 'op1', status: 'failed', error: { code: 'too-many-errors', message: 'gave up' } };
    server = await startFaultServer((req, res) =>
      sendJson(res, 200, req.path.endsWith('/failed') ? failed : { id: 'op2', status: 'canceled' }),
    );
    const client = createClient({ baseUrl: server.url });
    expect(await client.poll('/operations/failed')).toMatchObject({
      ok: false,
      status: 'failed',
      error: { code: 'too-many-errors', message: 'gave up' },
      operation: { id: 'op1' },
    });
    expect(await client.poll('/operations/canceled')).toMatchObject({ ok: false, status: 'canceled' });
  });

  it('times out under one deadline with the last state, and resumes from the URL alone', async () => {
    let done = false;
    server = await startFaultServer((_req, res) => sendJson(res, 200, done ? succeeded : running(40)));
    const client = createClient({ baseUrl: server.url });
    const first = await client.poll('/operations/op1', { deadlineMs: 150, intervalMs: 5, maxIntervalMs: 10 });
    expect(first).toMatchObject({ ok: false, status: 'timeout', operation: { percentComplete: 40 } });
    expect(server.requests.length).toBeGreaterThan(1);
    done = true;
    const resumed = await client.poll(first.operationUrl, { intervalMs: 1 });
    expect(resumed).toMatchObject({ ok: true, status: 'succeeded', resourceLocation: '/orders/imports/op1' });
  });

  it('stops when the signal aborts, even in the middle of a wait', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 200, running(1), { 'retry-after': '30' }));
    const controller = new AbortController();
    const result = await createClient({ baseUrl: server.url }).poll('/operations/op1', {
      deadlineMs: 60_000,
      signal: controller.signal,
      onProgress: () => setTimeout(() => controller.abort(), 20),
    });
    expect(server.requests).toHaveLength(1);
    expect(result).toMatchObject({ ok: false, status: 'error', error: { kind: 'aborted', retryable: true } });
  });

  it('reports a missing monitor or an answer that is not an operation as an error', async () => {
    server = await startFaultServer((req, res) => {
      if (req.path.endsWith('/gone')) sendJson(res, 404, problem(404, 'not-found', 'no such operation'));
      else sendJson(res, 200, { status: 'exploded' });
    });
    const client = createClient({ baseUrl: server.url });
    expect(await client.poll('/operations/gone')).toMatchObject({
      status: 'error',
      error: { kind: 'not_found' },
    });
    expect(await client.poll('/operations/odd')).toMatchObject({
      status: 'error',
      error: { kind: 'bad_response' },
    });
  });

  it('refuses a result that names no operation, as a programmer error', async () => {
    const client = createClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(client.poll({})).rejects.toThrow(/names no operation/);
  });
});
