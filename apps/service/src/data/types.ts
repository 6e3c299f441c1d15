// What the reference service needs from persistence. One interface, one implementation per
// database, so routes never know whether they run on SQLite or PostgreSQL.
import type { IdempotencyStore } from 'retrysafe';
import type { JobQueue } from 'retrysafe/effects';
import type { OperationStore } from 'retrysafe/operations';
import type { StoredOrder } from '../domain/orders.js';
import type { StoredUser } from '../domain/users.js';
import type { ImportRepository } from '../imports/types.js';

export type Role = 'writer' | 'reader';

export interface ApiKeyRecord {
  keyHash: string;
  tenant: string;
  role: Role;
  label: string;
}

export interface Page<T> {
  items: T[];
  /** Sequence number to continue after, or undefined on the last page. */
  nextAfterSeq: number | undefined;
}

/** One page from `limit + 1` rows ordered by sequence: the extra row only says there is more. */
export function toPage<Row, T>(
  rows: Row[],
  limit: number,
  map: (row: Row) => T,
  seqOf: (row: Row) => number,
): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(map),
    nextAfterSeq: rows.length > limit && last !== undefined ? seqOf(last) : undefined,
  };
}

export type InsertUserResult =
  | { ok: true }
  | { ok: false; reason: 'id-taken' }
  | { ok: false; reason: 'username-taken'; existingId: string };
export type ChangeUserResult =
  | { ok: true }
  | { ok: false; reason: 'stale' }
  | { ok: false; reason: 'username-taken'; existingId: string };

export interface UserRepository<Tx> {
  get(tenant: string, id: string): Promise<StoredUser | undefined>;
  list(tenant: string, afterSeq: number, limit: number): Promise<Page<StoredUser>>;
  insert(tx: Tx, user: StoredUser): Promise<InsertUserResult>;
  /** Replaces the row only while its ETag is still `expectedEtag` (compare-and-set). */
  replace(tx: Tx, user: StoredUser, expectedEtag: string): Promise<ChangeUserResult>;
  /** Deletes the row only while its ETag is still `expectedEtag`. */
  delete(tx: Tx, tenant: string, id: string, expectedEtag: string): Promise<boolean>;
}

export interface OrderRepository<Tx> {
  get(tenant: string, id: string): Promise<StoredOrder | undefined>;
  list(tenant: string, afterSeq: number, limit: number): Promise<Page<StoredOrder>>;
  /**
   * Inserts the order unless this tenant already has one with its id, and returns the stored
   * row. With idempotency records in Redis the id is the record's, so a re-execution after a
   * lease takeover finds the first run's order (see OrderRouteOptions).
   */
  insertOnce(tx: Tx, order: StoredOrder): Promise<StoredOrder>;
  count(tenant: string): Promise<number>;
  /** Reads the order inside `tx` (what this transaction will change). */
  getIn(tx: Tx, tenant: string, id: string): Promise<StoredOrder | undefined>;
  /**
   * Writes every changeable field only while the row's ETag is still `expectedEtag`
   * (compare-and-set: every change of an order changes its ETag, payment included).
   */
  update(tx: Tx, order: StoredOrder, expectedEtag: string): Promise<boolean>;
  /** Starts the order's shipment; false when it had one already (nothing written). */
  startShipment(tx: Tx, tenant: string, orderId: string, at: string): Promise<boolean>;
  /** Records a payment the provider made, once per key (a repeat is a no-op). */
  recordPayment(tx: Tx, payment: OrderPayment): Promise<void>;
  payments(tenant: string, orderId: string): Promise<OrderPayment[]>;
  /** The order's payments read inside `tx`, oldest first (what a replacement refunds from). */
  paymentsIn(tx: Tx, tenant: string, orderId: string): Promise<OrderPayment[]>;
}

/** A charge or refund the payment provider made for an order, under its idempotency key. */
export interface OrderPayment {
  key: string;
  tenant: string;
  orderId: string;
  kind: 'charge' | 'refund';
  providerId: string;
  amountCents: number;
  /** A refund's charge (the provider's id); null for a charge. */
  refundsCharge: string | null;
  createdAt: string;
}

export interface ApiKeyRepository {
  find(keyHash: string): Promise<ApiKeyRecord | undefined>;
  /** Adds a key; the first real key removes the demo keys. */
  add(key: ApiKeyRecord): Promise<void>;
  /** Seeds the demo keys when no key exists at all. Returns whether it did. */
  seedDemoKeys(keys: ApiKeyRecord[]): Promise<boolean>;
}

export interface ServiceData<Tx> {
  /** Idempotency records; shares the business database's transactions where it can. */
  store: IdempotencyStore<Tx>;
  /** The outbox: jobs and events written in the business transaction, run by the job runner. */
  jobs: JobQueue<Tx>;
  /** Runs writes in one transaction of the business database. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** 202 operations (bulk imports): each row and its job commit in the request's transaction. */
  operations: OperationStore<Tx>;
  users: UserRepository<Tx>;
  orders: OrderRepository<Tx>;
  /** Bulk imports of orders: their input, batches' results and the orders they created. */
  imports: ImportRepository<Tx>;
  apiKeys: ApiKeyRepository;
  /** A cheap round trip, for /healthz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
