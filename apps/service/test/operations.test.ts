// End-to-end: the operations surface — OpenAPI 3.1 from the route schemas, health, Prometheus
// metrics, one JSON log line per request (never a key or a body), problem+json everywhere.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logFingerprint } from '../src/log-fields.js';
import { api, type StartedService, startService } from './helpers/service.js';

const order = {
  items: [{ sku: 'ops', quantity: 3, unitPriceCents: 5 }],
  currency: 'USD',
  note: 'secret-note-text',
};

let service: StartedService;
let asA: ReturnType<typeof api>;
beforeAll(async () => {
  service = await startService();
  asA = api(service.url);
});
afterAll(() => service.stop());

// biome-ignore lint/suspicious/noExplicitAny: the document is walked by path and every value read is asserted on.
type OpenApiDoc = { openapi: string; paths: Record<string, any> };

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find(
      (l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('operations', () => {
  it('serves an OpenAPI 3.1 document generated from the route schemas', async () => {
    const doc = (await fetch(`${service.url}/openapi.json`).then((r) => r.json())) as OpenApiDoc;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/users', '/users/{id}', '/orders', '/orders/{id}']),
    );
    const post = doc.paths['/orders'].post;
    expect(post.requestBody.content['application/json'].schema.required).toEqual(['items', 'currency']);
    expect(post.responses['422'].content['application/problem+json']).toBeDefined();
    expect(
      doc.paths['/users/{id}'].put.requestBody.content['application/json'].schema.properties.username.pattern,
    ).toBe('^[a-z0-9_]+$');
  });

  it('answers /healthz without a key', async () => {
    const r = await fetch(`${service.url}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok' });
  });

  it('counts requests by route and status, idempotency outcomes, and retried requests', async () => {
    const before = await (await fetch(`${service.url}/metrics`)).text();
    const key = randomUUID();
    await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    await asA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': key, 'x-retry-count': '1' },
    });
    await asA('/orders', {
      method: 'POST',
      body: { ...order, note: 'other' },
      headers: { 'idempotency-key': key },
    });
    const after = await (await fetch(`${service.url}/metrics`)).text();
    const delta = (name: string, labels: Record<string, string>) =>
      metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(delta('http_requests_total', { route: '/orders', status: '201', method: 'POST' })).toBe(2);
    expect(delta('http_requests_total', { route: '/orders', status: '422', method: 'POST' })).toBe(1);
    expect(delta('idempotency_outcomes_total', { outcome: 'executed' })).toBe(1);
    expect(delta('idempotency_outcomes_total', { outcome: 'replayed' })).toBe(1);
    expect(delta('idempotency_outcomes_total', { outcome: 'mismatch' })).toBe(1);
    expect(delta('http_retried_requests_total', { route: '/orders' })).toBe(1);
    expect(after).toContain('idempotency_outcomes_total{outcome="in_use"}');
  });

  it('exports the outbox on /metrics: checkouts leave completer jobs and order.paid events, waiting with no broker', async () => {
    const before = await (await fetch(`${service.url}/metrics`)).text();
    for (let i = 0; i < 2; i++) {
      const r = await asA('/orders', {
        method: 'POST',
        body: order,
        headers: { 'idempotency-key': randomUUID() },
      });
      expect(r.status).toBe(201);
    }
    const after = await (await fetch(`${service.url}/metrics`)).text();
    const delta = (name: string, labels: Record<string, string>) =>
      metricValue(after, name, labels) - metricValue(before, name, labels);
    // No broker is configured here: the events wait in the outbox, and their lag shows it.
    expect(delta('retrysafe_jobs', { topic: 'order.paid', state: 'queued' })).toBe(2);
    expect(metricValue(after, 'retrysafe_relay_lag_seconds', { topic: 'order.paid' })).toBeGreaterThanOrEqual(
      0,
    );
    expect(after).toMatch(/retrysafe_jobs\{topic="checkout\.complete",state="(queued|done)"\}/);
    expect(after).toContain('retrysafe_job_attempts{topic="checkout.complete"}');
  });

  it('writes one JSON log line per request with route, status, duration, key fingerprint and outcome — never the API key or body', async () => {
    const key = `log-${randomUUID()}`;
    await asA('/orders', { method: 'POST', body: order, headers: { 'idempotency-key': key } });
    await new Promise((r) => setTimeout(r, 100));
    const lines = service.logRecords().filter((l) => l.idempotencyKeySha256 === logFingerprint(key));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      route: '/orders',
      status: 201,
      idempotencyOutcome: 'executed',
      method: 'POST',
    });
    expect(typeof lines[0]!.durationMs).toBe('number');
    const all = service.logs.filter((line) => line.startsWith('{')).join('\n');
    expect(all).not.toContain('demo-writer-a');
    expect(all).not.toContain('secret-note-text');
    expect(all).not.toContain(key);
  });

  it('answers unknown routes and methods with 404 problem+json', async () => {
    const r = await asA('/nope');
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json).toMatchObject({ status: 404, title: expect.any(String), detail: expect.any(String) });
  });

  it('answers a body over the limit with 413 problem+json', async () => {
    const big = JSON.stringify({ ...order, note: 'x'.repeat(1024 * 1024 + 10) });
    const r = await asA('/orders', {
      method: 'POST',
      body: big,
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(r.status).toBe(413);
    expect(r.json.status).toBe(413);
  });
});
