// The payments client against the real simulator over loopback, and against a stub server for
// answers the simulator does not give on cue (a 409 while the key is in flight, an unreadable
// 201): each outcome is a result, "unavailable, may have charged" or "rejected", never a guess.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createPaymentsClient,
  PaymentsRejectedError,
  type PaymentsSim,
  PaymentsUnavailableError,
  startPaymentsSim,
} from '../../src/payments/index.js';

const running: PaymentsSim[] = [];
const stubs: Server[] = [];

afterEach(async () => {
  for (const sim of running.splice(0)) await sim.close();
  for (const stub of stubs.splice(0)) await new Promise((resolve) => stub.close(resolve));
});

async function start(options: Parameters<typeof startPaymentsSim>[0] = {}): Promise<PaymentsSim> {
  const sim = await startPaymentsSim(options);
  running.push(sim);
  return sim;
}

interface StubAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A loopback server answering from `answers` in turn (the last one repeats), recording each request. */
async function stub(answers: StubAnswer[]): Promise<{ url: string; requests: IncomingHttpHeaders[] }> {
  const requests: IncomingHttpHeaders[] = [];
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      requests.push(request.headers);
      const answer = answers[Math.min(requests.length, answers.length) - 1]!;
      response.writeHead(answer.status, answer.headers ?? {});
      response.end(answer.body ?? '');
    });
  });
  stubs.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const problem = (status: number, type: string, extra: Record<string, string> = {}): StubAnswer => ({
  status,
  headers: { 'content-type': 'application/problem+json', ...extra },
  body: JSON.stringify({ type: `urn:retrysafe:problem:${type}`, title: 't', status, detail: `a ${type}` }),
});

const order = () => ({ amount: 1_250, currency: 'USD', reference: `order-${randomUUID()}` });

describe('createPaymentsClient', () => {
  it('charges with the caller key; the same key again is the same charge, replayed', async () => {
    const sim = await start();
    const payments = createPaymentsClient({ baseUrl: sim.url });
    const key = `${randomUUID()}:charge`;
    const input = { key, ...order() };
    const first = await payments.charge(input);
    expect(first.replayed).toBe(false);
    expect(first.charge).toMatchObject({ amount: 1_250, currency: 'USD', status: 'succeeded' });
    const again = await payments.charge(input);
    expect(again).toEqual({ charge: first.charge, replayed: true });
    expect(await payments.getCharge(first.charge.id)).toEqual(first.charge);
    expect(await payments.getCharge('ch_none')).toBeUndefined();
    expect(await payments.listCharges(input.reference)).toEqual([first.charge]);
    expect(await payments.stats()).toEqual({
      charges: 1,
      refunds: 0,
      chargedAmount: 1_250,
      refundedAmount: 0,
    });
  });

  it('refunds, and a refund beyond what is left is a PaymentsRejectedError', async () => {
    const sim = await start();
    const payments = createPaymentsClient({ baseUrl: sim.url });
    const { charge } = await payments.charge({ key: randomUUID(), ...order() });
    const refundKey = randomUUID();
    const refund = await payments.refund({
      key: refundKey,
      charge: charge.id,
      amount: 1_000,
      reference: 'r',
    });
    expect(refund).toMatchObject({ replayed: false, refund: { charge: charge.id, amount: 1_000 } });
    const again = await payments.refund({ key: refundKey, charge: charge.id, amount: 1_000, reference: 'r' });
    expect(again).toEqual({ refund: refund.refund, replayed: true });
    const tooMuch = await payments
      .refund({ key: randomUUID(), charge: charge.id, amount: 251, reference: 'r' })
      .catch((error: unknown) => error);
    expect(tooMuch).toBeInstanceOf(PaymentsRejectedError);
    expect(tooMuch).toMatchObject({ operation: 'refund', providerStatus: 422, status: 422 });
    expect(sim.stats()).toMatchObject({ refunds: 1, refundedAmount: 1_000 });
  });

  it('a reset after the charge is PaymentsUnavailableError; the retry with the same key returns that charge', async () => {
    const sim = await start({ faults: { resetAfterChargeRate: 1 } });
    const payments = createPaymentsClient({ baseUrl: sim.url });
    const input = { key: randomUUID(), ...order() };
    const lost = await payments.charge(input).catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(PaymentsUnavailableError);
    expect(lost).toMatchObject({ mayHaveActed: true, idempotencyKey: input.key, status: 503 });
    expect(sim.stats().charges).toBe(1);

    await fetch(`${sim.url}/_faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resetAfterChargeRate: 0 }),
    });
    const retried = await payments.charge(input);
    expect(retried.replayed).toBe(true);
    expect(await payments.listCharges(input.reference)).toEqual([retried.charge]);
    expect(sim.stats().charges).toBe(1);
  });

  it('a timeout is PaymentsUnavailableError, and the charge it may have made is there on retry', async () => {
    const sim = await start({ faults: { slowRate: 1, slowMs: 2_000 } });
    const input = { key: randomUUID(), ...order() };
    const impatient = createPaymentsClient({ baseUrl: sim.url, timeoutMs: 200 });
    const error = await impatient.charge(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentsUnavailableError);
    expect(error).toMatchObject({ mayHaveActed: true, providerStatus: undefined });
    await fetch(`${sim.url}/_faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ slowRate: 0 }),
    });
    expect((await impatient.charge(input)).replayed).toBe(true);
    expect(sim.stats().charges).toBe(1);
  });

  it('a 503 before charging is PaymentsUnavailableError with the Retry-After it was given', async () => {
    const sim = await start({ faults: { failRate: 1 } });
    const error = await createPaymentsClient({ baseUrl: sim.url })
      .charge({ key: randomUUID(), ...order() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentsUnavailableError);
    expect(error).toMatchObject({
      providerStatus: 503,
      retryAfterMs: 1_000,
      headers: { 'retry-after': '1' },
    });
    expect(sim.stats().charges).toBe(0);
  });

  it('bad input and a reused key are PaymentsRejectedError: a definitive no', async () => {
    const sim = await start();
    const payments = createPaymentsClient({ baseUrl: sim.url });
    const invalid = await payments
      .charge({ key: randomUUID(), amount: 0, currency: 'USD', reference: 'r' })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(PaymentsRejectedError);
    expect(invalid).toMatchObject({
      providerStatus: 422,
      providerProblemType: 'urn:retrysafe:problem:validation',
    });
    const key = randomUUID();
    await payments.charge({ key, ...order() });
    const reused = await payments.charge({ key, ...order() }).catch((e: unknown) => e);
    expect(reused).toBeInstanceOf(PaymentsRejectedError);
    expect((reused as PaymentsRejectedError).providerProblemType).toMatch(/idempotency-key-reuse$/);
    expect(sim.stats().charges).toBe(1);
  });

  it('nobody listening is PaymentsUnavailableError that knows nothing was sent', async () => {
    const sim = await startPaymentsSim();
    await sim.close();
    const error = await createPaymentsClient({ baseUrl: sim.url })
      .charge({ key: randomUUID(), ...order() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentsUnavailableError);
    expect((error as PaymentsUnavailableError).mayHaveActed).toBe(false);
  });

  it('409 idempotency-key-in-use is PaymentsUnavailableError (retry later), a plain 409 is rejected', async () => {
    const inUse = await stub([problem(409, 'idempotency-key-in-use', { 'retry-after': '2' })]);
    const error = await createPaymentsClient({ baseUrl: inUse.url })
      .charge({ key: 'k-1', ...order() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaymentsUnavailableError);
    expect(error).toMatchObject({ providerStatus: 409, retryAfterMs: 2_000, mayHaveActed: true });

    const conflict = await stub([problem(409, 'conflict')]);
    const refused = await createPaymentsClient({ baseUrl: conflict.url })
      .charge({ key: 'k-2', ...order() })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PaymentsRejectedError);
  });

  it('a 2xx without a charge in it is PaymentsUnavailableError: it may have charged', async () => {
    for (const answer of [
      { status: 201, headers: { 'content-type': 'text/html' }, body: '<p>ok</p>' },
      { status: 201, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' },
    ]) {
      const server = await stub([answer]);
      const error = await createPaymentsClient({ baseUrl: server.url })
        .charge({ key: 'k', ...order() })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PaymentsUnavailableError);
      expect((error as PaymentsUnavailableError).mayHaveActed).toBe(true);
    }
  });

  it('sends the caller key on every attempt, never a fresh one', async () => {
    const charge = {
      id: 'ch_1',
      amount: 1,
      currency: 'USD',
      reference: 'r',
      status: 'succeeded',
      createdAt: 'x',
    };
    const server = await stub([
      problem(503, 'service-unavailable', { 'retry-after': '0' }),
      { status: 201, headers: { 'content-type': 'application/json' }, body: JSON.stringify(charge) },
    ]);
    const payments = createPaymentsClient({ baseUrl: server.url, maxAttempts: 2 });
    const result = await payments.charge({ key: 'rec-7:charge', amount: 1, currency: 'USD', reference: 'r' });
    expect(result.charge).toEqual(charge);
    expect(server.requests.map((h) => h['idempotency-key'])).toEqual(['rec-7:charge', 'rec-7:charge']);
    expect(server.requests.map((h) => h['x-retry-count'])).toEqual(['0', '1']);
    await expect(payments.charge({ key: '', amount: 1, currency: 'USD', reference: 'r' })).rejects.toThrow(
      TypeError,
    );
    expect(server.requests).toHaveLength(2); // a missing key sends nothing
  });
});
