// After a checkout chaos run: every order of the run as the database holds it (status, charge,
// shipment, payment rows, its `order.paid` outbox row) against the provider's charges and what
// the audit consumer processed. Each figure a run must keep at 0 is one way money or an event
// goes wrong: charged twice, charged with no paid order, paid but never charged, never paid.

import { orderPaidEventId } from '../checkout/checkout.js';
import type { DatabaseConfig } from '../config.js';
import type { StoredOrder } from '../domain/orders.js';
import type { Charge } from '../payments/types.js';
import { openServiceData } from '../server.js';
import type { ChaosBroker } from './options.js';
import type { LogicalOrder } from './workers.js';

/** What the audit needs of one order of the run. */
export interface CheckoutOrderRow {
  id: string;
  sku: string;
  status: StoredOrder['status'];
  totalCents: number;
  chargeId: string | null;
  shipment: StoredOrder['shipment'];
  /** Provider ids of its `charge` payment rows (order_payments). */
  chargePayments: string[];
  /** Its `order.paid` outbox row's state; undefined when there is none. */
  eventJobState: string | undefined;
}

export interface CheckoutOrderFigures {
  /** Orders of the run marked paid, … */
  paid: number;
  /** … and still pending after the completer had its time: each is a charge that never finished. */
  unpaid: number;
  /** Orders the provider charged more than once (charges with the order as reference). */
  doubleCharged: number;
  /**
   * Paid orders that are not whole: no shipment, no payment row for their charge, or a charge
   * the provider never made (or for another amount).
   */
  paidIncomplete: number;
  /** Callers that gave up at their first 503 and never came back, … */
  abandoned: number;
  /** … and of those, orders that exist and are paid: finished by the completer. */
  abandonedAndPaid: number;
}

export interface ChargeFigures {
  /** Charges the provider made (a replay makes none). */
  made: number;
  /** Charges whose reference is no paid order of the run: money taken for nothing. */
  orphaned: number;
  chargedCents: number;
}

export interface EventFigures {
  /** Where the events went: a broker, or none (they wait in the outbox). */
  broker: ChaosBroker | 'none';
  /** Paid orders, each of which owes one `order.paid` event. */
  expected: number;
  /** Of those, events with an outbox row, and of those, rows the relay finished (published). */
  inOutbox: number;
  published: number;
  /** Distinct events the audit consumer processed (with a broker). */
  processed: number;
  /**
   * Paid orders whose event the audit consumer never processed; without a broker, paid orders
   * with no `order.paid` row in the outbox.
   */
  missing: number;
  /** Events the audit consumer's handler ran more than once for (rows in its effects table). */
  processedTwice: number;
  /** Deliveries the consumer's ledger skipped as already processed (resends, redeliveries). */
  duplicatesSkipped: number;
  /** Events of no order of the run; none are expected. */
  unexpected: number;
}

export interface CheckoutAuditInput {
  callers: LogicalOrder[];
  orders: CheckoutOrderRow[];
  charges: Charge[];
  broker: ChaosBroker | undefined;
  /** Per event id, how many times the audit consumer's handler ran (with a broker). */
  processings: Map<string, number> | undefined;
  duplicatesSkipped: number;
}

export function auditCheckouts(input: CheckoutAuditInput): {
  orders: CheckoutOrderFigures;
  charges: ChargeFigures;
  events: EventFigures;
} {
  const chargesByReference = new Map<string, Charge[]>();
  for (const charge of input.charges) {
    const list = chargesByReference.get(charge.reference);
    if (list) list.push(charge);
    else chargesByReference.set(charge.reference, [charge]);
  }
  const orders: CheckoutOrderFigures = {
    paid: 0,
    unpaid: 0,
    doubleCharged: 0,
    paidIncomplete: 0,
    abandoned: 0,
    abandonedAndPaid: 0,
  };
  const events: EventFigures = {
    broker: input.broker ?? 'none',
    expected: 0,
    inOutbox: 0,
    published: 0,
    processed: 0,
    missing: 0,
    processedTwice: 0,
    duplicatesSkipped: input.duplicatesSkipped,
    unexpected: 0,
  };
  const paidIds = new Set<string>();
  const eventIds = new Set<string>();
  for (const order of input.orders) {
    const charges = chargesByReference.get(order.id) ?? [];
    if (charges.length > 1) orders.doubleCharged++;
    const eventId = orderPaidEventId(order.id);
    eventIds.add(eventId);
    if (order.status === 'pending') orders.unpaid++;
    if (order.status !== 'paid') continue;
    orders.paid++;
    paidIds.add(order.id);
    const charge = charges.find((made) => made.id === order.chargeId);
    const whole =
      order.shipment !== null &&
      (order.totalCents === 0
        ? order.chargeId === null
        : charge !== undefined &&
          charge.amount === order.totalCents &&
          order.chargePayments.includes(charge.id));
    if (!whole) orders.paidIncomplete++;
    events.expected++;
    if (order.eventJobState !== undefined) events.inOutbox++;
    if (order.eventJobState === 'done') events.published++;
    if (input.processings === undefined) {
      if (order.eventJobState === undefined) events.missing++;
    } else if ((input.processings.get(eventId) ?? 0) === 0) {
      events.missing++;
    }
  }
  if (input.processings !== undefined) {
    for (const [id, times] of input.processings) {
      events.processed++;
      if (times > 1) events.processedTwice++;
      if (!eventIds.has(id)) events.unexpected++;
    }
  }
  const ordersBySku = new Map(input.orders.map((order) => [order.sku, order]));
  for (const caller of input.callers) {
    if (!caller.abandoned) continue;
    orders.abandoned++;
    if (ordersBySku.get(caller.sku)?.status === 'paid') orders.abandonedAndPaid++;
  }
  const charges: ChargeFigures = {
    made: input.charges.length,
    orphaned: input.charges.filter((charge) => !paidIds.has(charge.reference)).length,
    chargedCents: input.charges.reduce((sum, charge) => sum + charge.amount, 0),
  };
  return { orders, charges, events };
}

/** The orders of `tenant` whose first SKU starts with `skuPrefix`, with their payments and event row. */
export async function readCheckoutOrders(
  database: DatabaseConfig,
  tenant: string,
  skuPrefix: string,
): Promise<CheckoutOrderRow[]> {
  const data = await openServiceData(database);
  try {
    const found: CheckoutOrderRow[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = await data.orders.list(tenant, afterSeq, 500);
      for (const order of page.items) {
        const sku = order.items[0]?.sku;
        if (!sku?.startsWith(skuPrefix)) continue;
        const payments = order.status === 'paid' ? await data.orders.payments(tenant, order.id) : [];
        const eventJob =
          order.status === 'paid' ? await data.jobs.get(orderPaidEventId(order.id)) : undefined;
        found.push({
          id: order.id,
          sku,
          status: order.status,
          totalCents: order.totalCents,
          chargeId: order.chargeId,
          shipment: order.shipment,
          chargePayments: payments.filter((payment) => payment.kind === 'charge').map((p) => p.providerId),
          eventJobState: eventJob?.state,
        });
      }
      if (page.nextAfterSeq === undefined) return found;
      afterSeq = page.nextAfterSeq;
    }
  } finally {
    await data.close();
  }
}

/** Orders of the run still pending, for the drain's wait (one cheap pass, no payments read). */
export async function countPending(
  data: Awaited<ReturnType<typeof openServiceData>>,
  tenant: string,
  skuPrefix: string,
): Promise<{ pending: number; paidEventIds: string[] }> {
  let pending = 0;
  const paidEventIds: string[] = [];
  let afterSeq = 0;
  for (;;) {
    const page = await data.orders.list(tenant, afterSeq, 500);
    for (const order of page.items) {
      if (!order.items[0]?.sku.startsWith(skuPrefix)) continue;
      if (order.status === 'pending') pending++;
      else if (order.status === 'paid') paidEventIds.push(orderPaidEventId(order.id));
    }
    if (page.nextAfterSeq === undefined) return { pending, paidEventIds };
    afterSeq = page.nextAfterSeq;
  }
}
