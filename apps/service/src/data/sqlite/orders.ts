// Orders on SQLite: reads on the database, writes on the transaction they are given. An order's
// shipment and its provider payments live in their own tables; reads join the shipment in.
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';
import type { PaymentStatus, PendingChange, StoredOrder } from '../../domain/orders.js';
import { type OrderPayment, type OrderRepository, toPage } from '../types.js';
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
  status: PaymentStatus;
  paid_cents: number;
  charge_id: string | null;
  charge_key: string | null;
  paid_at: string | null;
  version: number;
  updated_at: string | null;
  replaced_etag: string | null;
  replaced_body_digest: string | null;
  pending_change: string | null;
  shipment_status: 'pending' | 'shipped' | null;
}

interface PaymentRow {
  key: string;
  tenant: string;
  order_id: string;
  kind: 'charge' | 'refund';
  provider_id: string;
  amount_cents: number;
  refunds_charge: string | null;
  created_at: string;
}

const withShipment = `SELECT o.*, s.status AS shipment_status FROM orders o
  LEFT JOIN shipments s ON s.tenant = o.tenant AND s.order_id = o.id`;

const statements = statementCache((db: SqliteDatabase) => ({
  byId: db.prepare(`${withShipment} WHERE o.tenant = ? AND o.id = ?`),
  after: db.prepare(`${withShipment} WHERE o.tenant = ? AND o.seq > ? ORDER BY o.seq LIMIT ?`),
  count: db.prepare('SELECT count(*) AS n FROM orders WHERE tenant = ?'),
  insert: db.prepare(`
    INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag, status, paid_cents,
      charge_id, charge_key, paid_at, version, updated_at, replaced_etag, replaced_body_digest, pending_change)
    VALUES (@tenant, @id, @currency, @items, @note, @totalCents, @createdAt, @etag, @status, @paidCents,
      @chargeId, @chargeKey, @paidAt, @version, @updatedAt, @replacedEtag, @replacedBodyDigest, @pendingChange)
    ON CONFLICT (tenant, id) DO NOTHING`),
  update: db.prepare(`
    UPDATE orders SET currency = @currency, items = @items, note = @note, total_cents = @totalCents,
      etag = @etag, status = @status, paid_cents = @paidCents, charge_id = @chargeId, charge_key = @chargeKey,
      paid_at = @paidAt, version = @version, updated_at = @updatedAt, replaced_etag = @replacedEtag,
      replaced_body_digest = @replacedBodyDigest, pending_change = @pendingChange
    WHERE tenant = @tenant AND id = @id AND etag = @expectedEtag`),
  startShipment: db.prepare(`
    INSERT INTO shipments (tenant, order_id, status, created_at) VALUES (?, ?, 'pending', ?)
    ON CONFLICT (tenant, order_id) DO NOTHING`),
  recordPayment: db.prepare(`
    INSERT INTO order_payments (key, tenant, order_id, kind, provider_id, amount_cents, refunds_charge, created_at)
    VALUES (@key, @tenant, @orderId, @kind, @providerId, @amountCents, @refundsCharge, @createdAt)
    ON CONFLICT (key) DO NOTHING`),
  payments: db.prepare(
    'SELECT * FROM order_payments WHERE tenant = ? AND order_id = ? ORDER BY created_at, key',
  ),
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
      if (sql.insert.run(orderParams(order)).changes === 1) return order;
      return toOrder(sql.byId.get(order.tenant, order.id) as OrderRow);
    },
    async count(tenant) {
      return (statements(db).count.get(tenant) as { n: number }).n;
    },
    async getIn(tx, tenant, id) {
      const row = statements(tx).byId.get(tenant, id) as OrderRow | undefined;
      return row && toOrder(row);
    },
    async update(tx, order, expectedEtag) {
      return statements(tx).update.run({ ...orderParams(order), expectedEtag }).changes === 1;
    },
    async startShipment(tx, tenant, orderId, at) {
      return statements(tx).startShipment.run(tenant, orderId, at).changes === 1;
    },
    async recordPayment(tx, payment) {
      statements(tx).recordPayment.run({ ...payment });
    },
    async payments(tenant, orderId) {
      return (statements(db).payments.all(tenant, orderId) as PaymentRow[]).map(toPayment);
    },
    async paymentsIn(tx, tenant, orderId) {
      return (statements(tx).payments.all(tenant, orderId) as PaymentRow[]).map(toPayment);
    },
  };
}

function orderParams(order: StoredOrder) {
  return {
    tenant: order.tenant,
    id: order.id,
    currency: order.currency,
    items: JSON.stringify(order.items),
    note: order.note,
    totalCents: order.totalCents,
    createdAt: order.createdAt,
    etag: order.etag,
    status: order.status,
    paidCents: order.paidCents,
    chargeId: order.chargeId,
    chargeKey: order.chargeKey,
    paidAt: order.paidAt,
    version: order.version,
    updatedAt: order.updatedAt,
    replacedEtag: order.replacedEtag,
    replacedBodyDigest: order.replacedBodyDigest,
    pendingChange: order.pendingChange === null ? null : JSON.stringify(order.pendingChange),
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
    status: row.status,
    paidCents: row.paid_cents,
    chargeId: row.charge_id,
    chargeKey: row.charge_key,
    paidAt: row.paid_at,
    version: row.version,
    updatedAt: row.updated_at ?? row.created_at,
    replacedEtag: row.replaced_etag,
    replacedBodyDigest: row.replaced_body_digest,
    pendingChange: row.pending_change === null ? null : (JSON.parse(row.pending_change) as PendingChange),
    shipment: row.shipment_status,
  };
}

function toPayment(row: PaymentRow): OrderPayment {
  return {
    key: row.key,
    tenant: row.tenant,
    orderId: row.order_id,
    kind: row.kind,
    providerId: row.provider_id,
    amountCents: row.amount_cents,
    refundsCharge: row.refunds_charge,
    createdAt: row.created_at,
  };
}
