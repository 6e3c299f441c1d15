import { describe, expect, it } from 'vitest';
import { orderPaidEventId } from '../checkout/checkout.js';
import type { Charge } from '../payments/types.js';
import { auditCheckouts, type CheckoutAuditInput, type CheckoutOrderRow } from './checkout-audit.js';
import { checkoutFailures } from './report.js';
import type { LogicalOrder } from './workers.js';

function paid(id: string, chargeId = `ch_${id}`): CheckoutOrderRow {
  return {
    id,
    sku: `sku-${id}`,
    status: 'paid',
    totalCents: 500,
    chargeId,
    shipment: 'pending',
    chargePayments: [chargeId],
    eventJobState: 'done',
  };
}

function charge(reference: string, id = `ch_${reference}`, amount = 500): Charge {
  return { id, amount, currency: 'EUR', reference, status: 'succeeded', createdAt: '2025-01-01T00:00:00Z' };
}

function abandoned(id: string): LogicalOrder {
  return {
    index: 0,
    sku: `sku-${id}`,
    idempotencyKey: id,
    outcome: { kind: 'unknown', sent: 'maybe', errorKind: 'server' },
    attempts: 1,
    replayed: false,
    abandoned: true,
  };
}

function input(overrides: Partial<CheckoutAuditInput>): CheckoutAuditInput {
  return {
    callers: [],
    orders: [paid('o1'), paid('o2')],
    charges: [charge('o1'), charge('o2')],
    broker: 'nats',
    processings: new Map([
      [orderPaidEventId('o1'), 1],
      [orderPaidEventId('o2'), 1],
    ]),
    duplicatesSkipped: 0,
    ...overrides,
  };
}

function failuresOf(audit: ReturnType<typeof auditCheckouts>): string[] {
  return checkoutFailures({ orders: audit.orders, charges: audit.charges, events: audit.events });
}

describe('auditCheckouts', () => {
  it('passes orders each charged once, paid with shipment and payment, and their events processed once', () => {
    const audit = auditCheckouts(input({ callers: [abandoned('o2')] }));
    expect(audit.orders).toEqual({
      paid: 2,
      unpaid: 0,
      doubleCharged: 0,
      paidIncomplete: 0,
      abandoned: 1,
      abandonedAndPaid: 1,
    });
    expect(audit.charges).toEqual({ made: 2, orphaned: 0, chargedCents: 1000 });
    expect(audit.events).toMatchObject({ expected: 2, inOutbox: 2, published: 2, processed: 2, missing: 0 });
    expect(failuresOf(audit)).toEqual([]);
  });

  it('finds an order charged twice, and the second charge orphaned by no paid order', () => {
    const audit = auditCheckouts(input({ charges: [charge('o1'), charge('o1', 'ch_again'), charge('o2')] }));
    expect(audit.orders.doubleCharged).toBe(1);
    expect(failuresOf(audit)).toContain('1 double-charged');
  });

  it('finds a charge for an order left pending as unpaid and orphaned', () => {
    const pending: CheckoutOrderRow = {
      ...paid('o3'),
      status: 'pending',
      chargeId: null,
      shipment: null,
      chargePayments: [],
      eventJobState: undefined,
    };
    const audit = auditCheckouts(
      input({
        orders: [paid('o1'), paid('o2'), pending],
        charges: [charge('o1'), charge('o2'), charge('o3')],
      }),
    );
    expect(audit.orders.unpaid).toBe(1);
    expect(audit.charges.orphaned).toBe(1);
    expect(failuresOf(audit)).toEqual(['1 unpaid after the completer', '1 orphaned charges']);
  });

  it('finds a paid order without its shipment, its payment row or a matching charge', () => {
    const audit = auditCheckouts(
      input({
        orders: [
          { ...paid('o1'), shipment: null },
          { ...paid('o2'), chargePayments: [] },
          paid('o3'),
          paid('o4'),
        ],
        charges: [charge('o1'), charge('o2'), charge('o4', 'ch_o4', 499)],
        processings: undefined,
      }),
    );
    expect(audit.orders.paidIncomplete).toBe(4);
  });

  it('finds an event never processed and one processed twice by the audit consumer', () => {
    const audit = auditCheckouts(
      input({
        processings: new Map([
          [orderPaidEventId('o1'), 2],
          ['not-an-order-of-this-run', 1],
        ]),
      }),
    );
    expect(audit.events).toMatchObject({ missing: 1, processedTwice: 1, unexpected: 1 });
    expect(failuresOf(audit)).toEqual([
      '1 events missing',
      '1 events processed twice',
      '1 unexpected events',
    ]);
  });

  it('without a broker, counts paid orders with no order.paid row in the outbox as missing', () => {
    const audit = auditCheckouts(
      input({
        broker: undefined,
        processings: undefined,
        orders: [paid('o1'), { ...paid('o2'), eventJobState: undefined }],
      }),
    );
    expect(audit.events).toMatchObject({
      broker: 'none',
      expected: 2,
      inOutbox: 1,
      missing: 1,
      processed: 0,
    });
  });
});
