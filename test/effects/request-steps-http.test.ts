// Steps through each framework adapter over real HTTP on loopback, on a SQLite store: Fastify's
// `request.idempotency.step/call`, and the Express and Hono handler contexts (which inherit them
// from the lifecycle's). The charge fails once: 503, then the retry with the same key resumes,
// charges with the same derived key, answers 201, and a third request replays it.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createExpressIdempotency } from '../../src/adapters/express.js';
import { idempotency } from '../../src/adapters/fastify.js';
import { createHonoIdempotency } from '../../src/adapters/hono.js';
import type { StepCall } from '../../src/effects/steps.js';
import type { ResponseDraft } from '../../src/idempotency/response.js';
import {
  createSqliteStore,
  type SqliteDatabase,
  type SqliteIdempotencyStore,
} from '../../src/stores/sqlite.js';
import { type ChargeProvider, charge, startChargeProvider } from './fixtures/steps-provider.js';

/** What the checkout needs of a handler's context, in every framework. */
interface CheckoutContext {
  idFor(name: string): string;
  step<T>(name: string, work: (db: SqliteDatabase) => T | Promise<T>): Promise<T>;
  call<T>(name: string, work: (call: StepCall) => T | Promise<T>): Promise<T>;
  commit(work: (db: SqliteDatabase) => ResponseDraft): Promise<unknown>;
}

interface Running {
  url: string;
  close(): Promise<void>;
}

type AppFactory = (
  store: SqliteIdempotencyStore,
  checkout: (ctx: CheckoutContext) => Promise<unknown>,
) => Promise<Running>;

const adapters: Record<string, AppFactory> = {
  fastify: async (store, checkout) => {
    const app = Fastify();
    await app.register(idempotency<SqliteDatabase>, { store, scope: () => 'tenant-1' });
    app.post('/checkouts', { config: { idempotency: 'required' } }, async (request, reply) => {
      const state = request.idempotency!;
      await checkout({
        idFor: (name) => state.idFor(name),
        step: (name, work) => state.step(name, work),
        call: (name, work) => state.call(name, work),
        commit: (work) => reply.idempotent(work),
      });
      return reply;
    });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    return { url: address, close: () => app.close() };
  },
  express: async (store, checkout) => {
    const app = express();
    const retrysafe = createExpressIdempotency<SqliteDatabase>({
      store,
      scope: () => 'tenant-1',
      // The failed charge is answered as a 503 on purpose: nothing to log.
      onError: () => {},
    });
    app.post(
      '/checkouts',
      retrysafe.route('required', (ctx) => checkout(ctx) as never),
    );
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  hono: async (store, checkout) => {
    const app = new Hono();
    const retrysafe = createHonoIdempotency<SqliteDatabase>({
      store,
      scope: () => 'tenant-1',
      // The failed charge is answered as a 503 on purpose: nothing to log.
      onError: () => {},
    });
    app.post(
      '/checkouts',
      retrysafe.route('required', (ctx) => checkout(ctx) as never),
    );
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
    });
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
};

let dir: string;
let provider: ChargeProvider;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'retrysafe-steps-http-'));
  provider = await startChargeProvider();
});

afterAll(async () => {
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const [framework, start] of Object.entries(adapters)) {
  describe(`steps over HTTP: ${framework}`, () => {
    let store: SqliteIdempotencyStore;
    let running: Running;
    let orderRuns: number;

    beforeEach(async () => {
      store = createSqliteStore({ database: join(dir, `${framework}.db`) });
      store.db.exec(
        'CREATE TABLE orders (id TEXT NOT NULL); CREATE TABLE payments (charge_id TEXT NOT NULL);',
      );
      orderRuns = 0;
      provider.failNext(0);
      running = await start(store, async (ctx) => {
        const orderId = ctx.idFor('order');
        await ctx.step('order', (db) => {
          orderRuns++;
          db.prepare('INSERT INTO orders (id) VALUES (?)').run(orderId);
        });
        const payment = await ctx.call('charge', ({ key }) => charge(provider.url, key, 900));
        await ctx.step('paid', (db) => {
          db.prepare('INSERT INTO payments (charge_id) VALUES (?)').run(payment.chargeId);
        });
        return ctx.commit(() => ({
          status: 201,
          headers: { location: `/orders/${orderId}` },
          body: { orderId, chargeId: payment.chargeId },
        }));
      });
    });

    afterEach(async () => {
      await running.close();
      await store.close();
    });

    const post = (key: string) =>
      fetch(`${running.url}/checkouts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: '{"cents":900}',
      });
    const rows = (table: string) =>
      (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

    it('answers 503 when the charge fails, then resumes on the retry with the same key and replays after', async () => {
      const keysBefore = provider.keys.length;
      provider.failNext(1);
      const first = await post(`${framework}-checkout-1`);
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBe('1');
      expect(first.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      await first.arrayBuffer();

      const retry = await post(`${framework}-checkout-1`);
      expect(retry.status).toBe(201);
      const body = (await retry.json()) as { orderId: string; chargeId: string };
      expect(retry.headers.get('location')).toBe(`/orders/${body.orderId}`);
      expect(orderRuns).toBe(1);
      expect(rows('orders')).toBe(1);
      expect(rows('payments')).toBe(1);
      const { record_id: recordId } = store.db
        .prepare('SELECT record_id FROM retrysafe_idempotency')
        .get() as {
        record_id: string;
      };
      expect(provider.keys.slice(keysBefore)).toEqual([`${recordId}:charge`, `${recordId}:charge`]);

      const replay = await post(`${framework}-checkout-1`);
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(await replay.json()).toEqual(body);
      expect(provider.keys.length).toBe(keysBefore + 2);
      expect(orderRuns).toBe(1);
    });
  });
}
