// Proof of the checkout's outbox, on SQLite and PostgreSQL: the `order.paid` event is a row of
// the final transaction, so a final transaction that rolls back (a 500 injected after its
// writes, RETRYSAFE_TEST_FAIL_RATE=1) leaves the order pending with no event, shipment or
// payment, and every committed checkout has exactly one event row — the retry that commits it
// and every replay after it add none. Without a broker the rows wait, queued.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderPaidEventId } from '../../src/checkout/checkout.js';
import { injectedFaultType } from '../../src/test-hooks.js';
import type { StartedService } from '../helpers/service.js';
import { type Backend, type BackendName, backendNames, openBackend } from './backends.js';
import { type Answer, orderOf, postOrder, startCheckoutService } from './checkout.js';
import { type Provider, startProvider } from './provider.js';

/** Each request fails with probability 1, half before its writes and half inside its final transaction. */
const maxTriesForARollback = 40;

interface Attempt {
  key: string;
  order: ReturnType<typeof orderOf>;
  answer: Answer;
}

describe.each(backendNames)('the order.paid outbox, on %s', (backendName: BackendName) => {
  let dir: string;
  let backend: Backend;
  let provider: Provider;
  let service: StartedService | undefined;
  const attempts: Attempt[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `retrysafe-checkout-outbox-${backendName}-`));
    backend = await openBackend(backendName, dir);
    provider = await startProvider(dir);
    service = await startCheckoutService(backend, provider.url, { RETRYSAFE_TEST_FAIL_RATE: '1' });
    for (let i = 0; i < maxTriesForARollback; i++) {
      const key = randomUUID();
      const order = orderOf(`outbox-${backendName}-${i}-${randomUUID()}`, 4_000 + i);
      const answer = await postOrder(service, key, order);
      attempts.push({ key, order, answer });
      if (answer.status === 500) break;
    }
  });

  afterAll(async () => {
    await service?.kill();
    await provider?.stop();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rolledBack = () => attempts.find((attempt) => attempt.answer.status === 500);

  it('a final transaction that rolls back emits no order.paid row', async () => {
    const attempt = rolledBack();
    expect(attempt, `no 500 in ${attempts.length} requests`).toBeDefined();
    expect(attempt!.answer.json.type).toContain(injectedFaultType);
    const rows = await backend.rowsOf(attempt!.order.note);
    // Steps 1 and 2 had committed (order and charge); the final transaction left nothing.
    expect(rows.orders).toEqual([expect.objectContaining({ status: 'pending', paidCents: 0 })]);
    expect(await provider.charges(rows.orders[0]!.id)).toHaveLength(1);
    expect(rows.shipments).toBe(0);
    expect(rows.payments).toEqual([]);
    expect(rows.paidEvents).toEqual([]);
    expect(await backend.allPaidEvents()).toEqual([]);
    // The injected 503s fail before step 1: no order at all.
    for (const before of attempts.filter((each) => each.answer.status === 503))
      expect((await backend.rowsOf(before.order.note)).orders).toEqual([]);
  });

  it('each committed checkout has exactly one order.paid row, and replays add none', async () => {
    await service!.stop();
    service = await startCheckoutService(backend, provider.url);
    const committed: { orderId: string; amount: number }[] = [];
    for (const { key, order } of attempts) {
      const retry = await postOrder(service, key, order);
      expect(retry.status).toBe(201);
      const replay = await postOrder(service, key, order);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      committed.push({ orderId: retry.json.id, amount: order.items[0]!.unitPriceCents });
      const rows = await backend.rowsOf(order.note);
      expect(rows.paidEvents).toHaveLength(1);
      expect(rows.paidEvents[0]).toMatchObject({
        id: orderPaidEventId(retry.json.id),
        // No broker is configured: the event waits in the outbox.
        state: 'queued',
        payload: { orderId: retry.json.id, amountCents: order.items[0]!.unitPriceCents },
      });
    }
    const events = await backend.allPaidEvents();
    expect(events.map((event) => event.payload.orderId).sort()).toEqual(
      committed.map((each) => each.orderId).sort(),
    );
    // The rolled-back checkout's retry replayed the charge its first run made.
    expect((await provider.stats()).charges).toBe(committed.length);
  });
});
