// The shipped client (dist/client, built ESM) in headless Chromium against the reference service.
// One loopback origin serves the page, the client files and a pass-through to the service, so the
// browser needs no CORS. Needs `npm run build` and Debian's chromium at /usr/bin/chromium.
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closedPortUrl } from '../../../../test/client/servers.js';
import { type StartedService, startService } from '../helpers/service.js';

const distClient = new URL('../../../../dist/client/', import.meta.url);
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the page does, as plain browser JavaScript importing the built client. */
const scenarioSource = `
import { createClient } from '/client/index.js';
export async function run(origin, deadPort) {
  const client = createClient({ baseUrl: origin, token: 'demo-writer-a', retry: { baseDelayMs: 1 } });
  const created = await client.post('/users', { username: 'browser_bea', email: 'bea@example.com' });
  const taken = await client.post('/users', { username: 'browser_bea', email: 'bea2@example.com' });
  const updated = await client.update(created.location, (user) => { user.bio = 'from chromium'; });
  const ordered = await client.post('/orders', { items: [{ sku: 'mug', quantity: 1, unitPriceCents: 900 }], currency: 'EUR' });
  const dead = createClient({ baseUrl: deadPort, retry: { baseDelayMs: 1 } });
  const unreachable = await dead.post('/users', {}, { idempotencyKey: false });
  return {
    created: { ok: created.ok, status: created.status, location: created.location, etag: created.etag },
    taken: { kind: taken.error?.kind, message: taken.error?.message },
    updated: { ok: updated.ok, bio: updated.data?.bio, attempts: updated.attempts },
    ordered: { ok: ordered.ok, status: ordered.status, key: ordered.idempotencyKey },
    unreachable: { kind: unreachable.error?.kind, sent: unreachable.error?.sent, retryable: unreachable.error?.retryable, attempts: unreachable.error?.attempts },
    hasBuffer: 'Buffer' in globalThis,
    hasProcess: 'process' in globalThis,
  };
}
`;

interface Scenario {
  created: { ok: boolean; status: number; location: string; etag: string };
  taken: { kind: string; message: string };
  updated: { ok: boolean; bio: string; attempts: number };
  ordered: { ok: boolean; status: number; key: string };
  unreachable: { kind: string; sent: string; retryable: boolean; attempts: number };
  hasBuffer: boolean;
  hasProcess: boolean;
}

let service: StartedService;
let site: { url: string; server: Server; seen: IncomingHttpHeaders[] };
let browser: Browser;

beforeAll(async () => {
  service = await startService();
  site = await startSite(service.url);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
});
afterAll(async () => {
  await browser?.close();
  site?.server.closeAllConnections();
  await new Promise((resolve) => site?.server.close(resolve));
  await service?.stop();
});

/** `/` is an empty page, `/client/*.js` the built client, anything else goes to the service. */
async function startSite(
  serviceUrl: string,
): Promise<{ url: string; server: Server; seen: IncomingHttpHeaders[] }> {
  const target = new URL(serviceUrl);
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer(async (req, res) => {
    const path = req.url ?? '/';
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>retrysafe client</title>');
      return;
    }
    const file = /^\/client\/([\w.-]+\.js)$/.exec(path)?.[1];
    if (file !== undefined) {
      try {
        const source = await readFile(new URL(file, distClient));
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(source);
      } catch {
        res.writeHead(404).end();
      }
      return;
    }
    if (path === '/scenario.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(scenarioSource);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    seen.push(req.headers);
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, seen };
}

it('creates, conflicts, updates and orders from a real browser with the built ESM client', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${site.url}/`);
    const deadPort = await closedPortUrl();
    // A string, so the test runner's transforms never touch the code that runs in the page.
    const outcome = (await page.evaluate(
      `import(${JSON.stringify(`${site.url}/scenario.js`)}).then((m) => m.run(${JSON.stringify(site.url)}, ${JSON.stringify(deadPort)}))`,
    )) as Scenario;

    expect(outcome.hasBuffer || outcome.hasProcess).toBe(false);
    expect(outcome.created).toMatchObject({ ok: true, status: 201 });
    expect(outcome.created.location).toMatch(/^\/users\//);
    expect(outcome.created.etag).toMatch(/^"/);
    expect(outcome.taken).toEqual({ kind: 'conflict', message: "Username 'browser_bea' is already taken." });
    expect(outcome.updated).toEqual({ ok: true, bio: 'from chromium', attempts: 2 });
    expect(outcome.ordered.ok).toBe(true);
    expect(outcome.ordered.key).toMatch(/^[0-9a-f-]{36}$/);
    // Browsers hide why a fetch failed, so the client must assume the request may have gone out.
    expect(outcome.unreachable).toEqual({ kind: 'network', sent: 'maybe', retryable: false, attempts: 1 });

    const orderRequest = site.seen.find((h) => h['idempotency-key'] === outcome.ordered.key);
    expect(orderRequest?.['x-retry-count']).toBe('0');
    expect(site.seen.every((h) => h['x-retry-count'] !== undefined)).toBe(true);
  } finally {
    await page.close();
  }
});
