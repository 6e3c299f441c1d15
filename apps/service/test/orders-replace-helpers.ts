// For the PUT /orders/{id} tests: the reference service in this process over real HTTP on
// loopback, on a real SQLite file or PostgreSQL database, charging a real payments simulator;
// and a paid order to replace.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildServiceApp } from '../src/app.js';
import { demoKeyRecords } from '../src/auth.js';
import { openPostgresServiceData } from '../src/data/postgres.js';
import { openSqliteServiceData } from '../src/data/sqlite.js';
import type { ServiceData } from '../src/data/types.js';
import type { OrderInput } from '../src/domain/orders.js';
import { createPaymentsClient } from '../src/payments/client.js';
import { type PaymentsSim, startPaymentsSim } from '../src/payments/sim.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { api } from './helpers/service.js';

export type Backend = 'sqlite' | 'postgres';

export interface InProcessService {
  url: string;
  data: ServiceData<unknown>;
  sim: PaymentsSim;
  client: ReturnType<typeof api>;
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** Default 60 s (the completer stays out of the way). */
  completerDelayMs?: number;
  /** Share a simulator (and its charges) instead of starting one. */
  sim?: PaymentsSim;
}

export async function startInProcessService(
  backend: Backend,
  options: InProcessOptions = {},
): Promise<InProcessService> {
  let dir: string | undefined;
  let database: TestDatabase | undefined;
  let data: ServiceData<unknown>;
  if (backend === 'sqlite') {
    dir = mkdtempSync(join(tmpdir(), 'retrysafe-replace-'));
    data = openSqliteServiceData(join(dir, 'service.db')) as ServiceData<unknown>;
  } else {
    database = await createTestDatabase('retrysafe_replace');
    data = (await openPostgresServiceData(database.url)) as ServiceData<unknown>;
  }
  await data.apiKeys.seedDemoKeys(demoKeyRecords());
  const sim = options.sim ?? (await startPaymentsSim());
  const app: FastifyInstance = await buildServiceApp({
    data,
    logger: false,
    testHooks: true,
    payments: createPaymentsClient({ baseUrl: sim.url }),
    completerDelayMs: options.completerDelayMs ?? 60_000,
    jobs: { pollIntervalMs: 100 },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    data,
    sim,
    client: api(url),
    async close() {
      await app.close();
      await data.close();
      if (options.sim === undefined) await sim.close();
      await database?.drop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function items(...prices: Array<[sku: string, quantity: number, unitPriceCents: number]>): OrderInput {
  return {
    items: prices.map(([sku, quantity, unitPriceCents]) => ({ sku, quantity, unitPriceCents })),
    currency: 'EUR',
  };
}

/** Checks out `input` (POST /orders with a key) and returns the paid order with its ETag. */
export async function paidOrder(client: ReturnType<typeof api>, input: OrderInput) {
  const created = await client('/orders', {
    method: 'POST',
    body: input,
    headers: { 'idempotency-key': `replace-test-${Math.random().toString(36).slice(2)}` },
  });
  expect(created.status).toBe(201);
  expect(created.json.payment.status).toBe('paid');
  return { id: created.json.id as string, etag: created.headers.get('etag')! };
}

/** PUT /orders/{id} with If-Match (and any other headers). */
export function put(
  client: ReturnType<typeof api>,
  id: string,
  ifMatch: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return client(`/orders/${id}`, {
    method: 'PUT',
    body,
    headers: { ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }), ...headers },
  });
}
