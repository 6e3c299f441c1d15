// The two databases a checkout proof runs on — a SQLite file in a temporary directory and a
// private PostgreSQL database, dropped afterwards — and what the proofs read back from them:
// the rows of one order (found by its unique note), its shipment, payments and outbox events.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createTestDatabase } from '../helpers/postgres.js';

export type BackendName = 'sqlite' | 'postgres';
export const backendNames: BackendName[] = ['sqlite', 'postgres'];

export interface OrderRow {
  id: string;
  status: string;
  paidCents: number;
  chargeId: string | null;
  chargeKey: string | null;
}

export interface JobRow {
  id: string;
  state: string;
  attempts: number;
  payload: Record<string, unknown>;
}

/** What the checkout left in the database for one order. */
export interface CheckoutRows {
  orders: OrderRow[];
  shipments: number;
  payments: { kind: string; providerId: string; amountCents: number }[];
  /** Rows of topic `order.paid` whose payload names the order. */
  paidEvents: JobRow[];
  /** Rows of topic `checkout.complete` whose payload names the order. */
  completers: JobRow[];
}

export interface Backend {
  name: BackendName;
  /** How the service is started on it: `{ dbPath }` or `{ databaseUrl }` for `startService`. */
  serviceDatabase: { dbPath: string } | { databaseUrl: string };
  /** The rows of the order whose note is `note` (every order a proof places has its own note). */
  rowsOf(note: string): Promise<CheckoutRows>;
  /** Every `order.paid` row, oldest first. */
  allPaidEvents(): Promise<JobRow[]>;
  /** An SQL statement of the proof's own (both dialects take `$1`-free text here). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

interface Dialect {
  query<T>(sql: string, params: unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
  /** `payload ->> 'orderId'` in the dialect. */
  orderIdOfPayload: string;
  param(n: number): string;
  parse(payload: unknown): Record<string, unknown>;
}

function backendOver(name: BackendName, serviceDatabase: Backend['serviceDatabase'], dialect: Dialect) {
  const jobsOf = async (topic: string, orderId: string): Promise<JobRow[]> => {
    const rows = await dialect.query<{ id: string; state: string; attempts: number; payload: unknown }>(
      `SELECT id, state, attempts, payload FROM retrysafe_jobs
       WHERE topic = ${dialect.param(1)} AND ${dialect.orderIdOfPayload} = ${dialect.param(2)}`,
      [topic, orderId],
    );
    return rows.map((row) => ({
      ...row,
      attempts: Number(row.attempts),
      payload: dialect.parse(row.payload),
    }));
  };
  return {
    name,
    serviceDatabase,
    async rowsOf(note: string): Promise<CheckoutRows> {
      const orders = (
        await dialect.query<{
          id: string;
          status: string;
          paid_cents: number;
          charge_id: string | null;
          charge_key: string | null;
        }>(
          `SELECT id, status, paid_cents, charge_id, charge_key FROM orders WHERE note = ${dialect.param(1)}`,
          [note],
        )
      ).map((row) => ({
        id: row.id,
        status: row.status,
        paidCents: Number(row.paid_cents),
        chargeId: row.charge_id,
        chargeKey: row.charge_key,
      }));
      const ids = orders.map((order) => order.id);
      let shipments = 0;
      const payments: CheckoutRows['payments'] = [];
      const paidEvents: JobRow[] = [];
      const completers: JobRow[] = [];
      for (const id of ids) {
        const [count] = await dialect.query<{ n: number }>(
          `SELECT count(*) AS n FROM shipments WHERE order_id = ${dialect.param(1)}`,
          [id],
        );
        shipments += Number(count?.n ?? 0);
        const rows = await dialect.query<{ kind: string; provider_id: string; amount_cents: number }>(
          `SELECT kind, provider_id, amount_cents FROM order_payments WHERE order_id = ${dialect.param(1)}`,
          [id],
        );
        payments.push(
          ...rows.map((row) => ({
            kind: row.kind,
            providerId: row.provider_id,
            amountCents: Number(row.amount_cents),
          })),
        );
        paidEvents.push(...(await jobsOf('order.paid', id)));
        completers.push(...(await jobsOf('checkout.complete', id)));
      }
      return { orders, shipments, payments, paidEvents, completers };
    },
    async allPaidEvents(): Promise<JobRow[]> {
      const rows = await dialect.query<{ id: string; state: string; attempts: number; payload: unknown }>(
        `SELECT id, state, attempts, payload FROM retrysafe_jobs WHERE topic = 'order.paid' ORDER BY created_at_ms, id`,
        [],
      );
      return rows.map((row) => ({
        ...row,
        attempts: Number(row.attempts),
        payload: dialect.parse(row.payload),
      }));
    },
    exec: (sql: string) => dialect.exec(sql),
  };
}

/** SQLite: the service's file in `dir`, read through a connection of the test's own. */
function sqliteBackend(dir: string): Backend {
  const dbPath = join(dir, 'service.db');
  let db: Database.Database | undefined;
  // Opened on first use: the service creates the file (and its schema) when it starts.
  const open = () => {
    db ??= new Database(dbPath, { fileMustExist: true, timeout: 5_000 });
    return db;
  };
  return {
    ...backendOver(
      'sqlite',
      { dbPath },
      {
        query: async <T>(sql: string, params: unknown[]) =>
          open()
            .prepare(sql)
            .all(...params) as T[],
        exec: async (sql) => {
          open().exec(sql);
        },
        orderIdOfPayload: "json_extract(payload, '$.orderId')",
        param: () => '?',
        parse: (payload) => JSON.parse(String(payload)) as Record<string, unknown>,
      },
    ),
    async close() {
      db?.close();
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const database = await createTestDatabase('retrysafe_checkout');
  return {
    ...backendOver(
      'postgres',
      { databaseUrl: database.url },
      {
        query: async <T>(sql: string, params: unknown[]) =>
          (await database.pool.query(sql, params)).rows as T[],
        exec: async (sql) => {
          await database.pool.query(sql);
        },
        orderIdOfPayload: "payload ->> 'orderId'",
        param: (n) => `$${n}`,
        parse: (payload) => payload as Record<string, unknown>,
      },
    ),
    close: () => database.drop(),
  };
}

/** A fresh database of `name`; SQLite's file lives in `dir` (the caller removes it). */
export function openBackend(name: BackendName, dir: string): Promise<Backend> {
  return name === 'sqlite' ? Promise.resolve(sqliteBackend(dir)) : postgresBackend();
}
