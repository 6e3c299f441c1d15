// The payment provider simulator over real HTTP on loopback with a real SQLite file: a charge
// retried with its key replays instead of charging twice, bad input charges nothing, refunds
// never exceed what was charged, and every fault leaves a charge made once or not at all.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type PaymentsSim, type PaymentsSimOptions, startPaymentsSim } from '../../src/payments/index.js';
import { isProblem, send } from './http.js';

const running: PaymentsSim[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const sim of running.splice(0)) await sim.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(options: PaymentsSimOptions = {}): Promise<PaymentsSim> {
  const sim = await startPaymentsSim(options);
  running.push(sim);
  return sim;
}

const charge = (reference = `order-${randomUUID()}`) => ({ amount: 4_999, currency: 'EUR', reference });

describe('POST /charges', () => {
  it('charges once per key: the second request replays the first answer and charges nothing', async () => {
    const sim = await start();
    const key = randomUUID();
    const body = charge();
    const first = await send(sim.url, '/charges', { body, key });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ ...body, status: 'succeeded' });
    expect(first.json.id).toMatch(/^ch_/);
    expect(first.headers.get('location')).toBe(`/charges/${first.json.id}`);
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const second = await send(sim.url, '/charges', { body, key });
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.text).toBe(first.text);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(sim.stats()).toEqual({ charges: 1, refunds: 0, chargedAmount: 4_999, refundedAmount: 0 });

    const read = await send(sim.url, first.headers.get('location')!);
    expect(read.status).toBe(200);
    expect(read.json).toEqual(first.json);
    const listed = await send(sim.url, `/charges?reference=${encodeURIComponent(body.reference)}`);
    expect(listed.json).toEqual({ data: [first.json], nextCursor: null });
    expect((await send(sim.url, '/stats')).json).toEqual(sim.stats());
  });

  it('refuses the same key with a different body (422 idempotency-key-reuse) and charges nothing more', async () => {
    const sim = await start();
    const key = randomUUID();
    expect((await send(sim.url, '/charges', { body: charge('a'), key })).status).toBe(201);
    const reuse = await send(sim.url, '/charges', { body: { ...charge('a'), amount: 5_000 }, key });
    expect(isProblem(reuse, 422)).toBe(true);
    expect(reuse.json.type).toMatch(/idempotency-key-reuse$/);
    expect(sim.stats()).toMatchObject({ charges: 1, chargedAmount: 4_999 });
  });

  it('requires an Idempotency-Key: 400 problem+json that says how to resubmit, nothing charged', async () => {
    const sim = await start();
    const missing = await send(sim.url, '/charges', { body: charge() });
    expect(isProblem(missing, 400)).toBe(true);
    expect(missing.json.type).toMatch(/idempotency-key-missing$/);
    expect(missing.json.detail).toMatch(/Idempotency-Key/);
    const malformed = await send(sim.url, '/charges', { body: charge(), key: 'a,b' });
    expect(isProblem(malformed, 400)).toBe(true);
    expect(sim.stats().charges).toBe(0);
  });

  it('refuses bad input with 400, 415 or 422 problem+json and charges nothing', async () => {
    const sim = await start();
    const valid = charge();
    const cases: { body: unknown; contentType?: string; status: number; pointer?: string }[] = [
      { body: '{"amount": 1,', status: 400 },
      { body: '', status: 400 },
      {
        body: 'amount=1&currency=EUR&reference=x',
        contentType: 'application/x-www-form-urlencoded',
        status: 415,
      },
      { body: JSON.stringify(valid), contentType: 'text/plain', status: 415 },
      { body: 'null', status: 422 },
      { body: [valid], status: 422 },
      { body: { ...valid, amount: 0 }, status: 422, pointer: '/amount' },
      { body: { ...valid, amount: -5 }, status: 422, pointer: '/amount' },
      { body: { ...valid, amount: 1_000_000_001 }, status: 422, pointer: '/amount' },
      { body: { ...valid, amount: 10.5 }, status: 422, pointer: '/amount' },
      { body: { ...valid, amount: '100' }, status: 422, pointer: '/amount' },
      { body: { ...valid, currency: 'eur' }, status: 422, pointer: '/currency' },
      { body: { ...valid, currency: 'EURO' }, status: 422, pointer: '/currency' },
      { body: { ...valid, reference: '' }, status: 422, pointer: '/reference' },
      { body: { ...valid, reference: 'x'.repeat(201) }, status: 422, pointer: '/reference' },
      { body: { ...valid, reference: 'nul\u0000' }, status: 422, pointer: '/reference' },
      { body: { ...valid, extra: true }, status: 422, pointer: '/extra' },
      { body: { amount: 1, currency: 'EUR' }, status: 422, pointer: '/reference' },
    ];
    for (const { body, contentType, status, pointer } of cases) {
      const response = await send(sim.url, '/charges', {
        body,
        key: randomUUID(),
        ...(contentType === undefined ? {} : { headers: { 'content-type': contentType } }),
      });
      expect(
        isProblem(response, status),
        `${JSON.stringify(body)} → ${response.status} ${response.text}`,
      ).toBe(true);
      if (pointer !== undefined) {
        expect(response.json.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
      }
    }
    expect(sim.stats()).toEqual({ charges: 0, refunds: 0, chargedAmount: 0, refundedAmount: 0 });
    // The biggest amount allowed is still a charge, so the bound above is the schema's, not a typo.
    const largest = await send(sim.url, '/charges', {
      body: { ...valid, amount: 1_000_000_000 },
      key: randomUUID(),
    });
    expect(largest.status).toBe(201);
  });

  it('answers 404 problem+json for a charge it never made', async () => {
    const sim = await start();
    expect(isProblem(await send(sim.url, '/charges/ch_nope'), 404)).toBe(true);
  });

  it('pages GET /charges oldest first, filtered by reference', async () => {
    const sim = await start();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await send(sim.url, '/charges', { body: charge('audit'), key: randomUUID() })).json.id);
    }
    await send(sim.url, '/charges', { body: charge('other'), key: randomUUID() });
    const first = await send(sim.url, '/charges?reference=audit&limit=2');
    expect(first.json.data.map((c: { id: string }) => c.id)).toEqual(ids.slice(0, 2));
    expect(first.headers.get('link')).toContain('rel="next"');
    const rest = await send(sim.url, `/charges?reference=audit&limit=2&cursor=${first.json.nextCursor}`);
    expect(rest.json).toMatchObject({ data: [{ id: ids[2] }], nextCursor: null });
    expect((await send(sim.url, '/charges')).json.data).toHaveLength(4);
  });
});

describe('POST /refunds', () => {
  it('refunds up to what was charged and refuses more with 422, each refund once per key', async () => {
    const sim = await start();
    const made = await send(sim.url, '/charges', { body: { ...charge(), amount: 1_000 }, key: randomUUID() });
    const chargeId = made.json.id as string;
    const refund = (amount: number, key = randomUUID()) =>
      send(sim.url, '/refunds', { body: { charge: chargeId, amount, reference: 'return' }, key });

    const firstKey = randomUUID();
    const first = await refund(600, firstKey);
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ charge: chargeId, amount: 600, currency: 'EUR', status: 'succeeded' });
    expect(first.headers.get('location')).toBe(`/refunds/${first.json.id}`);
    expect((await send(sim.url, first.headers.get('location')!)).json).toEqual(first.json);
    const replay = await refund(600, firstKey);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.id).toBe(first.json.id);

    const tooMuchKey = randomUUID();
    const tooMuch = await refund(401, tooMuchKey);
    expect(isProblem(tooMuch, 422)).toBe(true);
    expect(tooMuch.json.errors).toEqual([{ pointer: '/amount', detail: expect.stringContaining('400') }]);
    // The refusal is an answer like any other: the same key replays it, even once money is left.
    expect((await refund(401, tooMuchKey)).headers.get('idempotent-replayed')).toBe('true');

    expect((await refund(400)).status).toBe(201);
    expect(isProblem(await refund(1), 422)).toBe(true);
    const unknown = await send(sim.url, '/refunds', {
      body: { charge: 'ch_nope', amount: 1, reference: 'x' },
      key: randomUUID(),
    });
    expect(isProblem(unknown, 422)).toBe(true);
    expect(unknown.json.errors[0].pointer).toBe('/charge');
    expect(sim.stats()).toEqual({ charges: 1, refunds: 2, chargedAmount: 1_000, refundedAmount: 1_000 });
  });

  it('lets concurrent refunds with different keys take no more than the charge between them', async () => {
    const sim = await start();
    const made = await send(sim.url, '/charges', { body: { ...charge(), amount: 1_000 }, key: randomUUID() });
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        send(sim.url, '/refunds', {
          body: { charge: made.json.id, amount: 300, reference: 'r' },
          key: randomUUID(),
        }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 422, 422, 422]);
    expect(sim.stats()).toMatchObject({ refunds: 3, refundedAmount: 900 });
  });

  it('requires a key', async () => {
    const sim = await start();
    const missing = await send(sim.url, '/refunds', { body: { charge: 'ch_x', amount: 1, reference: 'r' } });
    expect(isProblem(missing, 400)).toBe(true);
  });
});

describe('faults', () => {
  it('failRate 1: 503 with Retry-After before charging; the key stays free for a later try', async () => {
    const sim = await start({ faults: { failRate: 1 } });
    const key = randomUUID();
    const body = charge();
    for (let i = 0; i < 3; i++) {
      const refused = await send(sim.url, '/charges', { body, key });
      expect(isProblem(refused, 503)).toBe(true);
      expect(refused.headers.get('retry-after')).toBe('1');
    }
    expect(sim.stats().charges).toBe(0);

    const changed = await send(sim.url, '/_faults', { body: { failRate: 0 } });
    expect(changed.json).toMatchObject({ failRate: 0, injected: { failed: 3 } });
    const charged = await send(sim.url, '/charges', { body, key });
    expect(charged.status).toBe(201);
    expect(charged.headers.get('idempotent-replayed')).toBeNull(); // nothing was stored for the refusals
    expect(sim.stats().charges).toBe(1);
  });

  it('resetAfterChargeRate 1: the charge commits, the connection dies unanswered, and the retry replays it', async () => {
    const sim = await start({ faults: { resetAfterChargeRate: 1 } });
    const key = randomUUID();
    const body = charge();
    await expect(send(sim.url, '/charges', { body, key })).rejects.toThrow();
    expect(sim.stats().charges).toBe(1);

    await send(sim.url, '/_faults', { body: { resetAfterChargeRate: 0 } });
    const retry = await send(sim.url, '/charges', { body, key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const listed = await send(sim.url, `/charges?reference=${body.reference}`);
    expect(listed.json.data.map((c: { id: string }) => c.id)).toEqual([retry.json.id]);
    expect(sim.stats().charges).toBe(1);
  });

  it('slowRate 1: the answer comes slowMs late, after the commit, so a caller that gave up finds it replayed', async () => {
    const sim = await start({ faults: { slowRate: 1, slowMs: 1_000 } });
    const key = randomUUID();
    const body = charge();
    const gaveUp = fetch(`${sim.url}/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(200),
    });
    await expect(gaveUp).rejects.toThrow();
    // Committed before the delay: a retry while the first answer is still held replays it.
    const retry = await send(sim.url, '/charges', { body, key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(sim.stats().charges).toBe(1);
    expect((await send(sim.url, '/_faults')).json.injected.slowed).toBe(2);
  });

  it('rolls the same faults for the same seed', async () => {
    const statuses = async (seed: number) => {
      const sim = await start({ faults: { failRate: 0.5, seed } });
      const seen: number[] = [];
      for (let i = 0; i < 16; i++)
        seen.push((await send(sim.url, '/charges', { body: charge(), key: randomUUID() })).status);
      return seen;
    };
    const first = await statuses(42);
    expect(new Set(first)).toEqual(new Set([201, 503])); // both happened, so the rate is in effect
    expect(await statuses(42)).toEqual(first);
  });

  it('has no /_faults without faults, and refuses bad settings with 422', async () => {
    const plain = await start();
    expect(isProblem(await send(plain.url, '/_faults', { body: { failRate: 1 } }), 404)).toBe(true);
    const faulty = await start({ faults: {} });
    expect(isProblem(await send(faulty.url, '/_faults', { body: { failRate: 2 } }), 422)).toBe(true);
    expect(isProblem(await send(faulty.url, '/_faults', { body: { slowMs: -1 } }), 422)).toBe(true);
    expect(faulty.faults()).toMatchObject({ failRate: 0, resetAfterChargeRate: 0, slowRate: 0 });
  });

  it('refuses bad fault options at start', async () => {
    await expect(startPaymentsSim({ faults: { failRate: 1.5 } })).rejects.toThrow(/failRate/);
  });
});

describe('a restart on the same file', () => {
  it('keeps the charges and replays their keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payments-sim-test-'));
    dirs.push(dir);
    const databasePath = join(dir, 'payments.db');
    const key = randomUUID();
    const body = charge();
    const first = await startPaymentsSim({ databasePath });
    const made = await send(first.url, '/charges', { body, key });
    await first.close();

    const second = await start({ databasePath });
    const replay = await send(second.url, '/charges', { body, key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.id).toBe(made.json.id);
    expect(second.stats().charges).toBe(1);
  });
});
