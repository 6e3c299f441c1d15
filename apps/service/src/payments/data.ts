// The simulator's data on its own SQLite file: charges and refunds in the same unit of work as
// the idempotency records, so a charge and its stored answer commit together or not at all.
// Writes take the transaction they are given; reads go straight to the database (WAL).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  createSqliteUnitOfWork,
  type SqliteDatabase,
  SqliteIdempotencyStore,
  type SqliteUnitOfWork,
} from 'retrysafe/stores/sqlite';
import { statementCache } from '../data/sqlite/statements.js';
import { type Page, toPage } from '../data/types.js';
import { asUnavailable } from '../data/unavailable.js';
import { paymentsMigrations } from './migrations.js';
import type { Charge, PaymentsStats, Refund } from './types.js';

interface ChargeRow {
  seq: number;
  id: string;
  amount: number;
  currency: string;
  reference: string;
  refunded_amount: number;
  created_at: string;
}

interface RefundRow {
  id: string;
  charge_id: string;
  amount: number;
  currency: string;
  reference: string;
  created_at: string;
}

/** What `refund` did: the refund made, or why none was. */
export type RefundResult =
  | { outcome: 'refunded'; refund: Refund }
  | { outcome: 'no-such-charge' }
  | { outcome: 'exceeds-remaining'; remaining: number };

export interface PaymentsData {
  readonly store: SqliteIdempotencyStore;
  readonly unitOfWork: SqliteUnitOfWork;
  /** One `BEGIN IMMEDIATE` transaction; a lock held elsewhere past its wait is a 503 problem. */
  transaction<T>(work: (tx: SqliteDatabase) => Promise<T>): Promise<T>;
  insertCharge(tx: SqliteDatabase, charge: Charge): void;
  /** Refunds `amount` of the charge unless that is more than is left to refund on it. */
  refund(tx: SqliteDatabase, draft: Omit<Refund, 'currency'>): RefundResult;
  getCharge(id: string): Charge | undefined;
  getRefund(id: string): Refund | undefined;
  /** Oldest first, optionally only one reference's. */
  listCharges(reference: string | undefined, afterSeq: number, limit: number): Page<Charge>;
  stats(): PaymentsStats;
  close(): Promise<void>;
}

const statements = statementCache((db: SqliteDatabase) => ({
  insertCharge: db.prepare(`
    INSERT INTO payments_charges (id, amount, currency, reference, created_at)
    VALUES (@id, @amount, @currency, @reference, @createdAt)`),
  // One statement decides the bound, so no two refunds can both pass a check made before either.
  takeRefund: db.prepare(`
    UPDATE payments_charges SET refunded_amount = refunded_amount + @amount
    WHERE id = @charge AND refunded_amount + @amount <= amount`),
  insertRefund: db.prepare(`
    INSERT INTO payments_refunds (id, charge_id, amount, reference, created_at)
    VALUES (@id, @charge, @amount, @reference, @createdAt)`),
  chargeById: db.prepare('SELECT * FROM payments_charges WHERE id = ?'),
  refundById: db.prepare(`
    SELECT r.id, r.charge_id, r.amount, c.currency, r.reference, r.created_at
    FROM payments_refunds r JOIN payments_charges c ON c.id = r.charge_id WHERE r.id = ?`),
  chargesAfter: db.prepare('SELECT * FROM payments_charges WHERE seq > ? ORDER BY seq LIMIT ?'),
  chargesByReferenceAfter: db.prepare(
    'SELECT * FROM payments_charges WHERE reference = ? AND seq > ? ORDER BY seq LIMIT ?',
  ),
  stats: db.prepare(`SELECT
    (SELECT count(*) FROM payments_charges) AS charges,
    (SELECT count(*) FROM payments_refunds) AS refunds,
    (SELECT coalesce(sum(amount), 0) FROM payments_charges) AS chargedAmount,
    (SELECT coalesce(sum(amount), 0) FROM payments_refunds) AS refundedAmount`),
}));

export function openPaymentsData(path: string): PaymentsData {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const unitOfWork = createSqliteUnitOfWork(path).register(...paymentsMigrations);
  // The store registers its own migrations; one migrate() then applies every part's.
  const store = new SqliteIdempotencyStore({ database: unitOfWork });
  unitOfWork.migrate();
  const { db } = unitOfWork;
  return {
    store,
    unitOfWork,
    async transaction(work) {
      try {
        return await unitOfWork.transaction(work);
      } catch (error) {
        throw asUnavailable(error);
      }
    },
    insertCharge(tx, charge) {
      statements(tx).insertCharge.run(charge);
    },
    refund(tx, draft) {
      const sql = statements(tx);
      const taken = sql.takeRefund.run({ charge: draft.charge, amount: draft.amount });
      const charge = sql.chargeById.get(draft.charge) as ChargeRow | undefined;
      if (charge === undefined) return { outcome: 'no-such-charge' };
      if (taken.changes === 0) {
        return { outcome: 'exceeds-remaining', remaining: charge.amount - charge.refunded_amount };
      }
      sql.insertRefund.run(draft);
      return { outcome: 'refunded', refund: { ...draft, currency: charge.currency } };
    },
    getCharge(id) {
      const row = statements(db).chargeById.get(id) as ChargeRow | undefined;
      return row && toCharge(row);
    },
    getRefund(id) {
      const row = statements(db).refundById.get(id) as RefundRow | undefined;
      return row && toRefund(row);
    },
    listCharges(reference, afterSeq, limit) {
      const sql = statements(db);
      const rows = (
        reference === undefined
          ? sql.chargesAfter.all(afterSeq, limit + 1)
          : sql.chargesByReferenceAfter.all(reference, afterSeq, limit + 1)
      ) as ChargeRow[];
      return toPage(rows, limit, toCharge, (row) => row.seq);
    },
    stats() {
      return { ...(statements(db).stats.get() as PaymentsStats) };
    },
    close: () => unitOfWork.close(),
  };
}

function toCharge(row: ChargeRow): Charge {
  return {
    id: row.id,
    amount: row.amount,
    currency: row.currency,
    reference: row.reference,
    status: 'succeeded',
    createdAt: row.created_at,
  };
}

function toRefund(row: RefundRow): Refund {
  return {
    id: row.id,
    charge: row.charge_id,
    amount: row.amount,
    currency: row.currency,
    reference: row.reference,
    status: 'succeeded',
    createdAt: row.created_at,
  };
}
