// The checkout of an order, in three parts shared by the request (POST /orders) and the
// completer job: (1) the pending order with its completer, in one transaction; (2) the charge
// at the provider with the order's derived key, outside any transaction; (3) the order marked
// paid with its shipment, its payment and its `order.paid` event, in one transaction. Each
// part may run again (a retry, a takeover, the completer): none does anything twice.
import { derivedId } from 'retrysafe';
import { ProblemError, ValidationError } from 'retrysafe/http';
import type { ServiceData } from '../data/types.js';
import { paidOrder, type StoredOrder } from '../domain/orders.js';
import type { PaymentsClient } from '../payments/client.js';
import { PaymentsRejectedError } from '../payments/errors.js';
import { maxAmount } from '../payments/schemas.js';

/** The job that finishes a checkout its client abandoned. */
export const completerTopic = 'checkout.complete';
/** The event a paid order emits, through the outbox. */
export const orderPaidTopic = 'order.paid';
/** How long a checkout may stay unfinished before the completer finishes it. Default 60 s. */
export const defaultCompleterDelayMs = 60_000;

/**
 * Attempts of the service's own jobs (completers, events): enough to outlast a provider or a
 * broker down for days (at the backoff's 10-minute cap, about 7 days) instead of going dead
 * after the runner's default 10 (about 8.5 minutes). An event published again after the
 * stream's duplicate window is stored twice; the consumer helper's ledger skips it.
 */
export const serviceJobMaxAttempts = 1_000;

export interface CheckoutDeps<Tx> {
  data: ServiceData<Tx>;
  payments: PaymentsClient;
  completerDelayMs: number;
}

/** What the charge step checkpoints: the provider's charge (none for an order of 0). */
export interface ChargeMade {
  chargeId: string | null;
  amountCents: number;
}

export interface CompleterPayload {
  tenant: string;
  orderId: string;
}

export interface OrderPaidEvent {
  tenant: string;
  orderId: string;
  amountCents: number;
  currency: string;
  chargeId: string | null;
  paidAt: string;
}

/** The id of an order's `order.paid` event: one per order, whoever finishes the checkout. */
export function orderPaidEventId(orderId: string): string {
  return derivedId(orderId, orderPaidTopic);
}

/** Part 1: the pending order and the job that finishes it should its client give up. */
export async function placeOrder<Tx>(
  tx: Tx,
  deps: CheckoutDeps<Tx>,
  order: StoredOrder,
): Promise<StoredOrder> {
  const stored = await deps.data.orders.insertOnce(tx, order);
  const payload: CompleterPayload = { tenant: order.tenant, orderId: order.id };
  await deps.data.jobs.enqueue(tx, {
    topic: completerTopic,
    id: derivedId(order.id, completerTopic),
    payload,
    runAt: Date.now() + deps.completerDelayMs,
    maxAttempts: serviceJobMaxAttempts,
  });
  return stored;
}

/**
 * Part 2: charges the order's total with its derived key (`<record id>:charge`). Run again
 * with the same key — by a retry, a takeover or the completer — it is the provider's replay.
 * Throws `PaymentsUnavailableError` (503, "may have charged": retry with the same key) or
 * `PaymentsRejectedError`.
 */
export async function chargeOrder<Tx>(deps: CheckoutDeps<Tx>, order: StoredOrder): Promise<ChargeMade> {
  if (order.totalCents === 0) return { chargeId: null, amountCents: 0 };
  if (order.chargeKey === null) throw new Error(`order ${order.id} has no charge key: it predates checkouts`);
  try {
    const { charge } = await deps.payments.charge({
      key: order.chargeKey,
      amount: order.totalCents,
      currency: order.currency,
      reference: order.id,
    });
    return { chargeId: charge.id, amountCents: charge.amount };
  } catch (error) {
    // Orders are checked against the provider's bounds before they are placed, so a refusal
    // here is a fault between the two services, not the client's: a 502, never stored, and
    // the order stays pending for the completer (and an operator: its job ends up dead).
    if (error instanceof PaymentsRejectedError) throw new ProviderRefusedError(error);
    throw error;
  }
}

/** The most one charge may be (the provider's bound): a larger order is refused before it is placed. */
export const maxChargeCents = maxAmount;

/** 422 before anything is written, for an order the provider could never charge. */
export function checkChargeable(totalCents: number): void {
  if (totalCents > maxChargeCents)
    throw new ValidationError([
      {
        pointer: '/items',
        detail: `the order's total (${totalCents}) is more than one charge may be (${maxChargeCents})`,
      },
    ]);
}

export class ProviderRefusedError extends ProblemError {
  override name = 'ProviderRefusedError';
  constructor(cause: PaymentsRejectedError) {
    super({
      status: 502,
      type: 'payment-provider-refused',
      title: 'Bad gateway',
      detail: `The payment provider refused this order's charge (${cause.message}); nothing was charged and the order stays pending.`,
      cause,
    });
  }
}

/**
 * Part 3: marks the order paid, starts its shipment, records the payment and emits
 * `order.paid`, all in `tx`, only while the order is still pending (a compare-and-set on its
 * ETag): whoever comes second finds it paid and changes nothing. Returns the order as it is.
 */
export async function finishCheckout<Tx>(
  tx: Tx,
  deps: CheckoutDeps<Tx>,
  tenant: string,
  orderId: string,
  charge: ChargeMade,
): Promise<StoredOrder> {
  const { orders, jobs } = deps.data;
  const current = await orders.getIn(tx, tenant, orderId);
  if (current === undefined) throw new Error(`order ${orderId} of ${tenant} vanished during its checkout`);
  if (current.status !== 'pending') return current;
  const paid = paidOrder(current, charge.chargeId, charge.amountCents);
  if (!(await orders.update(tx, paid, current.etag))) return (await orders.getIn(tx, tenant, orderId))!;
  await orders.startShipment(tx, tenant, orderId, paid.paidAt!);
  if (charge.chargeId !== null && current.chargeKey !== null) {
    await orders.recordPayment(tx, {
      key: current.chargeKey,
      tenant,
      orderId,
      kind: 'charge',
      providerId: charge.chargeId,
      amountCents: charge.amountCents,
      refundsCharge: null,
      createdAt: paid.paidAt!,
    });
  }
  const event: OrderPaidEvent = {
    tenant,
    orderId,
    amountCents: charge.amountCents,
    currency: paid.currency,
    chargeId: charge.chargeId,
    paidAt: paid.paidAt!,
  };
  await jobs.enqueue(tx, {
    topic: orderPaidTopic,
    id: orderPaidEventId(orderId),
    payload: event,
    maxAttempts: serviceJobMaxAttempts,
  });
  return { ...paid, shipment: 'pending' };
}
