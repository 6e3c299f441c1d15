// The fault proxy in front of a real loopback HTTP server: each fault must hit after the
// server has seen the request, which is what makes it a "the server acted, the caller is blind" fault.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Backend, type ChaosProxy, startChaosProxy } from './proxy.js';

let server: Server;
let backend: Backend;
let seen: number;
let proxy: ChaosProxy | undefined;

beforeEach(async () => {
  seen = 0;
  server = createServer((_request, response) => {
    seen++;
    response.end('done');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const get = (port: number, timeoutMs = 5_000) =>
  fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) }).then((r) => r.text());

describe('startChaosProxy', () => {
  it('passes responses through when no fault is drawn', async () => {
    proxy = await startChaosProxy({ backends: () => [backend], rates: { reset: 0, delay: 0 }, delayMs: 10 });
    expect(await get(proxy.port)).toBe('done');
    expect(await get(proxy.port)).toBe('done');
    expect(proxy.counts).toMatchObject({ responses: 2, resets: 0, delays: 0 });
  });

  it('resets the connection after the server answered', async () => {
    proxy = await startChaosProxy({ backends: () => [backend], rates: { reset: 1, delay: 0 }, delayMs: 10 });
    await expect(get(proxy.port)).rejects.toThrow();
    expect(seen).toBe(1);
    expect(proxy.counts.resets).toBe(1);
  });

  it('holds a response past the caller’s timeout, after the server answered', async () => {
    proxy = await startChaosProxy({
      backends: () => [backend],
      rates: { reset: 0, delay: 1 },
      delayMs: 2_000,
    });
    await expect(get(proxy.port, 200)).rejects.toThrow(/abort|timeout/i);
    expect(seen).toBe(1);
    expect(proxy.counts.delays).toBe(1);
  });

  it('delivers a held response once the delay is over', async () => {
    proxy = await startChaosProxy({ backends: () => [backend], rates: { reset: 0, delay: 1 }, delayMs: 50 });
    expect(await get(proxy.port)).toBe('done');
  });

  it('delivers a held response even when the server closes the connection meanwhile', async () => {
    server.removeAllListeners('request');
    server.on('request', (_request, response) => {
      seen++;
      response.setHeader('connection', 'close');
      response.end('done');
    });
    proxy = await startChaosProxy({ backends: () => [backend], rates: { reset: 0, delay: 1 }, delayMs: 100 });
    expect(await get(proxy.port)).toBe('done');
    expect(seen).toBe(1);
  });

  it('decides per response, not per connection', async () => {
    const rolls = [0.99, 0.0];
    proxy = await startChaosProxy({
      backends: () => [backend],
      rates: { reset: 0.5, delay: 0 },
      delayMs: 10,
      random: () => rolls.shift() ?? 0.99,
    });
    expect(await get(proxy.port)).toBe('done');
    await expect(get(proxy.port)).rejects.toThrow();
    expect(proxy.counts).toMatchObject({ responses: 2, resets: 1 });
  });

  it('closes connections at once while no process is up', async () => {
    proxy = await startChaosProxy({ backends: () => [], rates: { reset: 0, delay: 0 }, delayMs: 10 });
    await expect(get(proxy.port)).rejects.toThrow();
    expect(seen).toBe(0);
    expect(proxy.counts.refused).toBe(1);
  });
});
