// Orders on SQLite: reads on the database, the insert on the transaction it is given.
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import type { StoredOrder } from '../../domain/orders.js';
import { type OrderRepository, toPage } from '../types.js';
import { statementCache } from './statements.js';

interface OrderRow {
  seq: number;
  tenant: string;
  id: string;
  currency: string;
  items: string;
  note: string | null;
  total_cents: number;
  created_at: string;
  etag: string;
}

const statements = statementCache((db: SqliteDatabase) => ({
  byId: db.prepare('SELECT * FROM orders WHERE tenant = ? AND id = ?'),
  after: db.prepare('SELECT * FROM orders WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?'),
  count: db.prepare('SELECT count(*) AS n FROM orders WHERE tenant = ?'),
  insert: db.prepare(`
    INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
    VALUES (@tenant, @id, @currency, @items, @note, @totalCents, @createdAt, @etag)
    ON CONFLICT (tenant, id) DO NOTHING`),
}));

export function sqliteOrders(db: SqliteDatabase): OrderRepository<SqliteDatabase> {
  return {
    async get(tenant, id) {
      const row = statements(db).byId.get(tenant, id) as OrderRow | undefined;
      return row && toOrder(row);
    },
    async list(tenant, afterSeq, limit) {
      const rows = statements(db).after.all(tenant, afterSeq, limit + 1) as OrderRow[];
      return toPage(rows, limit, toOrder, (row) => row.seq);
    },
    async insertOnce(tx, order) {
      const sql = statements(tx);
      const inserted = sql.insert.run({
        tenant: order.tenant,
        id: order.id,
        currency: order.currency,
        items: JSON.stringify(order.items),
        note: order.note,
        totalCents: order.totalCents,
        createdAt: order.createdAt,
        etag: order.etag,
      });
      if (inserted.changes === 1) return order;
      return toOrder(sql.byId.get(order.tenant, order.id) as OrderRow);
    },
    async count(tenant) {
      return (statements(db).count.get(tenant) as { n: number }).n;
    },
  };
}

function toOrder(row: OrderRow): StoredOrder & { seq: number } {
  return {
    seq: row.seq,
    tenant: row.tenant,
    id: row.id,
    currency: row.currency,
    items: JSON.parse(row.items) as StoredOrder['items'],
    note: row.note,
    totalCents: row.total_cents,
    createdAt: row.created_at,
    etag: row.etag,
  };
}
