// Orders on PostgreSQL: reads on the pool, the insert on the transaction's client it is given.
import type { Pool, PoolClient } from 'pg';
import type { StoredOrder } from '../../domain/orders.js';
import { type OrderRepository, toPage } from '../types.js';

interface OrderRow {
  seq: string;
  tenant: string;
  id: string;
  currency: string;
  items: StoredOrder['items'];
  note: string | null;
  total_cents: string;
  created_at: string;
  etag: string;
}

export function postgresOrders(pool: Pool): OrderRepository<PoolClient> {
  return {
    async get(tenant, id) {
      const { rows } = await pool.query<OrderRow>('SELECT * FROM orders WHERE tenant = $1 AND id = $2', [
        tenant,
        id,
      ]);
      return rows[0] && toOrder(rows[0]);
    },
    async list(tenant, afterSeq, limit) {
      const { rows } = await pool.query<OrderRow>(
        'SELECT * FROM orders WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [tenant, afterSeq, limit + 1],
      );
      return toPage(rows, limit, toOrder, (row) => Number(row.seq));
    },
    async insertOnce(tx, order) {
      const inserted = await tx.query(
        `INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant, id) DO NOTHING`,
        [
          order.tenant,
          order.id,
          order.currency,
          JSON.stringify(order.items),
          order.note,
          order.totalCents,
          order.createdAt,
          order.etag,
        ],
      );
      if (inserted.rowCount === 1) return order;
      const { rows } = await tx.query<OrderRow>('SELECT * FROM orders WHERE tenant = $1 AND id = $2', [
        order.tenant,
        order.id,
      ]);
      return toOrder(rows[0]!);
    },
    async count(tenant) {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM orders WHERE tenant = $1', [
        tenant,
      ]);
      return Number(rows[0]?.n ?? 0);
    },
  };
}

function toOrder(row: OrderRow): StoredOrder & { seq: number } {
  return {
    seq: Number(row.seq),
    tenant: row.tenant,
    id: row.id,
    currency: row.currency,
    items: row.items,
    note: row.note,
    totalCents: Number(row.total_cents),
    createdAt: row.created_at,
    etag: row.etag,
  };
}
