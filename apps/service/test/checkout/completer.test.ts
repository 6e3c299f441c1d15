// Proof of the completer job, on SQLite and PostgreSQL, with a short CHECKOUT_COMPLETER_DELAY_MS:
// a client that gives up after a 503 (the provider was down) gets its order finished by the job
// without sending any retry; and a completer that finishes an order while its own request is
// still running (held after its charge, or waiting on a slow provider) never charges it twice.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedService } from '../helpers/service.js';
import { type Backend, type BackendName, backendNames, type CheckoutRows, openBackend } from './backends.js';
import { orderOf, postOrder, startCheckoutService, waitFor } from './checkout.js';
import { type Provider, startProvider } from './provider.js';

const completerDelayMs = 800;
/** Longer than the completer delay and a few polls: the job runs while the request is held. */
const requestHoldMs = 3_000;

describe.each(backendNames)('the checkout completer, on %s', (backendName: BackendName) => {
  let dir: string;
  let backend: Backend;
  let provider: Provider;
  let service: StartedService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `retrysafe-checkout-completer-${backendName}-`));
    backend = await openBackend(backendName, dir);
    provider = await startProvider(dir);
    service = await startCheckoutService(backend, provider.url, {
      CHECKOUT_COMPLETER_DELAY_MS: String(completerDelayMs),
      JOBS_POLL_INTERVAL_MS: '100',
      // The request held past the completer's delay keeps its key (it is not taken over).
      IDEMPOTENCY_LEASE_MS: '30000',
      PAYMENTS_TIMEOUT_MS: String(requestHoldMs * 2),
    });
  });

  afterAll(async () => {
    await service?.kill();
    await provider?.stop();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function paidRows(note: string): Promise<CheckoutRows> {
    let rows: CheckoutRows | undefined;
    await waitFor(async () => {
      rows = await backend.rowsOf(note);
      return rows.orders[0]?.status === 'paid';
    }, `the order ${note} to be paid`);
    return rows!;
  }

  function expectFinishedOnce(rows: CheckoutRows, amount: number, chargeId: string): void {
    expect(rows.orders).toEqual([expect.objectContaining({ status: 'paid', paidCents: amount, chargeId })]);
    expect(rows.shipments).toBe(1);
    expect(rows.payments).toEqual([{ kind: 'charge', providerId: chargeId, amountCents: amount }]);
    expect(rows.paidEvents).toHaveLength(1);
    expect(rows.paidEvents[0]!.payload).toMatchObject({ amountCents: amount, chargeId });
  }

  it('finishes the order of a client that gave up after a 503 (provider down), without any retry', async () => {
    const amount = 3_100;
    const order = orderOf(`abandoned-${backendName}-${randomUUID()}`, amount);
    await provider.kill();
    const given = await postOrder(service, randomUUID(), order);
    expect(given.status).toBe(503);
    expect(given.headers.get('retry-after')).not.toBeNull();
    const [pending] = (await backend.rowsOf(order.note)).orders;
    expect(pending?.status).toBe('pending');
    await provider.restart();
    expect(await provider.charges(pending!.id)).toEqual([]);

    // No request is sent again: only the completer can finish it.
    const rows = await paidRows(order.note);
    const charges = await provider.charges(pending!.id);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.amount).toBe(amount);
    expectFinishedOnce(rows, amount, charges[0]!.id);
    await waitFor(
      async () => (await backend.rowsOf(order.note)).completers[0]?.state === 'done',
      'the completer job to be done',
    );
    const posts = service.logRecords().filter((line) => line.route === '/orders' && line.method === 'POST');
    expect(posts.map((line) => line.status)).toEqual([503]);
  });

  it('racing a request held after its charge, finishes the order with the same charge, once', async () => {
    const amount = 3_200;
    const order = orderOf(`raced-${backendName}-${randomUUID()}`, amount);
    const statsBefore = await provider.stats();
    const request = postOrder(service, randomUUID(), order, {
      'x-test-hold-at': 'after-charge',
      'x-test-hold-ms': String(requestHoldMs),
    });
    let answered = false;
    void request.then(() => {
      answered = true;
    });
    // The completer finishes the order while its request is still held after the charge.
    const rows = await paidRows(order.note);
    expect(answered).toBe(false);
    const answer = await request;
    expect(answer.status).toBe(201);
    expect(answer.json.payment).toMatchObject({ status: 'paid', paidCents: amount });
    const orderId = rows.orders[0]!.id;
    expect(answer.json.id).toBe(orderId);
    const charges = await provider.charges(orderId);
    expect(charges).toHaveLength(1);
    expect(answer.json.payment.chargeId).toBe(charges[0]!.id);
    expect((await provider.stats()).charges - statsBefore.charges).toBe(1);
    expectFinishedOnce(await backend.rowsOf(order.note), amount, charges[0]!.id);
  });

  it('racing a request whose provider answers slowly, never charges twice', async () => {
    const amount = 3_300;
    const order = orderOf(`slow-${backendName}-${randomUUID()}`, amount);
    const statsBefore = await provider.stats();
    const slowedBefore = (await provider.injected()).slowed;
    await provider.faults({ slowRate: 1, slowMs: requestHoldMs });
    try {
      const request = postOrder(service, randomUUID(), order);
      const rows = await paidRows(order.note);
      const answer = await request;
      expect(answer.status).toBe(201);
      const orderId = rows.orders[0]!.id;
      const charges = await provider.charges(orderId);
      expect(charges).toHaveLength(1);
      expect(answer.json.payment).toMatchObject({ status: 'paid', chargeId: charges[0]!.id });
      expect((await provider.stats()).charges - statsBefore.charges).toBe(1);
      // The completer raced it and finished: it found the charge by the order's reference
      // (the slow charge had committed) or replayed it by key; either way no second charge.
      await waitFor(
        async () => (await backend.rowsOf(order.note)).completers[0]?.state === 'done',
        'the completer job to be done',
      );
      expect((await provider.injected()).slowed - slowedBefore).toBeGreaterThanOrEqual(1);
      expect((await provider.stats()).charges - statsBefore.charges).toBe(1);
      expectFinishedOnce(await backend.rowsOf(order.note), amount, charges[0]!.id);
    } finally {
      await provider.faults({ slowRate: 0 });
    }
  });
});
