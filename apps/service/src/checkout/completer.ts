// The completer: a job enqueued with every order (part 1 of the checkout), due after the
// completer delay. If the order is still pending then — its client gave up half way — it
// charges with the order's own derived key (a replay if the request had charged) and finishes
// the checkout, so no charge is ever left without a paid order. It looks the order's charges
// up by reference first, so it never depends on the provider still remembering the key.
import type { JobContext } from 'retrysafe/effects';
import {
  type ChargeMade,
  type CheckoutDeps,
  type CompleterPayload,
  chargeOrder,
  finishCheckout,
} from './checkout.js';

export function completerHandler<Tx>(deps: CheckoutDeps<Tx>) {
  return async (context: JobContext<Tx, CompleterPayload>): Promise<void> => {
    const { tenant, orderId } = context.job.payload;
    const order = await deps.data.orders.get(tenant, orderId);
    // Finished by its request (the usual case), or gone: nothing to do.
    if (order === undefined || order.status !== 'pending') return;
    const charge = await context.call<ChargeMade>('charge', async () => {
      // A completer may run long after the request (a provider down for days): by then the
      // provider may have forgotten the charge key (Stripe keeps keys 24 h), and charging
      // with it again would be a second charge. The order's charges by reference say first.
      const existing = order.totalCents === 0 ? [] : await deps.payments.listCharges(order.id);
      const made = existing.find((charge) => charge.amount === order.totalCents);
      if (made !== undefined) return { chargeId: made.id, amountCents: made.amount };
      return chargeOrder(deps, order);
    });
    await context.complete((tx) => finishCheckout(tx, deps, tenant, orderId, charge));
  };
}
