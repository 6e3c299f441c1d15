// A fault-injecting TCP proxy on loopback for `retrysafe chaos`: it spreads connections over
// the live service processes and, per HTTP response, may reset the connection (the server
// acted, the caller never hears) or hold the response past the caller's timeout.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

export interface ProxyFaultRates {
  /** Fraction of responses dropped with a TCP reset after the server answered. */
  reset: number;
  /** Fraction of responses held for `delayMs` before they are passed on. */
  delay: number;
}

export interface ChaosProxyOptions {
  /** The processes to forward to now; asked on every new connection (they die and restart). */
  backends: () => Backend[];
  rates: ProxyFaultRates;
  delayMs: number;
  random?: () => number;
}

export interface ProxyCounts {
  connections: number;
  /** Connections closed at once because no service process was alive. */
  refused: number;
  responses: number;
  resets: number;
  delays: number;
}

export interface ChaosProxy {
  port: number;
  counts: ProxyCounts;
  close(): Promise<void>;
}

export async function startChaosProxy(options: ChaosProxyOptions): Promise<ChaosProxy> {
  const random = options.random ?? Math.random;
  const counts: ProxyCounts = { connections: 0, refused: 0, responses: 0, resets: 0, delays: 0 };
  const sockets = new Set<Socket>();
  let nextBackend = 0;

  const server: Server = createServer((client) => {
    counts.connections++;
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => {});
    const live = options.backends();
    if (live.length === 0) {
      counts.refused++;
      client.resetAndDestroy();
      return;
    }
    const backend = live[nextBackend++ % live.length]!;
    const upstream = createConnection(backend);
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    // HTTP/1.1 without pipelining: bytes from the server after bytes from the client start a
    // new response. The fault is decided once per response, at its first bytes.
    let awaitingResponse = false;
    let fault: 'none' | 'reset' | 'delay' = 'none';
    let held: Buffer[] = [];
    const closeBoth = () => {
      if (!client.destroyed) client.resetAndDestroy();
      upstream.destroy();
    };
    // A held response is passed on before the connection ends, even if the server closed it
    // or died meanwhile: its bytes had left the server, as they would be on a slow network.
    let endAfterHeld = false;
    upstream.on('error', () => {
      if (fault === 'delay') upstream.destroy();
      else closeBoth();
    });
    client.on('error', closeBoth);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      if (fault === 'delay') endAfterHeld = true;
      else if (!client.destroyed) client.end();
    });

    client.on('data', (chunk) => {
      awaitingResponse = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (awaitingResponse) {
        awaitingResponse = false;
        counts.responses++;
        const roll = random();
        fault =
          roll < options.rates.reset
            ? 'reset'
            : roll < options.rates.reset + options.rates.delay
              ? 'delay'
              : 'none';
        if (fault === 'reset') {
          counts.resets++;
          closeBoth();
          return;
        }
        if (fault === 'delay') {
          counts.delays++;
          held = [chunk];
          setTimeout(() => {
            fault = 'none';
            if (!client.destroyed) for (const part of held) client.write(part);
            held = [];
            if (endAfterHeld && !client.destroyed) client.end();
          }, options.delayMs).unref();
          return;
        }
      }
      if (fault === 'delay') held.push(chunk);
      else if (fault === 'none' && !client.destroyed) client.write(chunk);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('chaos proxy has no port');
  return {
    port: address.port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
