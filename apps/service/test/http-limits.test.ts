// End-to-end over raw sockets: the HTTP server's bounds. Regressions: a body that never
// finished was never closed (requestTimeout 0), idle connections had no cap, a SIGTERMed
// process with one pending slow body never exited, and a request arriving on a busy
// keep-alive connection while draining got Fastify's bare 503 without Retry-After.
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type StartedService, startService } from './helpers/service.js';

/** A generous bound on waits, so a missing timeout fails the test instead of hanging it. */
const boundMs = 15_000;

function open(service: StartedService): Promise<Socket> {
  const { port } = new URL(service.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection (or `boundMs` passes). */
function readUntilClosed(socket: Socket): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve({ text, closed: false }), boundMs);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

const orderBody = JSON.stringify({
  items: [{ sku: 'slow', quantity: 1, unitPriceCents: 1 }],
  currency: 'USD',
});

function orderHead(key: string, length: number, extra = ''): string {
  return (
    `POST /orders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer demo-writer-a\r\n` +
    `Content-Type: application/json\r\nIdempotency-Key: ${key}\r\nContent-Length: ${length}\r\n${extra}\r\n`
  );
}

function waitForExit(service: StartedService): Promise<number | null | 'still running'> {
  return new Promise((resolve) => {
    const child = service.process;
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => resolve('still running'), boundMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('HTTP server bounds', () => {
  it('closes a request body that never finishes with a 408 problem (request timeout)', async () => {
    const service = await startService({
      env: { HTTP_REQUEST_TIMEOUT_MS: '1500', HTTP_HEADERS_TIMEOUT_MS: '1000' },
    });
    try {
      const socket = await open(service);
      const answer = readUntilClosed(socket);
      socket.write(orderHead(randomUUID(), orderBody.length) + orderBody.slice(0, 10));
      const { text, closed } = await answer;
      expect(closed).toBe(true);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text.toLowerCase()).toContain('content-type: application/problem+json');
      expect(text).toContain('request-timeout');
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const service = await startService({ env: { HTTP_KEEP_ALIVE_TIMEOUT_MS: '500' } });
    try {
      const socket = await open(service);
      const answer = readUntilClosed(socket);
      socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
      const { text, closed } = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(closed).toBe(true);
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('refuses connections past HTTP_MAX_CONNECTIONS, and serves again once they close', async () => {
    const service = await startService({ env: { HTTP_MAX_CONNECTIONS: '3' } });
    try {
      const held = await Promise.all([open(service), open(service), open(service)]);
      // Each held connection has sent part of a request, so none is idle.
      for (const socket of held) socket.write('GET /healthz HTTP/1.1\r\n');
      const extra = await open(service);
      const refused = readUntilClosed(extra);
      extra.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
      const { text, closed } = await refused;
      expect(closed).toBe(true);
      expect(text).toBe('');
      for (const socket of held) socket.destroy();
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        status = await fetch(`${service.url}/healthz`).then(
          (r) => r.status,
          () => 0,
        );
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe(200);
    } finally {
      await service.stop();
    }
  }, 60_000);

  it('exits after SIGTERM within the shutdown grace period although a slow body is still pending', async () => {
    const service = await startService({
      env: { SHUTDOWN_GRACE_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '600000', HTTP_HEADERS_TIMEOUT_MS: '60000' },
    });
    const socket = await open(service);
    const answer = readUntilClosed(socket);
    socket.write(orderHead(randomUUID(), orderBody.length) + orderBody.slice(0, 10));
    // The request is in: its onRequest ran, so the server holds it until the body completes.
    await new Promise((resolve) => setTimeout(resolve, 300));
    service.process.kill('SIGTERM');
    const exit = await waitForExit(service);
    expect(exit).not.toBe('still running');
    expect((await answer).closed).toBe(true);
    await service.stop();
  }, 60_000);

  it('answers a request that arrives on a busy keep-alive connection while draining with a 503 problem and Retry-After', async () => {
    const service = await startService({ env: { SHUTDOWN_GRACE_MS: '10000' } });
    const socket = await open(service);
    const answers = readUntilClosed(socket);
    const body = orderBody;
    socket.write(orderHead(randomUUID(), body.length, 'X-Test-Delay-Ms: 1500\r\n') + body);
    for (let i = 0; i < 100 && !service.logs.some((l) => l.includes('test hook: holding')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    service.process.kill('SIGTERM');
    // Draining has begun once the listener is closed: new connections are refused.
    for (let i = 0; i < 100; i++) {
      const refused = await open(service).then(
        (s) => {
          s.destroy();
          return false;
        },
        () => true,
      );
      if (refused) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Same connection, pipelined behind the request still in its handler.
    socket.write('GET /orders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer demo-writer-a\r\n\r\n');
    const { text } = await answers;
    const responses = text.split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 201 /);
    const refused = responses[1] ?? '';
    expect(refused).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused.toLowerCase()).toContain('content-type: application/problem+json');
    expect(refused.toLowerCase()).toMatch(/retry-after: \d+/);
    expect(await waitForExit(service)).toBe(0);
    await service.stop();
  }, 60_000);
});
