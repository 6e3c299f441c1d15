// README examples, the part the three payment apps share: the table, the account check (the
// key's scope) and the body check, the same whichever framework serves them.
import { BadRequestError, NotFoundError, ValidationError } from 'retrysafe/http';
import { createSqliteStore, type SqliteDatabase, type SqliteIdempotencyStore } from 'retrysafe/stores/sqlite';

export interface Payment {
  id: string;
  cents: number;
}

/** The idempotency records and the payments in one SQLite database (a path, or ':memory:'). */
export function openPaymentsStore(database = ':memory:'): SqliteIdempotencyStore {
  const store = createSqliteStore({ database });
  store.db.exec(`CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, cents INTEGER NOT NULL, seq INTEGER NOT NULL)`);
  return store;
}

/** The caller's account: the idempotency key's scope, so it may never be missing. */
export function accountOf(header: string | undefined): string {
  const account = header?.trim();
  if (!account)
    throw new BadRequestError('Send your account id in the X-Account-Id header.', 'account-missing');
  return account;
}

/** `{ "cents": integer ≥ 1 }`, or a 422 that points at what to fix. */
export function paymentInput(body: unknown): { cents: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError([{ pointer: '', detail: 'must be an object like {"cents": 500}' }]);
  }
  const { cents } = body as { cents?: unknown };
  if (typeof cents !== 'number' || !Number.isSafeInteger(cents) || cents < 1) {
    throw new ValidationError([{ pointer: '/cents', detail: 'must be a whole number of cents, at least 1' }]);
  }
  return { cents };
}

/** Inserts the payment on the transaction it is given and answers 201 with its Location. */
export function insertPayment(db: SqliteDatabase, account: string, payment: Payment) {
  db.prepare(
    'INSERT INTO payments (id, account, cents, seq) VALUES (?, ?, ?, (SELECT count(*) FROM payments))',
  ).run(payment.id, account, payment.cents);
  return { status: 201, headers: { location: `/payments/${payment.id}` }, body: payment };
}

export function findPayment(db: SqliteDatabase, account: string, id: string): Payment {
  const payment = db
    .prepare('SELECT id, cents FROM payments WHERE account = ? AND id = ?')
    .get(account, id) as Payment | undefined;
  // Another account's payment is as absent as one that never existed.
  if (payment === undefined) throw new NotFoundError(`No payment ${id} in this account.`);
  return payment;
}

export function listPayments(db: SqliteDatabase, account: string): { items: Payment[] } {
  const items = db
    .prepare('SELECT id, cents FROM payments WHERE account = ? ORDER BY seq')
    .all(account) as Payment[];
  return { items };
}

/** What `startPayments` of each example returns. */
export interface RunningPayments {
  url: string;
  close(): Promise<void>;
}
