// PUT /orders/{id} over real HTTP, on a real SQLite file and a real PostgreSQL database, against
// the real payments simulator: the difference is charged or refunded exactly once (refunds over
// the order's charges newest first), the same PUT again moves nothing, racing PUTs of one
// version move money for exactly one, a stalled request's change is applied by its completer,
// and every refusal leaves order and provider untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxChargeCents } from '../src/checkout/checkout.js';
import { buildOrder } from '../src/domain/orders.js';
import { type PaymentsSim, startPaymentsSim } from '../src/payments/sim.js';
import { api } from './helpers/service.js';
import {
  type Backend,
  type InProcessService,
  items,
  paidOrder,
  put,
  startInProcessService,
} from './orders-replace-helpers.js';

const tenant = 'a';

async function markShipped(service: InProcessService, backend: Backend, id: string): Promise<void> {
  await service.data.transaction(async (tx) => {
    const sql = "UPDATE shipments SET status = 'shipped' WHERE tenant = 'a' AND order_id = ";
    if (backend === 'sqlite')
      (tx as { prepare(sql: string): { run(id: string): unknown } }).prepare(`${sql}?`).run(id);
    else await (tx as { query(sql: string, values: unknown[]): Promise<unknown> }).query(`${sql}$1`, [id]);
  });
}

describe.each<Backend>(['sqlite', 'postgres'])('PUT /orders/{id} on %s', (backend) => {
  let service: InProcessService;
  let client: InProcessService['client'];

  beforeAll(async () => {
    service = await startInProcessService(backend);
    client = service.client;
  });
  afterAll(async () => {
    await service?.close();
  });

  it('charges exactly the difference once for a larger order, and answers 200 with the new version and ETag', async () => {
    const order = await paidOrder(client, items(['book', 2, 1250]));
    const before = service.sim.stats();
    const replaced = await put(client, order.id, order.etag, items(['book', 3, 1250], ['pen', 1, 500]));
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({
      version: 2,
      totalCents: 4250,
      payment: { status: 'paid', paidCents: 4250 },
      items: [
        { sku: 'book', quantity: 3 },
        { sku: 'pen', quantity: 1 },
      ],
    });
    expect(replaced.json.pendingChange).toBeUndefined();
    const etag = replaced.headers.get('etag');
    expect(etag).not.toBe(order.etag);
    const read = await client(`/orders/${order.id}`);
    expect(read.text).toBe(replaced.text);
    expect(read.headers.get('etag')).toBe(etag);
    const after = service.sim.stats();
    expect(after.charges - before.charges).toBe(1);
    expect(after.chargedAmount - before.chargedAmount).toBe(1750);
    expect(after.refunds).toBe(before.refunds);
    const ledger = await service.data.orders.payments(tenant, order.id);
    expect(ledger.filter((payment) => payment.key === `${order.id}:v1:charge`)).toMatchObject([
      { kind: 'charge', amountCents: 1750 },
    ]);
  });

  it('refunds exactly the difference for a smaller order, over two charges newest first', async () => {
    const order = await paidOrder(client, items(['mug', 1, 2500]));
    const grown = await put(client, order.id, order.etag, items(['mug', 1, 2500], ['tea', 1, 1500]));
    expect(grown.status).toBe(200);
    const before = service.sim.stats();
    const shrunk = await put(client, order.id, grown.headers.get('etag')!, items(['tea', 1, 1000]));
    expect(shrunk.status).toBe(200);
    expect(shrunk.json).toMatchObject({ version: 3, totalCents: 1000, payment: { paidCents: 1000 } });
    const after = service.sim.stats();
    expect(after.refunds - before.refunds).toBe(2);
    expect(after.refundedAmount - before.refundedAmount).toBe(3000);
    expect(after.charges).toBe(before.charges);
    const ledger = await service.data.orders.payments(tenant, order.id);
    const [first, second] = ledger.filter((payment) => payment.kind === 'charge');
    const refunds = ledger.filter((payment) => payment.kind === 'refund');
    // The newest charge (1500) is refunded in full, the rest (1500 of 3000) from the first.
    expect(refunds.map((refund) => [refund.key, refund.refundsCharge, refund.amountCents]).sort()).toEqual(
      [
        [`${order.id}:v2:refund:${second!.providerId}`, second!.providerId, 1500],
        [`${order.id}:v2:refund:${first!.providerId}`, first!.providerId, 1500],
      ].sort(),
    );
  });

  it('answers the same PUT again with 200 and the same order, moving no money (with or without a key)', async () => {
    const order = await paidOrder(client, items(['lamp', 1, 3000]));
    const body = items(['lamp', 2, 3000]);
    const first = await put(client, order.id, order.etag, body);
    expect(first.status).toBe(200);
    const before = service.sim.stats();
    const again = await put(client, order.id, order.etag, body);
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    // The same PUT with its keys in another order, and with a key: still the same change.
    const reordered = await put(client, order.id, order.etag, { currency: 'EUR', items: body.items });
    expect(reordered.status).toBe(200);
    const keyed = await put(client, order.id, order.etag, body, { 'idempotency-key': 'replace-same-put' });
    const replayed = await put(client, order.id, order.etag, body, { 'idempotency-key': 'replace-same-put' });
    expect(keyed.status).toBe(200);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.text).toBe(first.text);
    // Another body against the version already replaced is stale.
    const other = await put(client, order.id, order.etag, items(['lamp', 5, 3000]));
    expect(other.status).toBe(412);
    expect(service.sim.stats()).toEqual(before);
    expect((await client(`/orders/${order.id}`)).json.version).toBe(2);
  });

  it('lets exactly one of 10 racing PUTs from one version move money; the others are 412 or 409', async () => {
    const order = await paidOrder(client, items(['chair', 1, 1000]));
    const before = service.sim.stats();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        put(client, order.id, order.etag, items(['chair', index + 2, 1000])),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.every((status) => [200, 409, 412].includes(status))).toBe(true);
    const winner = answers.find((answer) => answer.status === 200)!;
    const after = service.sim.stats();
    expect(after.charges - before.charges).toBe(1);
    expect(after.chargedAmount - before.chargedAmount).toBe(winner.json.totalCents - 1000);
    const read = await client(`/orders/${order.id}`);
    expect(read.text).toBe(winner.text);
    expect(read.json.payment.paidCents).toBe(winner.json.totalCents);
  });

  it('answers 409 change-in-progress with Retry-After to another body while a change moves money', async () => {
    const order = await paidOrder(client, items(['desk', 1, 10000]));
    const before = service.sim.stats();
    const held = put(client, order.id, order.etag, items(['desk', 2, 10000]), {
      'x-test-hold-at': 'after-adjust',
      'x-test-hold-ms': '1500',
    });
    let reserved: Awaited<ReturnType<typeof client>> | undefined;
    for (let poll = 0; poll < 100 && reserved === undefined; poll++) {
      const read = await client(`/orders/${order.id}`);
      if (read.json.pendingChange !== undefined) reserved = read;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(reserved?.json.pendingChange).toEqual({ version: 2 });
    expect(reserved?.headers.get('etag')).not.toBe(order.etag);
    for (const ifMatch of [order.etag, reserved!.headers.get('etag')!]) {
      const other = await put(client, order.id, ifMatch, items(['desk', 3, 10000]));
      expect(other.status).toBe(409);
      expect(other.json.type).toBe('urn:retrysafe:problem:change-in-progress');
      expect(other.headers.get('retry-after')).toBe('1');
    }
    expect((await held).status).toBe(200);
    const after = service.sim.stats();
    expect(after.charges - before.charges).toBe(1);
    expect(after.chargedAmount - before.chargedAmount).toBe(10000);
  });

  it('answers 204 with the new ETag for Prefer: return=minimal', async () => {
    const order = await paidOrder(client, items(['cup', 2, 400]));
    const minimal = await put(client, order.id, order.etag, items(['cup', 1, 400]), {
      prefer: 'return=minimal',
    });
    expect(minimal.status).toBe(204);
    expect(minimal.text).toBe('');
    const read = await client(`/orders/${order.id}`);
    expect(minimal.headers.get('etag')).toBe(read.headers.get('etag'));
    expect(read.json).toMatchObject({ version: 2, totalCents: 400, payment: { paidCents: 400 } });
  });

  it('refuses with 428, 404, 412, 409 and 422 and changes neither the order nor the provider', async () => {
    const order = await paidOrder(client, items(['sofa', 1, 5000]));
    const pending = buildOrder(tenant, items(['box', 1, 100]), `pending-${order.id}`, 'k:charge');
    await service.data.transaction((tx) => service.data.orders.insertOnce(tx, pending));
    const shipped = await paidOrder(client, items(['rug', 1, 700]));
    await markShipped(service, backend, shipped.id);
    const shippedEtag = (await client(`/orders/${shipped.id}`)).headers.get('etag')!;
    const body = items(['sofa', 2, 5000]);
    const readBefore = await client(`/orders/${order.id}`);
    const before = service.sim.stats();
    const cases: Array<[Promise<Awaited<ReturnType<typeof client>>>, number, string | undefined]> = [
      [put(client, order.id, undefined, body), 428, 'precondition-required'],
      [put(client, 'no-such-order', '"x"', body), 404, 'not-found'],
      [put(api(service.url, 'demo-writer-b'), order.id, order.etag, body), 404, 'not-found'],
      [put(client, order.id, '"stale"', body), 412, 'precondition-failed'],
      [put(client, pending.id, pending.etag, body), 409, 'order-not-paid'],
      [put(client, shipped.id, shippedEtag, items(['rug', 2, 700])), 409, 'order-shipped'],
      [put(client, order.id, order.etag, { ...body, currency: 'USD' }), 422, 'validation'],
      [put(client, order.id, order.etag, items(['sofa', 10_000, maxChargeCents])), 422, 'validation'],
      [put(client, order.id, order.etag, { items: [], currency: 'EUR' }), 422, 'validation'],
    ];
    for (const [answer, status, type] of cases) {
      const refused = await answer;
      expect(refused.status, refused.text).toBe(status);
      if (type !== undefined) expect(refused.json.type).toBe(`urn:retrysafe:problem:${type}`);
    }
    // A refusal before the key is claimed is not stored: the same key may go on to succeed.
    const key = 'replace-refused-then-fixed';
    expect(
      (await put(client, order.id, order.etag, { ...body, currency: 'USD' }, { 'idempotency-key': key }))
        .status,
    ).toBe(422);
    expect(service.sim.stats()).toEqual(before);
    const readAfter = await client(`/orders/${order.id}`);
    expect(readAfter.text).toBe(readBefore.text);
    expect(readAfter.headers.get('etag')).toBe(readBefore.headers.get('etag'));
    expect((await client(`/orders/${pending.id}`)).json.version).toBe(1);
    expect((await client(`/orders/${shipped.id}`)).headers.get('etag')).toBe(shippedEtag);
    const fixed = await put(client, order.id, order.etag, body, { 'idempotency-key': key });
    expect(fixed.status).toBe(200);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('PUT /orders/{id} whose request stalls after the payments', () => {
  let service: InProcessService;

  beforeAll(async () => {
    service = await startInProcessService('sqlite', { completerDelayMs: 200 });
  });
  afterAll(async () => {
    await service?.close();
  });

  it('is applied by its completer, and the request then answers 200 with that version; money moved once', async () => {
    const { client } = service;
    const order = await paidOrder(client, items(['kite', 1, 900]));
    const before = service.sim.stats();
    const held = put(client, order.id, order.etag, items(['kite', 3, 900]), {
      'x-test-hold-at': 'after-adjust',
      'x-test-hold-ms': '4000',
    });
    let version = 1;
    for (let poll = 0; poll < 150 && version === 1; poll++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      version = (await client(`/orders/${order.id}`)).json.version;
    }
    // Applied while the request is still held: the completer did it.
    expect(version).toBe(2);
    const read = await client(`/orders/${order.id}`);
    expect(read.json).toMatchObject({ totalCents: 2700, payment: { paidCents: 2700 } });
    const answered = await held;
    expect(answered.status).toBe(200);
    expect(answered.text).toBe(read.text);
    const after = service.sim.stats();
    expect(after.charges - before.charges).toBe(1);
    expect(after.chargedAmount - before.chargedAmount).toBe(1800);
    const ledger = await service.data.orders.payments('a', order.id);
    expect(ledger.filter((payment) => payment.key === `${order.id}:v1:charge`)).toHaveLength(1);
  });
});

describe('PUT /orders/{id} when the provider moved the money but its answer was lost', () => {
  let sim: PaymentsSim;
  let service: InProcessService;

  beforeAll(async () => {
    sim = await startPaymentsSim({ faults: {} });
    service = await startInProcessService('sqlite', { sim });
  });
  afterAll(async () => {
    await service?.close();
    await sim?.close();
  });

  async function setFaults(faults: Record<string, number>): Promise<void> {
    const response = await fetch(`${sim.url}/_faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    expect(response.status).toBe(200);
  }

  it('answers 503 with Retry-After, keeps the change pending, and the same PUT again charges nothing more', async () => {
    const { client } = service;
    const order = await paidOrder(client, items(['oar', 1, 1100]));
    const body = items(['oar', 2, 1100]);
    const before = sim.stats();
    await setFaults({ resetAfterChargeRate: 1 });
    const failed = await put(client, order.id, order.etag, body);
    await setFaults({ resetAfterChargeRate: 0 });
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).not.toBeNull();
    // The provider did charge; the order does not show it yet, only the change under way.
    expect(sim.stats().charges - before.charges).toBe(1);
    const pending = await client(`/orders/${order.id}`);
    expect(pending.json).toMatchObject({ version: 1, pendingChange: { version: 2 } });
    const retried = await put(client, order.id, order.etag, body);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ version: 2, totalCents: 2200, payment: { paidCents: 2200 } });
    const after = sim.stats();
    expect(after.charges - before.charges).toBe(1);
    expect(after.chargedAmount - before.chargedAmount).toBe(1100);
  });
});
