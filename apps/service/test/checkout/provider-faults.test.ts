// Proof of the checkout against a faulty provider, on SQLite and PostgreSQL: a provider that
// answers past PAYMENTS_TIMEOUT_MS, one that refuses with 5xx, one that resets the connection
// after charging. Each answers the client 503 with Retry-After; the retry with the same key (the
// fault switched off) resumes at the charge and ends with one charge: the provider's replay
// when the faulty call had charged, a first charge when it had not. Never a second charge.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedService } from '../helpers/service.js';
import { type Backend, type BackendName, backendNames, openBackend } from './backends.js';
import { orderOf, postOrder, startCheckoutService } from './checkout.js';
import { type Provider, type ProviderFaults, startProvider } from './provider.js';

const paymentsTimeoutMs = 500;
const noFaults: ProviderFaults = { failRate: 0, resetAfterChargeRate: 0, slowRate: 0 };

interface FaultCase {
  name: string;
  faults: ProviderFaults;
  /** Whether the faulty call charged (the provider committed before the fault). */
  charged: boolean;
}

const cases: FaultCase[] = [
  {
    name: 'slower than PAYMENTS_TIMEOUT_MS',
    faults: { slowRate: 1, slowMs: paymentsTimeoutMs * 3 },
    charged: true,
  },
  { name: 'refusing with 5xx', faults: { failRate: 1 }, charged: false },
  { name: 'resetting the connection after charging', faults: { resetAfterChargeRate: 1 }, charged: true },
];

describe.each(backendNames)('checkout against a faulty provider, on %s', (backendName: BackendName) => {
  let dir: string;
  let backend: Backend;
  let provider: Provider;
  let service: StartedService;
  const placed: { amount: number }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `retrysafe-checkout-faults-${backendName}-`));
    backend = await openBackend(backendName, dir);
    provider = await startProvider(dir);
    service = await startCheckoutService(backend, provider.url, {
      PAYMENTS_TIMEOUT_MS: String(paymentsTimeoutMs),
    });
  });

  afterAll(async () => {
    await service?.kill();
    await provider?.stop();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(cases.map((each, i) => [each.name, each, i] as const))(
    'a provider %s: 503 with Retry-After, and the retry charges once',
    async (_name, faultCase, i) => {
      const key = randomUUID();
      const amount = 2_000 + i;
      const order = orderOf(`fault-${backendName}-${i}-${randomUUID()}`, amount);
      placed.push({ amount });

      await provider.faults({ ...noFaults, ...faultCase.faults });
      const statsBefore = await provider.stats();
      const failed = await postOrder(service, key, order);
      const statsAfterFault = await provider.stats();
      await provider.faults(noFaults);

      expect(failed.status).toBe(503);
      expect(failed.json.type).toContain('payments-unavailable');
      expect(Number(failed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(statsAfterFault.charges - statsBefore.charges).toBe(faultCase.charged ? 1 : 0);
      // Step 1 committed and stays: the order is pending, unpaid, with no event yet.
      const pending = await backend.rowsOf(order.note);
      expect(pending.orders).toEqual([expect.objectContaining({ status: 'pending', paidCents: 0 })]);
      expect(pending.paidEvents).toEqual([]);
      const orderId = pending.orders[0]!.id;
      expect(await provider.charges(orderId)).toHaveLength(faultCase.charged ? 1 : 0);

      const retry = await postOrder(service, key, order);
      const statsAfterRetry = await provider.stats();
      expect(retry.status).toBe(201);
      expect(retry.json.id).toBe(orderId);
      expect(retry.json.payment).toMatchObject({ status: 'paid', paidCents: amount });
      // The retry's charge was the provider's replay exactly when the faulty call had charged.
      expect(statsAfterRetry.charges - statsAfterFault.charges).toBe(faultCase.charged ? 0 : 1);
      const charges = await provider.charges(orderId);
      expect(charges).toHaveLength(1);
      expect(charges[0]).toMatchObject({ amount, id: retry.json.payment.chargeId });

      const rows = await backend.rowsOf(order.note);
      expect(rows.orders).toEqual([expect.objectContaining({ status: 'paid', chargeId: charges[0]!.id })]);
      expect(rows.shipments).toBe(1);
      expect(rows.payments).toHaveLength(1);
      expect(rows.paidEvents).toHaveLength(1);
    },
  );

  it('never a second charge: the provider made one charge per order, for its total', async () => {
    const stats = await provider.stats();
    expect(placed).toHaveLength(cases.length);
    expect(stats.charges).toBe(placed.length);
    expect(stats.chargedAmount).toBe(placed.reduce((sum, each) => sum + each.amount, 0));
  });
});
