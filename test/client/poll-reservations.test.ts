// reserveAndFill() and fill() over real loopback HTTP against a small POST-PUT server (PROTOCOL
// rule 33): persist before the fill, resume after a crash, safe retries, never a second order.
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { problem, type SeenRequest, sendJson, startFaultServer, type TestServer } from './servers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Slot {
  etag: string;
  filled?: string;
}

/** Reserve → 201 with Location and ETag; PUT with that ETag fills once; the same PUT → same 200; else 412. */
function reservationServer(options: { dropFirstFillAnswer?: boolean } = {}) {
  const slots = new Map<string, Slot>();
  let fills = 0;
  let dropped = false;
  const handle = (req: SeenRequest, res: ServerResponse): void => {
    if (req.method === 'POST' && req.path === '/orders/reservations') {
      const id = String(slots.size + 1);
      slots.set(id, { etag: `"r${id}"` });
      sendJson(res, 201, { id, status: 'reserved' }, { location: `/orders/${id}`, etag: `"r${id}"` });
      return;
    }
    const slot = slots.get(req.path.replace('/orders/', ''));
    if (req.method !== 'PUT' || slot === undefined) {
      sendJson(res, 404, problem(404, 'not-found', 'no'));
      return;
    }
    const ifMatch = req.headers['if-match'];
    if (ifMatch === undefined) {
      sendJson(res, 428, problem(428, 'precondition-required', 'If-Match'));
      return;
    }
    if (slot.filled === undefined && ifMatch === slot.etag) {
      slot.filled = req.body;
      fills += 1;
      if (options.dropFirstFillAnswer === true && !dropped) {
        // The fill committed and the answer is lost: the client cannot know which happened.
        dropped = true;
        res.socket?.destroy();
        return;
      }
    }
    if (
      slot.filled !== undefined &&
      slot.filled === req.body &&
      (ifMatch === slot.etag || ifMatch === '"f"')
    ) {
      sendJson(res, 200, { ...JSON.parse(req.body), status: 'placed' }, { etag: '"f"' });
      return;
    }
    sendJson(res, 412, problem(412, 'precondition-failed', 'changed'));
  };
  return { handle, fills: () => fills };
}

const order = { items: [{ sku: 'A', quantity: 2 }] };
const fast = { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } };

describe('reserveAndFill()', () => {
  it('reserves, persists the URL and ETag before the fill, then fills with If-Match', async () => {
    const backend = reservationServer();
    server = await startFaultServer(backend.handle);
    const persisted: string[] = [];
    const result = await createClient({ baseUrl: server.url }).reserveAndFill('/orders/reservations', order, {
      persist: (url, etag) => {
        // The fill has not been sent yet: a crash here resumes at the PUT.
        expect(server?.requests.map((r) => r.method)).toEqual(['POST']);
        persisted.push(url, etag);
      },
    });
    expect(persisted).toEqual(['/orders/1', '"r1"']);
    expect(result).toMatchObject({ ok: true, status: 200, data: { status: 'placed' } });
    expect(server.requests[1]).toMatchObject({ method: 'PUT', path: '/orders/1' });
    expect(server.requests[1]?.headers['if-match']).toBe('"r1"');
    expect(backend.fills()).toBe(1);
  });

  it('retries a fill whose answer was lost and gets the same 200, never a second order', async () => {
    const backend = reservationServer({ dropFirstFillAnswer: true });
    server = await startFaultServer(backend.handle);
    const result = await createClient({ baseUrl: server.url, ...fast }).reserveAndFill(
      '/orders/reservations',
      order,
      { persist: () => undefined },
    );
    expect(result).toMatchObject({ ok: true, status: 200, attempts: 2 });
    expect(backend.fills()).toBe(1);
  });

  it('sends no fill when persist throws, and fill() resumes from what was persisted', async () => {
    const backend = reservationServer();
    server = await startFaultServer(backend.handle);
    const client = createClient({ baseUrl: server.url });
    let saved: { url: string; etag: string } | undefined;
    await expect(
      client.reserveAndFill('/orders/reservations', order, {
        persist: (url, etag) => {
          saved = { url, etag };
          throw new Error('crashed before the fill');
        },
      }),
    ).rejects.toThrow(/crashed before the fill/);
    expect(server.requests.map((r) => r.method)).toEqual(['POST']);
    if (saved === undefined) throw new Error('persist was not called');
    const resumed = await client.fill(saved.url, saved.etag, order);
    const again = await client.fill(saved.url, saved.etag, order);
    const other = await client.fill(saved.url, saved.etag, { items: [{ sku: 'B', quantity: 1 }] });
    expect(resumed).toMatchObject({ ok: true, status: 200 });
    expect(again).toMatchObject({ ok: true, status: 200 });
    expect(!other.ok && other.error.kind).toBe('precondition_failed');
    expect(backend.fills()).toBe(1);
  });

  it('fills once when 20 fills race, the rest get the same 200', async () => {
    const backend = reservationServer();
    server = await startFaultServer(backend.handle);
    const client = createClient({ baseUrl: server.url });
    const reserved = await client.post('/orders/reservations', {});
    if (!reserved.ok || reserved.location === undefined || reserved.etag === undefined)
      throw new Error('no reservation');
    const { location, etag } = reserved;
    const results = await Promise.all(Array.from({ length: 20 }, () => client.fill(location, etag, order)));
    expect(results.map((r) => r.ok && r.status)).toEqual(Array(20).fill(200));
    expect(backend.fills()).toBe(1);
  });

  it('fills nothing when the reservation answer has no ETag, and says so', async () => {
    server = await startFaultServer((_req, res) => sendJson(res, 201, {}, { location: '/orders/9' }));
    let persisted = false;
    const result = await createClient({ baseUrl: server.url }).reserveAndFill('/orders/reservations', order, {
      persist: () => {
        persisted = true;
      },
    });
    expect(persisted).toBe(false);
    expect(!result.ok && result.error).toMatchObject({ kind: 'bad_response', location: '/orders/9' });
    expect(!result.ok && result.error.message).toMatch(/without ETag/);
    expect(server.requests).toHaveLength(1);
  });
});
