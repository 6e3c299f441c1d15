// An order: its stored shape, its representation and ETag, and the total it derives.
import { randomUUID } from 'node:crypto';
import { strongEtag } from 'retrysafe/http';

export interface OrderItem {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

export interface OrderInput {
  items: OrderItem[];
  currency: string;
  note?: string;
}

/**
 * `pending`: placed, not yet charged (a checkout under way, or abandoned until the completer
 * finishes it); `paid`: charged, with its shipment; `placed`: written before checkouts existed.
 */
export type PaymentStatus = 'pending' | 'paid' | 'placed';

export interface Order {
  id: string;
  items: OrderItem[];
  currency: string;
  note: string | null;
  totalCents: number;
  createdAt: string;
  status: PaymentStatus;
  /** What the customer has paid in all (the first charge, then adjustments by PUT). */
  paidCents: number;
  /** The provider's id of the first charge. */
  chargeId: string | null;
  paidAt: string | null;
  /** `pending` once paid (nothing ships it yet in this service); null before. */
  shipment: 'pending' | 'shipped' | null;
  /** Starts at 1; every replacement adds one. */
  version: number;
  updatedAt: string;
}

export interface StoredOrder extends Order {
  tenant: string;
  etag: string;
  /**
   * The charge's derived key, `<record id>:charge`: stored with the order so the completer job
   * charges an abandoned checkout with the very key the request used (a replay, never a second charge).
   */
  chargeKey: string | null;
  /** The ETag the last replacement replaced, and a digest of its body (rule 33 for PUT). */
  replacedEtag: string | null;
  replacedBodyDigest: string | null;
}

export function orderRepresentation(order: Order): Record<string, unknown> {
  return {
    id: order.id,
    items: order.items.map((item) => ({
      sku: item.sku,
      quantity: item.quantity,
      unitPriceCents: item.unitPriceCents,
    })),
    currency: order.currency,
    ...(order.note === null ? {} : { note: order.note }),
    totalCents: order.totalCents,
    createdAt: order.createdAt,
    version: order.version,
    updatedAt: order.updatedAt,
    payment: {
      status: order.status,
      paidCents: order.paidCents,
      ...(order.chargeId === null ? {} : { chargeId: order.chargeId }),
      ...(order.paidAt === null ? {} : { paidAt: order.paidAt }),
    },
    shipment: order.shipment === null ? null : { status: order.shipment },
  };
}

export function serializeOrder(order: Order): string {
  return JSON.stringify(orderRepresentation(order));
}

/** A new order, pending payment. `chargeKey`: the derived key its checkout charges with. */
export function buildOrder(
  tenant: string,
  input: OrderInput,
  id: string = randomUUID(),
  chargeKey: string | null = null,
): StoredOrder {
  const now = new Date().toISOString();
  return withEtag({
    id,
    tenant,
    items: input.items,
    currency: input.currency,
    note: input.note ?? null,
    totalCents: totalOf(input.items),
    createdAt: now,
    updatedAt: now,
    status: 'pending',
    paidCents: 0,
    chargeId: null,
    paidAt: null,
    shipment: null,
    version: 1,
    chargeKey,
    replacedEtag: null,
    replacedBodyDigest: null,
    etag: '',
  });
}

export function totalOf(items: readonly OrderItem[]): number {
  return items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0);
}

/** The order with the ETag of its representation (every change of what a GET shows changes it). */
export function withEtag(order: StoredOrder): StoredOrder {
  return { ...order, etag: strongEtag(serializeOrder(order)) };
}

/** Paid: the charge made, the shipment started. */
export function paidOrder(order: StoredOrder, chargeId: string | null, amountCents: number): StoredOrder {
  const now = new Date().toISOString();
  return withEtag({
    ...order,
    status: 'paid',
    paidCents: amountCents,
    chargeId,
    paidAt: now,
    shipment: 'pending',
    updatedAt: now,
  });
}

/** The order with its items replaced (one version later), and what the replacement was. */
export function replacedOrder(
  order: StoredOrder,
  input: OrderInput,
  paidCents: number,
  bodyDigest: string,
): StoredOrder {
  return withEtag({
    ...order,
    items: input.items,
    currency: input.currency,
    note: input.note ?? null,
    totalCents: totalOf(input.items),
    paidCents,
    version: order.version + 1,
    updatedAt: new Date().toISOString(),
    replacedEtag: order.etag,
    replacedBodyDigest: bodyDigest,
  });
}

export function orderPath(id: string): string {
  return `/orders/${encodeURIComponent(id)}`;
}
