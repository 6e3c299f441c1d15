// Per-call overrides (timeoutMs, deadlineMs, retry), the narrowing shouldRetry rule, and hooks,
// over real loopback HTTP against scripted fault servers.
import { afterEach, describe, expect, it } from 'vitest';
import { type BeforeRequestContext, createClient, type ShouldRetryInfo } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const busy = (res: Parameters<typeof sendJson>[0]) =>
  sendJson(res, 503, problem(503, 'unavailable', 'busy'), { 'retry-after': '0' });

function clientFor(url: string, extra: object = {}) {
  return createClient({ baseUrl: url, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 }, ...extra });
}

describe('per-call overrides', () => {
  it('retry.maxAttempts for one call replaces the client setting, and only for that call', async () => {
    server = await startFaultServer((_req, res) => busy(res));
    const client = clientFor(server.url);
    const more = await client.get('/items', { retry: { maxAttempts: 4 } });
    expect(!more.ok && more.error.attempts).toBe(4);
    const usual = await client.get('/items');
    expect(!usual.ok && usual.error.attempts).toBe(2);
    expect(server.requests).toHaveLength(6);
  });

  it('timeoutMs and deadlineMs for one call bound that call', async () => {
    server = await startFaultServer((_req, res) => {
      setTimeout(() => sendJson(res, 200, {}), 300);
    });
    const client = clientFor(server.url, { timeoutMs: 5_000, deadlineMs: 10_000 });
    const timedOut = await client.get('/slow', { timeoutMs: 50, retry: { maxAttempts: 1 } });
    expect(!timedOut.ok && timedOut.error).toMatchObject({ kind: 'timeout' });
    expect(!timedOut.ok && timedOut.error.message).toMatch(/within 50 ms/);
    const deadline = await client.get('/slow', { deadlineMs: 80 });
    expect(!deadline.ok && deadline.error.message).toMatch(/deadline of 80 ms/);
  });

  it('refuses bad per-call values as programmer errors', async () => {
    const client = clientFor('http://127.0.0.1:1');
    await expect(client.get('/x', { timeoutMs: -1 })).rejects.toThrow(/call options: timeoutMs/);
    await expect(client.get('/x', { retry: { maxAttempts: 0 } })).rejects.toThrow(/retry.maxAttempts/);
  });
});

describe('shouldRetry only narrows', () => {
  it('stops a retry the policy allowed, and is told the attempt, the error and the key', async () => {
    server = await startFaultServer((_req, res) => busy(res));
    const seen: ShouldRetryInfo[] = [];
    const result = await clientFor(server.url).post(
      '/orders',
      {},
      {
        idempotencyKey: 'k-1',
        retry: {
          maxAttempts: 5,
          shouldRetry: (info) => {
            seen.push(info);
            return info.attempt < 2;
          },
        },
      },
    );
    expect(server.requests).toHaveLength(2);
    expect(seen.map((i) => [i.attempt, i.error.status, i.idempotencyKey])).toEqual([
      [1, 503, 'k-1'],
      [2, 503, 'k-1'],
    ]);
    expect(!result.ok && result.error.message).toMatch(/your shouldRetry rule said no/);
  });

  it('cannot widen: an unkeyed POST that may have been sent is not retried even if it says true', async () => {
    server = await startFaultServer((_req, res) => res.socket?.destroy());
    let asked = 0;
    const result = await clientFor(server.url, {
      retry: {
        maxAttempts: 3,
        shouldRetry: () => {
          asked += 1;
          return true;
        },
      },
    }).post('/orders', {}, { idempotencyKey: false });
    expect(server.requests).toHaveLength(1);
    expect(asked).toBe(0);
    expect(!result.ok && result.error).toMatchObject({ kind: 'network', sent: 'maybe', retryable: false });
  });
});

describe('hooks', () => {
  it('runs beforeRequest (can sign), afterResponse and beforeRetry with the attempt and the key', async () => {
    server = await startFaultServer((_req, res, index) => (index === 0 ? busy(res) : sendJson(res, 201, {})));
    const events: string[] = [];
    const sign = ({ headers, attempt }: BeforeRequestContext) => {
      headers.set('x-signature', `sig-${attempt}`);
    };
    const client = clientFor(server.url, {
      hooks: {
        beforeRequest: [sign, (c: BeforeRequestContext) => void events.push(`client-before ${c.attempt}`)],
      },
    });
    const result = await client.post(
      '/orders',
      { a: 1 },
      {
        idempotencyKey: 'k-2',
        hooks: {
          beforeRequest: [(c) => void events.push(`call-before ${c.attempt} ${c.idempotencyKey}`)],
          afterResponse: [(c) => void events.push(`after ${c.attempt} ${c.status}`)],
          beforeRetry: [(c) => void events.push(`retry ${c.attempt} ${c.error.kind} ${c.idempotencyKey}`)],
        },
      },
    );
    expect(result.ok).toBe(true);
    expect(server.requests.map((r) => r.headers['x-signature'])).toEqual(['sig-1', 'sig-2']);
    expect(events).toEqual([
      'client-before 1',
      'call-before 1 k-2',
      'after 1 503',
      'retry 1 server k-2',
      'client-before 2',
      'call-before 2 k-2',
      'after 2 201',
    ]);
  });

  it('rejects the call with a hook error (a programmer error), and checks hooks up front', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 200, {}));
    const client = clientFor(server.url);
    const failing = () => {
      throw new Error('signing key missing');
    };
    await expect(client.get('/x', { hooks: { beforeRequest: [failing] } })).rejects.toThrow(
      'signing key missing',
    );
    expect(server.requests).toHaveLength(0);
    expect(() =>
      createClient({ baseUrl: server?.url ?? '', hooks: { afterResponse: ['no' as never] } }),
    ).toThrow(/hooks.afterResponse must be an array of functions/);
  });
});
