// The orders an import creates: ids derived from the import and the order's index (so a batch
// that runs again writes the same rows, which the unique index keeps single), recorded as
// `placed` — an import records orders that were sold elsewhere; it charges nobody.
import { createHash } from 'node:crypto';
import { buildOrder, type OrderInput, type StoredOrder, withEtag } from '../domain/orders.js';

/** A UUID-shaped id from the import's id and the order's 0-based index in its input. */
export function importedOrderId(importId: string, index: number): string {
  const hex = createHash('sha256').update(`order-import:${importId}:${index}`).digest('hex');
  // Version 8 (custom) and the RFC 9562 variant, so it reads as the UUIDs other orders have.
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function importedOrder(tenant: string, input: OrderInput, id: string): StoredOrder {
  return withEtag({ ...buildOrder(tenant, input, id), status: 'placed' });
}

/** Where an import's result is read. */
export function importPath(id: string): string {
  return `/orders/imports/${encodeURIComponent(id)}`;
}
