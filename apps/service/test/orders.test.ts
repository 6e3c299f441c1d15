// End-to-end: POST /orders over real HTTP against a real service process on SQLite —
// exactly-once creation, replay, 422 reuse, 409 in use, tenant scoping, fingerprint rules.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'book-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };

let service: StartedService;
let asA: ReturnType<typeof api>;
let asB: ReturnType<typeof api>;

beforeAll(async () => {
  service = await startService();
  asA = api(service.url, 'demo-writer-a');
  asB = api(service.url, 'demo-writer-b');
});
afterAll(() => service.stop());

async function orderCount(client: ReturnType<typeof api>): Promise<number> {
  let count = 0;
  let path: string | null = '/orders?limit=100';
  while (path) {
    const page = await client(path);
    count += page.json.data.length;
    path = page.json.nextCursor ? `/orders?limit=100&cursor=${page.json.nextCursor}` : null;
  }
  return count;
}

describe('POST /orders', () => {
  it('creates with 201, Location and a strong ETag, and GET Location answers the same representation', async () => {
    const created = await asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(created.status).toBe(201);
    const location = created.headers.get('location');
    expect(location).toBe(`/orders/${created.json.id}`);
    expect(created.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(created.json).toMatchObject({ ...order, totalCents: 2500 });
    const read = await asA(location!);
    expect(read.status).toBe(200);
    expect(read.text).toBe(created.text);
    expect(read.headers.get('etag')).toBe(created.headers.get('etag'));
  });

  it('replays the same status, body, Location, ETag and content type with Idempotent-Replayed, and keeps one order', async () => {
    const before = await orderCount(asA);
    const key = randomUUID();
    const first = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    const again = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(again.status).toBe(first.status);
    expect(again.text).toBe(first.text);
    for (const name of ['location', 'etag', 'content-type'])
      expect(again.headers.get(name)).toBe(first.headers.get(name));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await orderCount(asA)).toBe(before + 1);
  });

  it('treats a Structured Field string key and the bare token as the same key', async () => {
    const key = `sf-${randomUUID()}`;
    const first = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    const quoted = await asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': `"${key}"` },
    });
    expect(quoted.headers.get('idempotent-replayed')).toBe('true');
    expect(quoted.json.id).toBe(first.json.id);
  });

  it('answers 422 idempotency-key-reuse for the same key with a different body, and creates nothing', async () => {
    const key = randomUUID();
    await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    const before = await orderCount(asA);
    const other = await asA('/orders', {
      method: 'POST',
      body: { ...order, note: 'different' },
      headers: { 'idempotency-key': key },
    });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(other.json.type).toBe('urn:retrysafe:problem:idempotency-key-reuse');
    expect(await orderCount(asA)).toBe(before);
  });

  it('answers 400 with instructions when the key is missing, and 400 when it is malformed', async () => {
    const missing = await asA('/orders', { method: 'POST', body: order });
    expect(missing.status).toBe(400);
    expect(missing.json.type).toBe('urn:retrysafe:problem:idempotency-key-missing');
    expect(missing.json.detail).toMatch(/Idempotency-Key/);
    for (const bad of ['a,b', 'x'.repeat(256), '"unclosed', 'tab\tkey', '""']) {
      const malformed = await asA('/orders', {
        method: 'POST',
        body: order,
        headers: { 'idempotency-key': bad },
      });
      expect(malformed.status, bad).toBe(400);
      expect(malformed.json.type).toBe('urn:retrysafe:problem:idempotency-key-invalid');
    }
  });

  it('answers 409 in use with Retry-After while the first request with the key is still running', async () => {
    const key = randomUUID();
    const slow = asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key, 'x-test-delay-ms': '1500' },
    });
    // Wait until the slow request has claimed the key (its record is visible as in_use).
    let second = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    for (let i = 0; i < 50 && second.status !== 409; i++) {
      second = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    }
    expect(second.status).toBe(409);
    expect(second.json.type).toBe('urn:retrysafe:problem:idempotency-key-in-use');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const first = await slow;
    expect(first.status).toBe(201);
    const after = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    expect(after.json.id).toBe(first.json.id);
  });

  it('scopes keys per tenant: tenant b with tenant a’s key gets its own order and never sees a’s', async () => {
    const key = randomUUID();
    const a = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    const b = await asB('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    expect(b.status).toBe(201);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(b.json.id).not.toBe(a.json.id);
    expect((await asB(`/orders/${a.json.id}`)).status).toBe(404);
    const bOrders = await asB('/orders?limit=100');
    expect(bOrders.json.data.map((o: { id: string }) => o.id)).not.toContain(a.json.id);
  });

  it('fingerprints the parsed body: JSON key order and JSON-vs-form encoding do not matter', async () => {
    const key = randomUUID();
    const first = await asA('/orders', {
      method: 'POST',
      body: '{"currency":"EUR","items":[{"unitPriceCents":1250,"sku":"book-1","quantity":2}]}',
      headers: { 'idempotency-key': key },
    });
    const reordered = await asA('/orders', {
      method: 'POST',
      body: '{"items":[{"quantity":2,"sku":"book-1","unitPriceCents":1250}],"currency":"EUR"}',
      headers: { 'idempotency-key': key },
    });
    const form = await asA('/orders', {
      method: 'POST',
      body: 'items[0][sku]=book-1&items[0][quantity]=2&items[0][unitPriceCents]=1250&currency=EUR',
      headers: { 'idempotency-key': key, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(first.status).toBe(201);
    for (const replay of [reordered, form]) {
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.json.id).toBe(first.json.id);
    }
  });

  it('stores nothing for a request rejected by validation: the same key then executes', async () => {
    const key = randomUUID();
    const invalid = await asA('/orders', {
      method: 'POST',
      body: { items: [{ sku: 'x', quantity: 0, unitPriceCents: 1 }], currency: 'euro' },
      headers: { 'idempotency-key': key },
    });
    expect(invalid.status).toBe(422);
    expect(invalid.json.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ pointer: '/items/0/quantity' }),
        expect.objectContaining({ pointer: '/currency' }),
      ]),
    );
    const valid = await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    expect(valid.status).toBe(201);
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
  });

  it('creates exactly one order for 50 concurrent requests with the same new key', async () => {
    const before = await orderCount(asA);
    const key = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } }),
      ),
    );
    const created = responses.filter((r) => r.status === 201);
    const inUse = responses.filter((r) => r.status === 409);
    expect(created.length + inUse.length).toBe(50);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.json.id)).size).toBe(1);
    expect(created.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    for (const r of inUse) expect(r.json.type).toBe('urn:retrysafe:problem:idempotency-key-in-use');
    expect(await orderCount(asA)).toBe(before + 1);
  });

  it('lists orders with cursor pagination and a Link to the next page', async () => {
    const fresh = await startService();
    try {
      const client = api(fresh.url);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await client('/orders', {
          method: 'POST',
          body: order,
          headers: { 'idempotency-key': `page-${i}` },
        });
        ids.push(r.json.id);
      }
      const seen: string[] = [];
      let path: string | null = '/orders?limit=2';
      let pages = 0;
      while (path) {
        const page = await client(path);
        pages++;
        seen.push(...page.json.data.map((o: { id: string }) => o.id));
        const link = page.headers.get('link');
        path = page.json.nextCursor ? `/orders?limit=2&cursor=${page.json.nextCursor}` : null;
        expect(link === null).toBe(path === null);
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(ids);
      expect((await client('/orders?cursor=not-a-cursor')).status).toBe(400);
    } finally {
      await fresh.stop();
    }
  });
});
