// Issue 10 item 7 end to end: one tenant's flood of new keys is bounded (429 + Retry-After)
// without touching another tenant, keys it already holds still replay, and the reaper's
// figures are on /metrics. Real process, real SQLite file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type StartedService, startService } from './helpers/service.js';

const order = { items: [{ sku: 'mug', quantity: 1, unitPriceCents: 900 }], currency: 'EUR' };

describe('per-tenant bound on idempotency records', () => {
  let service: StartedService;
  beforeAll(async () => {
    service = await startService({ env: { IDEMPOTENCY_MAX_RECORDS_PER_TENANT: '3' } });
  });
  afterAll(async () => {
    await service.stop();
  });

  it('answers 429 with Retry-After past the bound, keeps replaying held keys, and spares other tenants', async () => {
    const tenantA = api(service.url, 'demo-writer-a');
    const tenantB = api(service.url, 'demo-writer-b');
    const prefix = `bound-${Date.now()}`;
    for (const index of [1, 2, 3]) {
      const created = await tenantA('/orders', {
        method: 'POST',
        body: order,
        headers: { 'idempotency-key': `${prefix}-${index}` },
      });
      expect(created.status).toBe(201);
    }
    const refused = await tenantA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': `${prefix}-4` },
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

    const replay = await tenantA('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': `${prefix}-2` },
    });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');

    const other = await tenantB('/orders', {
      method: 'POST',
      body: order,
      headers: { 'idempotency-key': `${prefix}-4` },
    });
    expect(other.status).toBe(201);
  });

  it('exports the reaper figures', async () => {
    const metrics = await (await fetch(new URL('/metrics', service.url))).text();
    expect(metrics).toMatch(/^retrysafe_reaper_caught_up 1$/m);
    expect(metrics).toMatch(/^retrysafe_reaper_deleted_total \d+$/m);
  });
});
