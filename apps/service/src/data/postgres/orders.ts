// Orders on PostgreSQL: reads on the pool, writes on the transaction's client they are given.
// An order's shipment and its provider payments live in their own tables; reads join the shipment in.
import type { Pool, PoolClient } from 'pg';
import type { PaymentStatus, PendingChange, StoredOrder } from '../../domain/orders.js';
import { type OrderPayment, type OrderRepository, toPage } from '../types.js';

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
  status: PaymentStatus;
  paid_cents: string;
  charge_id: string | null;
  charge_key: string | null;
  paid_at: string | null;
  version: number;
  updated_at: string | null;
  replaced_etag: string | null;
  replaced_body_digest: string | null;
  pending_change: PendingChange | null;
  shipment_status: 'pending' | 'shipped' | null;
}

interface PaymentRow {
  key: string;
  tenant: string;
  order_id: string;
  kind: 'charge' | 'refund';
  provider_id: string;
  amount_cents: string;
  refunds_charge: string | null;
  created_at: string;
}

const withShipment = `SELECT o.*, s.status AS shipment_status FROM orders o
  LEFT JOIN shipments s ON s.tenant = o.tenant AND s.order_id = o.id`;
const byId = `${withShipment} WHERE o.tenant = $1 AND o.id = $2`;
const paymentsOf =
  'SELECT * FROM order_payments WHERE tenant = $1 AND order_id = $2 ORDER BY created_at, key';

export function postgresOrders(pool: Pool): OrderRepository<PoolClient> {
  return {
    async get(tenant, id) {
      const { rows } = await pool.query<OrderRow>(byId, [tenant, id]);
      return rows[0] && toOrder(rows[0]);
    },
    async list(tenant, afterSeq, limit) {
      const { rows } = await pool.query<OrderRow>(
        `${withShipment} WHERE o.tenant = $1 AND o.seq > $2 ORDER BY o.seq LIMIT $3`,
        [tenant, afterSeq, limit + 1],
      );
      return toPage(rows, limit, toOrder, (row) => Number(row.seq));
    },
    async insertOnce(tx, order) {
      const inserted = await tx.query(
        `INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag, status, paid_cents,
           charge_id, charge_key, paid_at, version, updated_at, replaced_etag, replaced_body_digest, pending_change)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (tenant, id) DO NOTHING`,
        orderValues(order),
      );
      if (inserted.rowCount === 1) return order;
      const { rows } = await tx.query<OrderRow>(byId, [order.tenant, order.id]);
      return toOrder(rows[0]!);
    },
    async count(tenant) {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM orders WHERE tenant = $1', [
        tenant,
      ]);
      return Number(rows[0]?.n ?? 0);
    },
    async getIn(tx, tenant, id) {
      const { rows } = await tx.query<OrderRow>(byId, [tenant, id]);
      return rows[0] && toOrder(rows[0]);
    },
    async update(tx, order, expectedEtag) {
      const updated = await tx.query(
        `UPDATE orders SET currency = $3, items = $4, note = $5, total_cents = $6, etag = $8, status = $9,
           paid_cents = $10, charge_id = $11, charge_key = $12, paid_at = $13, version = $14, updated_at = $15,
           replaced_etag = $16, replaced_body_digest = $17, pending_change = $18
         WHERE tenant = $1 AND id = $2 AND etag = $19 AND created_at = $7`, // ($7 never changes; every parameter must appear)
        [...orderValues(order), expectedEtag],
      );
      return updated.rowCount === 1;
    },
    async startShipment(tx, tenant, orderId, at) {
      const inserted = await tx.query(
        `INSERT INTO shipments (tenant, order_id, status, created_at) VALUES ($1, $2, 'pending', $3)
         ON CONFLICT (tenant, order_id) DO NOTHING`,
        [tenant, orderId, at],
      );
      return inserted.rowCount === 1;
    },
    async recordPayment(tx, payment) {
      await tx.query(
        `INSERT INTO order_payments (key, tenant, order_id, kind, provider_id, amount_cents, refunds_charge, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
        [
          payment.key,
          payment.tenant,
          payment.orderId,
          payment.kind,
          payment.providerId,
          payment.amountCents,
          payment.refundsCharge,
          payment.createdAt,
        ],
      );
    },
    async payments(tenant, orderId) {
      const { rows } = await pool.query<PaymentRow>(paymentsOf, [tenant, orderId]);
      return rows.map(toPayment);
    },
    async paymentsIn(tx, tenant, orderId) {
      const { rows } = await tx.query<PaymentRow>(paymentsOf, [tenant, orderId]);
      return rows.map(toPayment);
    },
  };
}

function orderValues(order: StoredOrder): unknown[] {
  return [
    order.tenant,
    order.id,
    order.currency,
    JSON.stringify(order.items),
    order.note,
    order.totalCents,
    order.createdAt,
    order.etag,
    order.status,
    order.paidCents,
    order.chargeId,
    order.chargeKey,
    order.paidAt,
    order.version,
    order.updatedAt,
    order.replacedEtag,
    order.replacedBodyDigest,
    order.pendingChange === null ? null : JSON.stringify(order.pendingChange),
  ];
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
    status: row.status,
    paidCents: Number(row.paid_cents),
    chargeId: row.charge_id,
    chargeKey: row.charge_key,
    paidAt: row.paid_at,
    version: row.version,
    updatedAt: row.updated_at ?? row.created_at,
    replacedEtag: row.replaced_etag,
    replacedBodyDigest: row.replaced_body_digest,
    pendingChange: row.pending_change,
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
    amountCents: Number(row.amount_cents),
    refundsCharge: row.refunds_charge,
    createdAt: row.created_at,
  };
}
