// End-to-end: CORS for browser clients (CORS_ORIGINS): preflight answered without a key, and
// the headers safe retries need (Location, ETag, Idempotent-Replayed, Retry-After) exposed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedService, startService } from './helpers/service.js';

const origin = 'http://app.example.test';
let service: StartedService;
let closed: StartedService;

beforeAll(async () => {
  [service, closed] = await Promise.all([startService({ env: { CORS_ORIGINS: origin } }), startService()]);
});
afterAll(async () => {
  await Promise.all([service.stop(), closed.stop()]);
});

describe('CORS', () => {
  it('answers a preflight for a keyed POST from an allowed origin, without an API key', async () => {
    const r = await fetch(`${service.url}/orders`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, idempotency-key, x-retry-count',
      },
    });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(origin);
    expect(r.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('exposes Location, ETag and Idempotent-Replayed on real responses', async () => {
    const r = await fetch(`${service.url}/orders`, {
      method: 'POST',
      headers: {
        origin,
        authorization: 'Bearer demo-writer-a',
        'content-type': 'application/json',
        'idempotency-key': 'cors-1',
      },
      body: JSON.stringify({ items: [{ sku: 'c', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' }),
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('access-control-allow-origin')).toBe(origin);
    const exposed = r.headers.get('access-control-expose-headers')?.toLowerCase() ?? '';
    for (const name of ['location', 'etag', 'idempotent-replayed', 'retry-after'])
      expect(exposed).toContain(name);
  });

  it('sends no CORS headers to other origins, nor when CORS_ORIGINS is unset', async () => {
    const other = await fetch(`${service.url}/healthz`, { headers: { origin: 'http://evil.example.test' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const off = await fetch(`${closed.url}/healthz`, { headers: { origin } });
    expect(off.headers.get('access-control-allow-origin')).toBeNull();
  });
});
