// An order: its stored shape, its representation and ETag, and the total it derives.
import { createHash, randomUUID } from 'node:crypto';
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
  /** A replacement reserved by PUT and not yet applied (its money may be moving); else null. */
  pendingChange: PendingChange | null;
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

/** One movement of money a replacement needs, under its derived key, planned at reservation. */
export type PaymentMovement =
  | { kind: 'charge'; key: string; amountCents: number }
  | { kind: 'refund'; key: string; amountCents: number; chargeId: string };

/**
 * A replacement reserved on the order (PUT /orders/{id}): what it replaces, what it becomes and
 * the money it moves. Stored on the row in the transaction that took the ETag it replaces, so
 * exactly one change per version ever moves money; the request or its completer applies it.
 */
export interface PendingChange {
  /** The version it replaces (the new one is `version + 1`); part of every payment key. */
  version: number;
  /** The ETag it replaced (the PUT's If-Match) and the digest of the PUT's body. */
  replacesEtag: string;
  bodyDigest: string;
  input: OrderInput;
  /** Charges or refunds to make, in order; their keys derive from the order and `version`. */
  movements: PaymentMovement[];
  reservedAt: string;
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
    // Only while one is reserved, so an order without one keeps the ETag it always had; with
    // one, the ETag differs from the one it replaces, which is what refuses a second PUT (412).
    ...(order.pendingChange ? { pendingChange: { version: order.pendingChange.version + 1 } } : {}),
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
    pendingChange: null,
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

/** The order with `change` reserved on it: same content, a new ETag (what a GET shows changed). */
export function withPendingChange(order: StoredOrder, change: PendingChange): StoredOrder {
  return withEtag({ ...order, pendingChange: change });
}

/**
 * The order with its pending change applied: one version later, the new items and total, what
 * was paid moved by the change's payments, the replaced ETag and body kept (rule 33), none pending.
 */
export function replacedOrder(order: StoredOrder, change: PendingChange): StoredOrder {
  const moved = change.movements.reduce(
    (sum, movement) => sum + (movement.kind === 'charge' ? movement.amountCents : -movement.amountCents),
    0,
  );
  return withEtag({
    ...order,
    items: change.input.items,
    currency: change.input.currency,
    note: change.input.note ?? null,
    totalCents: totalOf(change.input.items),
    paidCents: order.paidCents + moved,
    version: change.version + 1,
    updatedAt: new Date().toISOString(),
    replacedEtag: change.replacesEtag,
    replacedBodyDigest: change.bodyDigest,
    pendingChange: null,
  });
}

/**
 * A digest of an order body's meaning, not its bytes: key order, spacing and an absent note
 * versus none do not make two PUTs different (rule 13: a field left out is cleared).
 */
export function orderInputDigest(input: OrderInput): string {
  const canonical = JSON.stringify({
    items: input.items.map((item) => [item.sku, item.quantity, item.unitPriceCents]),
    currency: input.currency,
    note: input.note ?? null,
  });
  return createHash('sha256').update(canonical).digest('base64url');
}

export function orderPath(id: string): string {
  return `/orders/${encodeURIComponent(id)}`;
}
