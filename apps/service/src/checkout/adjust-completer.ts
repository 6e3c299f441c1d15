// The change completer: a job enqueued with every reserved change (part 1 of a replacement),
// due after the completer delay. If the change is still pending then — its client gave up
// after reserving it — it makes the change's payments with their derived keys (replays of any
// the request made) and applies it, so no charge or refund is ever left without its version.
import type { JobContext } from 'retrysafe/effects';
import { applyChange, type ChangeCompleterPayload, movePayments, type PaymentMade } from './adjust.js';
import type { CheckoutDeps } from './checkout.js';

export function changeCompleterHandler<Tx>(deps: CheckoutDeps<Tx>) {
  return async (context: JobContext<Tx, ChangeCompleterPayload>): Promise<void> => {
    const { tenant, orderId, version } = context.job.payload;
    const order = await deps.data.orders.get(tenant, orderId);
    const change = order?.pendingChange;
    // Applied by its request (the usual case), or gone: nothing to do.
    if (order === undefined || change === null || change === undefined || change.version !== version) return;
    const made = await context.call<PaymentMade[]>('payments', () => movePayments(deps, order, change));
    await context.complete((tx) => applyChange(tx, deps, tenant, orderId, change, made));
  };
}
