// Answers that are not JSON: text, bytes, a capped stream and the raw Response, over real
// loopback HTTP; error answers are still read as problem JSON whatever was asked.
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { problem, sendJson, startFaultServer, type TestServer } from './servers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const csv = 'id,name\n1,ann\n';

async function csvServer(): Promise<TestServer> {
  return startFaultServer((req, res) => {
    if (req.path === '/missing') return sendJson(res, 404, problem(404, 'not-found', 'No such export.'));
    const body = req.path === '/big' ? 'x'.repeat(5000) : csv;
    res.writeHead(200, { 'content-type': 'text/csv', 'content-length': String(body.length) });
    res.end(body);
  });
}

describe('responseType', () => {
  it('text: a CSV export as a string, typed as one', async () => {
    server = await csvServer();
    const result = await createClient({ baseUrl: server.url }).get('/export.csv', { responseType: 'text' });
    const text: string | undefined = result.ok ? result.data : undefined;
    expect(text).toBe(csv);
    expect(server.requests[0]?.headers.accept).toBe('*/*, application/problem+json');
  });

  it('json (default) on a CSV GET fails with advice for reads, not for POSTs', async () => {
    server = await csvServer();
    const result = await createClient({ baseUrl: server.url }).get('/export.csv');
    expect(!result.ok && result.error.kind).toBe('bad_response');
    expect(!result.ok && result.error.message).toMatch(/text\/csv instead of JSON.*responseType: 'text'/);
    expect(!result.ok && result.error.message).not.toMatch(/repeat it blindly/);
  });

  it('bytes: a Uint8Array, held to maxResponseBytes', async () => {
    server = await csvServer();
    const client = createClient({ baseUrl: server.url, maxResponseBytes: 1000 });
    const small = await client.get('/export.csv', { responseType: 'bytes' });
    expect(small.ok && new TextDecoder().decode(small.data)).toBe(csv);
    const big = await client.get('/big', { responseType: 'bytes' });
    expect(!big.ok && big.error).toMatchObject({ kind: 'bad_response', status: 200, sent: 'yes' });
    expect(!big.ok && big.error.message).toMatch(/larger than maxResponseBytes \(1000 bytes\)/);
  });

  it('stream: readable by the caller, and it errors once it passes the cap', async () => {
    server = await csvServer();
    const client = createClient({ baseUrl: server.url });
    const ok = await client.get('/export.csv', { responseType: 'stream' });
    expect(ok.ok && (await new Response(ok.data).text())).toBe(csv);
    const capped = await client.get('/big', { responseType: 'stream', maxResponseBytes: 100 });
    // The declared Content-Length is already over the cap, so it fails before a byte is read.
    expect(!capped.ok && capped.error.message).toMatch(/maxResponseBytes \(100 bytes\)/);
  });

  it('stream without a Content-Length errors in the stream when it passes the cap', async () => {
    server = await startFaultServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('a'.repeat(600));
      res.end('b'.repeat(600));
    });
    const result = await createClient({ baseUrl: server.url }).get('/feed', {
      responseType: 'stream',
      maxResponseBytes: 1000,
    });
    expect(result.ok).toBe(true);
    await expect(result.ok && new Response(result.data).text()).rejects.toThrow(/maxResponseBytes/);
  });

  it('response: the raw Response, unread', async () => {
    server = await csvServer();
    const result = await createClient({ baseUrl: server.url }).get('/export.csv', {
      responseType: 'response',
    });
    expect(result.ok && result.data.bodyUsed).toBe(false);
    expect(result.ok && (await result.data.text())).toBe(csv);
  });

  it('reads an error answer as problem JSON whatever responseType asked', async () => {
    server = await csvServer();
    const result = await createClient({ baseUrl: server.url }).get('/missing', { responseType: 'text' });
    expect(!result.ok && result.error).toMatchObject({ kind: 'not_found', message: 'No such export.' });
  });

  it('refuses an unknown responseType as a programmer error', async () => {
    const client = createClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(client.get('/x', { responseType: 'xml' as never })).rejects.toThrow(/responseType must be/);
  });
});
