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

export interface Order {
  id: string;
  items: OrderItem[];
  currency: string;
  note: string | null;
  totalCents: number;
  createdAt: string;
}

export interface StoredOrder extends Order {
  tenant: string;
  etag: string;
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
  };
}

export function serializeOrder(order: Order): string {
  return JSON.stringify(orderRepresentation(order));
}

export function buildOrder(tenant: string, input: OrderInput, id: string = randomUUID()): StoredOrder {
  const order: Order = {
    id,
    items: input.items,
    currency: input.currency,
    note: input.note ?? null,
    totalCents: input.items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0),
    createdAt: new Date().toISOString(),
  };
  return { ...order, tenant, etag: strongEtag(serializeOrder(order)) };
}

export function orderPath(id: string): string {
  return `/orders/${encodeURIComponent(id)}`;
}
