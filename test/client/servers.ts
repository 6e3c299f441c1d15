// Loopback servers for client tests: a scripted fault server that records every request, a
// proxy that can drop a response after the real service committed, and a port nobody listens on.
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The body's bytes as received, for binary uploads. */
  raw: Buffer;
}

export interface TestServer {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** `index` counts requests from 0, so a script can fail the first N and then succeed. */
export type FaultHandler = (request: SeenRequest, response: ServerResponse, index: number) => void;

export async function startFaultServer(handler: FaultHandler): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: raw.toString(),
        raw,
      };
      requests.push(seen);
      handler(seen, res, requests.length - 1);
    });
  });
  return { url: await listen(server), requests, close: () => close(server) };
}

/** Answers with a JSON (or problem+json) body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const type = status >= 400 ? 'application/problem+json' : 'application/json';
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(JSON.stringify(body));
}

export function problem(status: number, slug: string, detail: string): Record<string, unknown> {
  return { type: `urn:retrysafe:problem:${slug}`, title: slug, status, detail };
}

/**
 * Forwards to `targetUrl`. When `dropResponse` says so, it waits for the full upstream answer —
 * so the service has committed — and then destroys the client's socket: the response is lost.
 */
export async function startDroppingProxy(
  targetUrl: string,
  dropResponse: (request: SeenRequest, index: number) => boolean,
): Promise<TestServer & { dropped: number }> {
  const requests: SeenRequest[] = [];
  const target = new URL(targetUrl);
  const state = { dropped: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: body.toString(),
        raw: body,
      };
      requests.push(seen);
      const drop = dropResponse(seen, requests.length - 1);
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          const answer: Buffer[] = [];
          upstreamRes.on('data', (chunk: Buffer) => answer.push(chunk));
          upstreamRes.on('end', () => {
            if (drop) {
              state.dropped += 1;
              req.socket.destroy();
              return;
            }
            res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
            res.end(Buffer.concat(answer));
          });
        },
      );
      upstream.on('error', () => req.socket.destroy());
      upstream.end(body);
    });
  });
  const url = await listen(server);
  return {
    url,
    requests,
    close: () => close(server),
    get dropped() {
      return state.dropped;
    },
  };
}

/** A loopback port that was just free: connecting to it is refused. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await close(server);
  return url;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
