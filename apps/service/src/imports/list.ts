// GET /orders?importId=: the orders an import created, oldest first, in the list's usual pages.
import type { Page, ServiceData } from '../data/types.js';
import type { StoredOrder } from '../domain/orders.js';

export async function importedOrdersPage<Tx>(
  data: ServiceData<Tx>,
  tenant: string,
  importId: string,
  afterSeq: number,
  limit: number,
): Promise<Page<StoredOrder>> {
  const ids = await data.imports.orderIds(tenant, importId, afterSeq, limit);
  // At most 100 reads of one page, through the orders repository so an order reads the same
  // here as at GET /orders/{id}. Imported orders are never deleted, so each one is found.
  const orders = await Promise.all(ids.items.map((id) => data.orders.get(tenant, id)));
  return { items: orders.filter((order) => order !== undefined), nextAfterSeq: ids.nextAfterSeq };
}
