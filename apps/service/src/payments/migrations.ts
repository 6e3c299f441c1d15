// The simulator's SQLite schema, registered in the same unit of work as the idempotency store's,
// so a charge row and the stored 201 that answers it commit in one transaction.
import type { SqliteMigration } from 'retrysafe/stores/sqlite';

export const paymentsMigrations: SqliteMigration[] = [
  {
    part: 'payments-sim.charges',
    version: 1,
    name: 'create payments_charges',
    // refunded_amount is kept on the charge so the refund bound is checked on one row, inside
    // the refund's own transaction; the CHECK is the last line of defence if a check is missed.
    up: `CREATE TABLE payments_charges (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      amount INTEGER NOT NULL CHECK (amount > 0),
      currency TEXT NOT NULL,
      reference TEXT NOT NULL,
      refunded_amount INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount BETWEEN 0 AND amount),
      created_at TEXT NOT NULL
    );
    CREATE INDEX payments_charges_by_reference ON payments_charges (reference, seq)`,
  },
  {
    part: 'payments-sim.refunds',
    version: 1,
    name: 'create payments_refunds',
    up: `CREATE TABLE payments_refunds (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      charge_id TEXT NOT NULL REFERENCES payments_charges (id),
      amount INTEGER NOT NULL CHECK (amount > 0),
      reference TEXT NOT NULL,
      created_at TEXT NOT NULL
    )`,
  },
];
