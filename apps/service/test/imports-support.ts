// Shared by the import tests: service processes on SQLite or PostgreSQL (fresh, or restarted on
// the same database), import inputs with a known set of bad orders, and reads that page through
// everything an import created. Needs `npm run build` first.
import Database from 'better-sqlite3';
import { importedOrderId } from '../src/imports/orders.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api, type StartedService, startService } from './helpers/service.js';

export type Backend = 'sqlite' | 'postgres';
export type Api = ReturnType<typeof api>;

const started: StartedService[] = [];
const databases: TestDatabase[] = [];

/** Stops every service and drops every database the file's tests made. */
export async function cleanUp(): Promise<void> {
  for (const service of started.splice(0).reverse()) await service.stop();
  for (const database of databases.splice(0)) await database.drop();
}

/** A service process on a fresh database, or on `db` (a restart of the same service). */
export async function startOn(backend: Backend, env: Record<string, string> = {}, db?: string) {
  let where: { dbPath: string } | { databaseUrl: string } | object = {};
  if (db !== undefined) where = backend === 'sqlite' ? { dbPath: db } : { databaseUrl: db };
  else if (backend === 'postgres') {
    const database = await createTestDatabase('retrysafe_imports');
    databases.push(database);
    where = { databaseUrl: database.url };
  }
  // Short lease: a restarted process takes over a killed one's job soon.
  const service = await startService({
    env: { JOBS_POLL_INTERVAL_MS: '100', JOBS_LEASE_MS: '1000', ...env },
    ...where,
  });
  started.push(service);
  return service;
}

export { api };

/** Index `i` is bad when `i % 100 < 3` (3%), in one of four ways; the rest are good. */
export function isBad(index: number): boolean {
  return index % 100 < 3;
}

/** A good order, different for each index. */
export function goodOrder(index: number) {
  return {
    items: [{ sku: `sku-${index}`, quantity: 1 + (index % 5), unitPriceCents: 100 + index }],
    currency: 'EUR',
    note: `imported ${index}`,
  };
}

export function importInput(count: number): unknown[] {
  return Array.from({ length: count }, (_, index) => {
    const good = goodOrder(index);
    if (!isBad(index)) return good;
    // The kind of fault changes every hundred orders.
    switch (Math.floor(index / 100) % 4) {
      case 0:
        return { items: good.items };
      case 1:
        return { ...good, items: [{ sku: 'x', quantity: 0, unitPriceCents: 1 }] };
      case 2:
        return 'not an order';
      default:
        return { ...good, colour: 'red' };
    }
  });
}

export function badIndexes(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index).filter(isBad);
}

/** The ids the good orders of import `id` must have, and nothing else. */
export function expectedOrderIds(id: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => index)
    .filter((index) => !isBad(index))
    .map((index) => importedOrderId(id, index))
    .sort();
}

export function postImport(as: Api, body: unknown, key: string, headers: Record<string, string> = {}) {
  return as('/orders/imports', { method: 'POST', body, headers: { 'idempotency-key': key, ...headers } });
}

const terminal = new Set(['succeeded', 'failed', 'canceled']);

/** Long-polls the operation until it ends (bounded: 20 polls of at most 5 s). */
export async function untilTerminal(as: Api, id: string) {
  for (let poll = 0; poll < 20; poll++) {
    const answer = await as(`/operations/${id}`, { headers: { prefer: 'wait=5' } });
    if (answer.status !== 200)
      throw new Error(`GET /operations/${id} answered ${answer.status}: ${answer.text}`);
    if (terminal.has(answer.json.status)) return answer;
  }
  throw new Error(`operation ${id} did not end within 20 polls`);
}

/** Every order id GET /orders?importId= lists, through all its pages. */
export async function listedOrderIds(as: Api, importId: string): Promise<string[]> {
  const ids: string[] = [];
  let path: string | undefined = `/orders?importId=${importId}&limit=100`;
  for (let page = 0; path !== undefined && page < 200; page++) {
    const answer = await as(path);
    if (answer.status !== 200) throw new Error(`GET ${path} answered ${answer.status}`);
    ids.push(...answer.json.data.map((order: { id: string }) => order.id));
    const link = answer.headers.get('link');
    path = link === null ? undefined : /<([^>]+)>/.exec(link)?.[1];
  }
  return ids;
}

/** One number from the database itself, whatever any route shows (`?` placeholders). */
async function storedNumber(backend: Backend, db: string, sql: string, values: string[]): Promise<number> {
  if (backend === 'sqlite') {
    const file = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return Number((file.prepare(sql).get(...values) as { n: number }).n);
    } finally {
      file.close();
    }
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    let position = 0;
    const text = sql.replace(/\?/g, () => `$${++position}`);
    const { rows } = await client.query<{ n: string }>(text, values);
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** Orders of `tenant` in the database itself. */
export function storedOrderCount(backend: Backend, db: string, tenant: string): Promise<number> {
  return storedNumber(backend, db, 'SELECT count(*) AS n FROM orders WHERE tenant = ?', [tenant]);
}

/** Whether import `id`'s stored input was dropped (it is once the import ended), polled briefly. */
export async function inputDropped(backend: Backend, db: string, id: string): Promise<boolean> {
  const sql = 'SELECT count(*) AS n FROM order_imports WHERE id = ? AND input IS NULL';
  for (let poll = 0; poll < 50; poll++) {
    if ((await storedNumber(backend, db, sql, [id])) === 1) return true;
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  return false;
}

/** Resolves once the service logged import `operationId`'s batch `batch` committed (bounded). */
export async function batchCommitted(service: StartedService, operationId: string, batch: number) {
  for (let poll = 0; poll < 500; poll++) {
    const seen = service
      .logRecords()
      .some(
        (record) =>
          record.msg === 'test hook: import batch committed' &&
          record.operationId === operationId &&
          Number(record.batch) >= batch,
      );
    if (seen) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the service never committed import batch ${batch}`);
}
