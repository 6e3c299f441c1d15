// Issue 16's defects 1, 2 and 4 in headless Chromium with the built client (dist/client): a
// scripted loopback site serves the page, the client and fault routes on one origin, and a second
// origin records anything that reaches it. Needs `npm run build` and /usr/bin/chromium.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

const distClient = new URL('../../dist/client/', import.meta.url);
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'];

/** Plain browser JavaScript importing the built client; returns only JSON-safe facts. */
const scenarioSource = `
import { createClient } from '/client/index.js';
const brief = (r) => (r.ok ? { ok: true, status: r.status } : { ok: false, ...r.error, cause: undefined });
export async function run(origin) {
  const client = createClient({ baseUrl: origin, headers: { 'x-api-key': 'secret' }, retry: { baseDelayMs: 1 } });
  await client.get('/warm');
  const reset = await client.post('/reset', { a: 1 }, { idempotencyKey: false });
  const form = new FormData();
  form.append('name', 'ann');
  form.append('file', new Blob([new Uint8Array([255, 0])]), 'a.bin');
  const uploads = [
    await client.post('/echo', form),
    await client.post('/echo', new Blob(['plain words'], { type: 'text/plain' })),
    await client.post('/echo', new Uint8Array([1, 2, 255])),
  ].map(brief);
  const map = brief(await client.post('/echo', new Map([['a', 1]])));
  const moved = brief(await client.post('/moved', { a: 1 }));
  return { reset: brief(reset), uploads, map, moved };
}
`;

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
interface Site {
  url: string;
  server: Server;
  seen: Seen[];
}

let site: Site;
let other: Site;
let browser: Browser;

beforeAll(async () => {
  other = await startSite(async (req, res) => {
    // Permissive CORS, as a hostile origin would answer: only the client can keep the key away.
    res.writeHead(req.method === 'OPTIONS' ? 204 : 201, {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': '*',
      'access-control-allow-methods': '*',
    });
    res.end();
  });
  site = await startSite(async (req, res, seen) => {
    const path = req.url ?? '/';
    const file = /^\/client\/([\w.-]+\.js)$/.exec(path)?.[1];
    if (path === '/')
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>t</title>');
    else if (file !== undefined) {
      const source = await readFile(new URL(file, distClient)).catch(() => undefined);
      if (source === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'text/javascript' }).end(source);
    } else if (path === '/scenario.js')
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(scenarioSource);
    else if (path === '/reset') res.socket?.destroy();
    else if (path === '/moved') res.writeHead(307, { location: `${other.url}/collect` }).end();
    else if (path === '/warm' || path === '/echo') {
      res.writeHead(path === '/echo' ? 201 : 200, { 'content-type': 'application/json' }).end('{}');
    } else res.writeHead(404).end();
    return seen;
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
});
afterAll(async () => {
  await browser?.close();
  for (const s of [site, other]) {
    s?.server.closeAllConnections();
    await new Promise((resolve) => s?.server.close(resolve));
  }
});

type Handler = (
  req: import('node:http').IncomingMessage,
  res: import('node:http').ServerResponse,
  seen: Seen,
) => Promise<unknown>;

/** Reads each request in full, records it, then lets `handle` answer (or reset) it. */
async function startSite(handle: Handler): Promise<Site> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(record);
      void handle(req, res, record);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, seen };
}

it('defects 1, 2 and 4 in Chromium: browser re-sends, non-JSON bodies, cross-origin redirects', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${site.url}/`);
    const outcome = (await page.evaluate(
      `import(${JSON.stringify(`${site.url}/scenario.js`)}).then((m) => m.run(${JSON.stringify(site.url)}))`,
    )) as {
      reset: Record<string, unknown>;
      uploads: Record<string, unknown>[];
      map: Record<string, unknown>;
      moved: Record<string, unknown>;
    };

    // Defect 1: the client made one attempt; the browser may have made more on its own.
    const resets = site.seen.filter((r) => r.path === '/reset');
    // Chromium re-sends a POST on a reset reused connection by itself (6–7 times in our runs).
    expect(resets.length).toBeGreaterThan(1);
    expect(resets.every((r) => r.headers['x-retry-count'] === '0')).toBe(true);
    expect(outcome.reset).toMatchObject({ ok: false, kind: 'network', sent: 'maybe', attempts: 1 });
    expect(outcome.reset.message).toMatch(/the browser may have re-sent it/);
    expect(outcome.reset.message).not.toMatch(/It was not retried/);

    // Defect 2: each body arrives as sent, and a Map is refused before anything leaves.
    expect(outcome.uploads.every((u) => u.ok === true)).toBe(true);
    const [multipart, blob, bytes, ...more] = site.seen.filter((r) => r.path === '/echo');
    expect(more).toHaveLength(0);
    expect(multipart?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(multipart?.body.toString()).toContain('ann');
    expect(multipart?.body.includes(Buffer.from([0xff, 0x00]))).toBe(true);
    expect([blob?.headers['content-type'], blob?.body.toString()]).toEqual(['text/plain', 'plain words']);
    expect([...(bytes?.body ?? [])]).toEqual([1, 2, 255]);
    expect(outcome.map).toMatchObject({ ok: false, kind: 'invalid_input', sent: 'no', attempts: 0 });

    // Defect 4: the x-api-key never reaches the other origin, not even as a preflight.
    expect(other.seen).toHaveLength(0);
    expect(outcome.moved).toMatchObject({ ok: false, kind: 'bad_response', sent: 'yes' });
  } finally {
    await page.close();
  }
});
