// poll() against the real reference service process: an import answered 202, a retried POST that
// names the same operation, and a long-poll to the import's result. Needs `npm run build` first.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, type StartedService, startService } from '../../apps/service/test/helpers/service.js';
import { createClient } from '../../src/client/index.js';

let service: StartedService;
beforeAll(async () => {
  service = await startService({ env: { JOBS_POLL_INTERVAL_MS: '50' } });
});
afterAll(async () => {
  await service?.stop();
});

const order = (index: number) => ({
  items: [{ sku: `poll-${index}`, quantity: 1, unitPriceCents: 100 + index }],
  currency: 'EUR',
});

it('follows an import from its 202 to the result, and a retried POST names the same operation', async () => {
  const client = createClient({ baseUrl: service.url, token: 'demo-writer-a' });
  const input = [order(0), order(1), { items: [] }, order(3)];
  const accepted = await client.post('/orders/imports', input, { idempotencyKey: 'poll-service-import-1' });
  expect(accepted).toMatchObject({ ok: true, status: 202 });
  const again = await client.post('/orders/imports', input, { idempotencyKey: 'poll-service-import-1' });
  if (!accepted.ok || !again.ok) throw new Error('the import was not accepted');
  expect(accepted.operation?.url).toMatch(/\/operations\//);
  expect(again.operation?.url).toBe(accepted.operation?.url);

  const result = await client.poll(accepted, { wait: 5, deadlineMs: 20_000 });
  expect(result).toMatchObject({ ok: true, status: 'succeeded', operationUrl: accepted.operation?.url });
  if (!result.ok || result.resourceLocation === undefined) throw new Error('no import result');
  const report = await api(service.url)(result.resourceLocation);
  expect(report.json).toMatchObject({ created: 3, failed: 1, errors: [{ index: 2 }] });
});

it('answers a poll of another tenant’s operation as not found', async () => {
  const writerA = createClient({ baseUrl: service.url, token: 'demo-writer-a' });
  const accepted = await writerA.post('/orders/imports', [order(9)], {
    idempotencyKey: 'poll-service-import-2',
  });
  if (!accepted.ok || accepted.operation === undefined) throw new Error('the import was not accepted');
  const writerB = createClient({ baseUrl: service.url, token: 'demo-writer-b' });
  const result = await writerB.poll(accepted.operation.url, { deadlineMs: 5_000 });
  expect(result).toMatchObject({ ok: false, status: 'error', error: { kind: 'not_found' } });
});
