// Unit test of the completer's charge step: it looks the order's charges up by reference before
// charging, so a charge the provider made long ago — under a key it has since forgotten — is
// never made a second time. The payment client and the job context are stand-ins here; the
// real completer runs end to end in test/checkout/completer.test.ts.

import type { JobContext } from 'retrysafe/effects';
import { describe, expect, it } from 'vitest';
import { buildOrder } from '../domain/orders.js';
import type { PaymentsClient } from '../payments/client.js';
import type { ChargeMade, CheckoutDeps, CompleterPayload } from './checkout.js';
import { completerHandler } from './completer.js';

describe('the completer', () => {
  it('uses a charge the provider already made for the order instead of charging again', async () => {
    const order = buildOrder(
      't',
      { items: [{ sku: 'a', quantity: 2, unitPriceCents: 500 }], currency: 'EUR' },
      'o-1',
      'r-1:charge',
    );
    let charged = 0;
    const payments = {
      listCharges: async (reference: string) =>
        reference === 'o-1'
          ? [{ id: 'ch_old', amount: 1000, currency: 'EUR', reference, status: 'succeeded', createdAt: '' }]
          : [],
      charge: async () => {
        charged++;
        throw new Error('must not charge again');
      },
    } as unknown as PaymentsClient;
    const deps = {
      data: { orders: { get: async () => order } },
      payments,
      completerDelayMs: 0,
    } as unknown as CheckoutDeps<unknown>;
    let checkpointed: ChargeMade | undefined;
    let completed = false;
    const context = {
      job: { id: 'j', topic: 'checkout.complete', payload: { tenant: 't', orderId: 'o-1' }, attempt: 1 },
      call: async (_name: string, work: () => Promise<ChargeMade>) => {
        checkpointed = await work();
        return checkpointed;
      },
      complete: async () => {
        completed = true;
      },
    } as unknown as JobContext<unknown, CompleterPayload>;
    await completerHandler(deps)(context);
    expect(charged).toBe(0);
    expect(checkpointed).toEqual({ chargeId: 'ch_old', amountCents: 1000 });
    expect(completed).toBe(true);
  });
});
