// Steps inside keyed requests, through the request lifecycle over every store: a checkout of
// three steps (`order`, `call('charge')`, `paid`) against a payment provider on loopback that
// fails when told to. A failed request resumes at its first unfinished step on the retry with
// the same key; finished steps never run again; the charge keeps one derived key throughout.
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CallInsideStepError, StepNameRepeatedError } from '../../src/effects/steps.js';
import { ValidationError } from '../../src/http/problem.js';
import { IdempotencyLeaseLostError } from '../../src/idempotency/errors.js';
import {
  createLifecycle,
  type HandledResponse,
  type NeutralRequest,
  type RequestContext,
  type RequestHandler,
  type RequestLifecycle,
} from '../../src/idempotency/lifecycle.js';
import type { RecordData } from '../../src/idempotency/store.js';
import { backendKinds, type StepsBackend } from './fixtures/steps-backends.js';
import { type ChargeProvider, charge, startChargeProvider } from './fixtures/steps-provider.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const leaseMs = 1_000;

function checkoutRequest(key: string | undefined): NeutralRequest {
  return {
    method: 'POST',
    route: '/checkouts',
    path: '/checkouts',
    headers: {
      'content-type': 'application/json',
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
    body: encoder.encode('{"cents":500}'),
    scope: 'tenant-1',
  };
}

function json(handled: HandledResponse): Record<string, unknown> {
  return JSON.parse(decoder.decode(handled.response.body)) as Record<string, unknown>;
}

interface Runs {
  order: number;
  paid: number;
}

let provider: ChargeProvider;

beforeAll(async () => {
  provider = await startChargeProvider();
});

afterAll(async () => {
  await provider.close();
});

for (const kind of backendKinds) {
  describe(`steps inside a request: ${kind.name}`, () => {
    let backend: StepsBackend;
    let lifecycle: RequestLifecycle<unknown>;
    let clockMs: number;
    let runs: Runs;

    beforeAll(() => kind.setup());
    afterAll(() => kind.teardown());

    beforeEach(async () => {
      backend = await kind.create();
      clockMs = Date.now();
      runs = { order: 0, paid: 0 };
      provider.failNext(0);
      lifecycle = createLifecycle<unknown>({
        store: backend.store,
        ...(backend.transaction === undefined ? {} : { transaction: backend.transaction }),
        leaseMs,
        retentionMs: 60_000,
        now: () => clockMs,
      });
    });

    afterEach(() => backend.close());

    /** The checkout: `beforePaid` lets a test hold a run between the charge and the last step. */
    function checkout(beforePaid?: () => Promise<void>): RequestHandler<unknown> {
      return async (ctx) => {
        const order = await placeOrder(ctx);
        const payment = await ctx.call('charge', ({ key }) => charge(provider.url, key, 500));
        await beforePaid?.();
        await ctx.step('paid', async (tx) => {
          runs.paid++;
          await backend.insert(tx, 'payments', payment.chargeId);
        });
        return ctx.commit(() => ({ status: 201, body: { order, payment } }));
      };
    }

    function placeOrder(ctx: RequestContext<unknown>) {
      return ctx.step('order', async (tx) => {
        runs.order++;
        await backend.insert(tx, 'orders', ctx.idFor('order'));
        return { orderId: ctx.idFor('order'), placedAt: new Date(0) };
      });
    }

    /**
     * The record's data part as stored. A claim never changes a completed record that is still
     * retained: it reports it, which makes it a read that works on every store.
     */
    async function storedData(key: string): Promise<RecordData> {
      const result = await backend.store.claim({
        scopeKey: lifecycle.engine.scopeKey({ scope: 'tenant-1', method: 'POST', route: '/checkouts', key }),
        fingerprint: 'read-only',
        token: randomUUID(),
        recordId: randomUUID(),
        nowMs: clockMs,
        leaseExpiresAtMs: clockMs + leaseMs,
        expiresAtMs: clockMs + 60_000,
      });
      if (result.claimed || result.record === undefined) throw new Error('expected a stored record');
      expect(result.record.state).toBe('completed');
      return result.record.data;
    }

    it('resumes at the first unfinished step: the failed charge is a 503, the retry runs order zero more times and charges with the same derived key', async () => {
      const key = randomUUID();
      provider.failNext(1);
      const first = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, checkout());
      expect(first.response.status).toBe(503);
      expect(first.response.headers['retry-after']).toBe('1');
      const recordId = first.recordId!;
      expect(provider.keys).toContain(`${recordId}:charge`);
      expect(await backend.count('orders')).toBe(1);

      const keysBefore = provider.keys.length;
      const retry = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, checkout());
      expect(retry.response.status).toBe(201);
      expect(retry.outcome).toBe('executed');
      expect(retry.recordId).toBe(recordId);
      expect(runs.order).toBe(1);
      expect(await backend.count('orders')).toBe(1);
      // Both attempts sent the same derived key; the provider charged once.
      expect(provider.keys.slice(keysBefore - 1)).toEqual([`${recordId}:charge`, `${recordId}:charge`]);
      expect(provider.charges.get(`${recordId}:charge`)).toBeDefined();
      expect(runs.paid).toBe(1);
      expect(await backend.count('payments')).toBe(1);
      const body = json(retry);
      expect(body.order).toEqual({ orderId: expect.any(String), placedAt: '1970-01-01T00:00:00.000Z' });

      // The stored answer kept the data part: every step's checkpoint is still in the record.
      const data = await storedData(key);
      expect(Object.keys(data.steps as object).sort()).toEqual(['charge', 'order', 'paid']);

      // Replays answer the stored answer and run no step.
      const keysAfter = provider.keys.length;
      const replay = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, () => {
        throw new Error('a replay must not run the handler');
      });
      expect(replay.outcome).toBe('replayed');
      expect(replay.response.headers['idempotent-replayed']).toBe('true');
      expect(json(replay)).toEqual(body);
      expect(provider.keys.length).toBe(keysAfter);
      expect(runs).toEqual({ order: 1, paid: 1 });
    });

    it("answers a finished step's saved result in its JSON form without running it again", async () => {
      const key = randomUUID();
      const seen: unknown[] = [];
      const handler: RequestHandler<unknown> = async (ctx) => {
        seen.push(await placeOrder(ctx));
        throw new Error('the process fell over after the first step');
      };
      const first = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, handler);
      expect(first.response.status).toBe(500);
      const second = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, handler);
      expect(second.response.status).toBe(500);
      expect(runs.order).toBe(1);
      // The same value on the first run as on the resumed one: the Date is its JSON string both times.
      expect(seen[0]).toEqual({ orderId: expect.any(String), placedAt: '1970-01-01T00:00:00.000Z' });
      expect(seen[1]).toEqual(seen[0]);
      // A step committed, so the 500 must not claim that nothing was saved.
      expect(json(second).detail).toMatch(/may have been saved/);
    });

    it('refuses a repeated step name with StepNameRepeatedError', async () => {
      const first = await lifecycle.handle(
        checkoutRequest(randomUUID()),
        { mode: 'required' },
        async (ctx) => {
          await placeOrder(ctx);
          await placeOrder(ctx);
          return { status: 201 };
        },
      );
      expect(first.response.status).toBe(500);
      expect(first.error).toBeInstanceOf(StepNameRepeatedError);
      expect(runs.order).toBe(1);
      expect(await backend.count('orders')).toBe(1);
    });

    it('refuses a call inside a step with CallInsideStepError: nothing is called and the step rolls back', async () => {
      const keysBefore = provider.keys.length;
      const first = await lifecycle.handle(
        checkoutRequest(randomUUID()),
        { mode: 'required' },
        async (ctx) => {
          await ctx.step('order', async (tx) => {
            await backend.insert(tx, 'orders', ctx.idFor('order'));
            return ctx.call('charge', ({ key }) => charge(provider.url, key, 500));
          });
          return { status: 201 };
        },
      );
      expect(first.response.status).toBe(500);
      expect(first.error).toBeInstanceOf(CallInsideStepError);
      expect(provider.keys.length).toBe(keysBefore);
      expect(await backend.count('orders')).toBe(backend.rollsBackWrites ? 0 : 1);
    });

    it("cannot commit the step of a run whose lease was taken over; the new run resumes after the old run's steps", async () => {
      const key = randomUUID();
      let reachedPaid!: () => void;
      const atPaid = new Promise<void>((resolve) => {
        reachedPaid = resolve;
      });
      let letGo!: () => void;
      const held = new Promise<void>((resolve) => {
        letGo = resolve;
      });
      const slow = lifecycle.handle(
        checkoutRequest(key),
        { mode: 'required' },
        checkout(async () => {
          reachedPaid();
          await held;
        }),
      );
      await atPaid;
      const keysBefore = provider.keys.length;

      clockMs += leaseMs + 1; // the slow run's lease ran out
      const takeover = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, checkout());
      expect(takeover.response.status).toBe(201);
      // The takeover resumed: the slow run's order and charge were not made again.
      expect(runs.order).toBe(1);
      expect(provider.keys.length).toBe(keysBefore);
      expect(await backend.count('payments')).toBe(1);

      letGo();
      const old = await slow;
      expect(old.recordId).toBe(takeover.recordId);
      expect(old.response.status).toBe(409);
      expect(old.error).toBeInstanceOf(IdempotencyLeaseLostError);
      expect(runs.paid).toBe(2);
      if (kind.sharesTransaction) {
        // Records in the business transaction: the old run's fenced checkpoint matched nothing,
        // so its step's writes rolled back with it.
        expect((old.error as IdempotencyLeaseLostError).writes).toBe('rolled-back');
        expect(await backend.count('payments')).toBe(1);
      } else {
        // Records elsewhere: the step committed before its checkpoint failed (at least once per
        // lease), which is why such writes must be keyed on `idFor`.
        expect((old.error as IdempotencyLeaseLostError).writes).toBe('may-be-kept');
        expect(await backend.count('payments')).toBe(2);
      }
      const replay = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, () => {
        throw new Error('a replay must not run the handler');
      });
      expect(replay.outcome).toBe('replayed');
      expect(json(replay)).toEqual(json(takeover));
    });

    it('stores a 4xx thrown after the charge: the charge stays once under its derived key, and the replay calls nothing', async () => {
      const key = randomUUID();
      const refuseAfterCharge: RequestHandler<unknown> = async (ctx) => {
        await placeOrder(ctx);
        await ctx.call('charge', ({ key: chargeKey }) => charge(provider.url, chargeKey, 500));
        throw new ValidationError([{ pointer: '/cents', detail: 'over the daily limit' }]);
      };
      const first = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, refuseAfterCharge);
      expect(first.response.status).toBe(422);
      const chargeKey = `${first.recordId}:charge`;
      expect(provider.charges.has(chargeKey)).toBe(true);
      const keysBefore = provider.keys.length;

      const replay = await lifecycle.handle(checkoutRequest(key), { mode: 'required' }, refuseAfterCharge);
      expect(replay.outcome).toBe('replayed');
      expect(replay.response.status).toBe(422);
      expect(provider.keys.length).toBe(keysBefore);
      // The record says what was done before the refusal: the charge and its result.
      const data = await storedData(key);
      expect((data.steps as Record<string, { result: unknown }>).charge?.result).toEqual(
        provider.charges.get(chargeKey),
      );
    });

    it('without a key: each step runs in a transaction with no checkpoint, and call gets a fresh key per request', async () => {
      const keysBefore = provider.keys.length;
      for (let attempt = 0; attempt < 2; attempt++) {
        const handled = await lifecycle.handle(checkoutRequest(undefined), { mode: 'optional' }, checkout());
        expect(handled.outcome).toBe('unkeyed');
        expect(handled.response.status).toBe(201);
      }
      const keys = provider.keys.slice(keysBefore);
      expect(keys).toHaveLength(2);
      for (const sent of keys) expect(sent).toMatch(/^[0-9a-f-]{36}:charge$/);
      expect(keys[0]).not.toBe(keys[1]);
      expect(runs).toEqual({ order: 2, paid: 2 });
      expect(await backend.count('orders')).toBe(2);

      // A step that throws rolls back its own writes, keyless too.
      const failed = await lifecycle.handle(checkoutRequest(undefined), { mode: 'off' }, async (ctx) => {
        await ctx.step('order', async (tx) => {
          await backend.insert(tx, 'orders', 'never');
          throw new Error('the step failed');
        });
        return { status: 201 };
      });
      expect(failed.response.status).toBe(500);
      expect(await backend.count('orders')).toBe(backend.rollsBackWrites ? 2 : 3);
    });
  });
}
