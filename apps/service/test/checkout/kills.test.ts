// Proof of the checkout under SIGKILL at every point of POST /orders, on SQLite and PostgreSQL:
// six requests, each held at its own point (before step 1, after the order, after the charge but
// before its checkpoint, after the checkpoint, inside the final transaction, after the commit),
// one SIGKILL of the service, a restart on the same database and the client's retry with the
// same key. Each ends with one order, paid, one charge of its total at the provider (which
// outlived the kill), one shipment, one payment row and one `order.paid` outbox row.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderPaidEventId } from '../../src/checkout/checkout.js';
import { api, type StartedService } from '../helpers/service.js';
import { type Backend, type BackendName, backendNames, type CheckoutRows, openBackend } from './backends.js';
import {
  type Answer,
  orderOf,
  postOrder,
  retryUntilSettled,
  startCheckoutService,
  waitForLog,
} from './checkout.js';
import { type Provider, startProvider } from './provider.js';

const holdMs = '60000';

interface KillPoint {
  name: string;
  /** Test-hook headers that hold the first run there. */
  headers: Record<string, string>;
  /** The log line that says the run is held there. */
  held: string;
  /** Charges the provider holds for the order when the process dies. */
  chargedBeforeKill: 0 | 1;
  /** Whether the final transaction had committed when the process died. */
  committedBeforeKill: boolean;
}

const points: KillPoint[] = [
  {
    name: 'before step 1',
    headers: { 'x-test-delay-ms': holdMs },
    held: 'holding the request inside its handler',
    chargedBeforeKill: 0,
    committedBeforeKill: false,
  },
  {
    name: 'after step 1 committed',
    headers: { 'x-test-hold-at': 'after-order', 'x-test-hold-ms': holdMs },
    held: 'holding at after-order"',
    chargedBeforeKill: 0,
    committedBeforeKill: false,
  },
  {
    name: 'after the charge, before its checkpoint',
    headers: { 'x-test-hold-at': 'after-charge', 'x-test-hold-ms': holdMs },
    held: 'holding at after-charge"',
    chargedBeforeKill: 1,
    committedBeforeKill: false,
  },
  {
    name: 'after the charge checkpoint',
    headers: { 'x-test-hold-at': 'after-charge-checkpoint', 'x-test-hold-ms': holdMs },
    held: 'holding at after-charge-checkpoint"',
    chargedBeforeKill: 1,
    committedBeforeKill: false,
  },
  {
    name: 'after the commit, before the answer',
    headers: { 'x-test-delay-after-commit-ms': holdMs },
    held: 'holding the response after commit',
    chargedBeforeKill: 1,
    committedBeforeKill: true,
  },
  // Last: on SQLite it holds the write lock, which every other run needs to reach its point
  // (the one after the commit included).
  {
    name: 'inside the final transaction',
    headers: { 'x-test-delay-after-writes-ms': holdMs },
    held: 'holding the transaction after its writes',
    chargedBeforeKill: 1,
    committedBeforeKill: false,
  },
];

interface Outcome {
  point: KillPoint;
  order: ReturnType<typeof orderOf>;
  firstRun: unknown;
  /** The database after the restart, before the retry. */
  rowsAtRestart: CheckoutRows;
  /** Charges the provider held for the order after the restart, before the retry. */
  providerChargesAtRestart: number;
  retry: Answer;
  replayAfter: Answer;
  /** Provider charges made by this point's retry (0: it was the provider's replay). */
  chargesByRetry: number;
  rows: CheckoutRows;
}

describe.each(backendNames)(
  'checkout killed with SIGKILL at every point, on %s',
  (backendName: BackendName) => {
    let dir: string;
    let backend: Backend;
    let provider: Provider;
    let service: StartedService | undefined;
    const outcomes = new Map<string, Outcome>();

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `retrysafe-checkout-kills-${backendName}-`));
      backend = await openBackend(backendName, dir);
      provider = await startProvider(dir);
      const first = await startCheckoutService(backend, provider.url);
      service = first;

      const runs = points.map((point, i) => ({
        point,
        key: randomUUID(),
        order: orderOf(`kill-${backendName}-${i}-${randomUUID()}`, 1_000 + i),
      }));
      const firstRuns: Promise<unknown>[] = [];
      // One at a time, each to its point, the one inside the final transaction after the others.
      for (const run of runs) {
        firstRuns.push(
          postOrder(first, run.key, run.order, run.point.headers).catch((error: unknown) => error),
        );
        await waitForLog(first, run.point.held);
      }
      await first.kill('SIGKILL');
      const answered = await Promise.all(firstRuns);

      const second = await startCheckoutService(backend, provider.url);
      service = second;
      for (const [i, run] of runs.entries()) {
        const rowsAtRestart = await backend.rowsOf(run.order.note);
        const placedId = rowsAtRestart.orders[0]?.id;
        const providerChargesAtRestart =
          placedId === undefined ? 0 : (await provider.charges(placedId)).length;
        const before = await provider.stats();
        const retry = await retryUntilSettled(second, run.key, run.order);
        const after = await provider.stats();
        const replayAfter = await postOrder(second, run.key, run.order);
        outcomes.set(run.point.name, {
          point: run.point,
          order: run.order,
          firstRun: answered[i],
          rowsAtRestart,
          providerChargesAtRestart,
          retry,
          replayAfter,
          chargesByRetry: after.charges - before.charges,
          rows: await backend.rowsOf(run.order.note),
        });
      }
    });

    afterAll(async () => {
      await service?.kill();
      await provider?.stop();
      await backend?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it.each(points.map((point) => [point.name]))(
      'killed %s: the retry ends with one paid order and one charge',
      async (name) => {
        const outcome = outcomes.get(name)!;
        const { point, order, retry, rows } = outcome;
        const amount = order.items[0]!.unitPriceCents;
        // The killed run never answered its client.
        expect(outcome.firstRun).toBeInstanceOf(Error);

        expect(retry.status).toBe(201);
        expect(retry.headers.get('idempotent-replayed')).toBe(point.committedBeforeKill ? 'true' : null);
        expect(retry.json.payment).toMatchObject({ status: 'paid', paidCents: amount });
        expect(retry.json.shipment).not.toBeNull();
        const orderId: string = retry.json.id;

        // The provider, which outlived the kill, charged this order once, for its total.
        const charges = await provider.charges(orderId);
        expect(charges).toHaveLength(1);
        expect(charges[0]).toMatchObject({ amount, reference: orderId, id: retry.json.payment.chargeId });
        expect(outcome.chargesByRetry).toBe(1 - point.chargedBeforeKill);

        expect(rows.orders).toEqual([
          expect.objectContaining({
            id: orderId,
            status: 'paid',
            paidCents: amount,
            chargeId: charges[0]!.id,
          }),
        ]);
        expect(rows.shipments).toBe(1);
        expect(rows.payments).toEqual([{ kind: 'charge', providerId: charges[0]!.id, amountCents: amount }]);
        expect(rows.paidEvents).toHaveLength(1);
        expect(rows.paidEvents[0]).toMatchObject({
          id: orderPaidEventId(orderId),
          payload: { orderId, amountCents: amount, chargeId: charges[0]!.id },
        });
        expect(rows.completers).toHaveLength(1);

        const replay = outcome.replayAfter;
        expect(replay.status).toBe(201);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(replay.json.id).toBe(orderId);
        const read = await api(service!.url)(`/orders/${orderId}`);
        expect(read.json.payment.status).toBe('paid');
      },
    );

    it('what the kill left: nothing committed past its point, and no order.paid before the final commit', () => {
      for (const outcome of outcomes.values()) {
        const { point, rowsAtRestart } = outcome;
        const placed = point.name !== 'before step 1';
        expect(rowsAtRestart.orders, point.name).toHaveLength(placed ? 1 : 0);
        expect(outcome.providerChargesAtRestart, point.name).toBe(point.chargedBeforeKill);
        if (!placed) continue;
        expect(rowsAtRestart.orders[0]!.status, point.name).toBe(
          point.committedBeforeKill ? 'paid' : 'pending',
        );
        expect(rowsAtRestart.shipments, point.name).toBe(point.committedBeforeKill ? 1 : 0);
        expect(rowsAtRestart.paidEvents, point.name).toHaveLength(point.committedBeforeKill ? 1 : 0);
        // The order and its completer commit together in step 1.
        expect(rowsAtRestart.completers, point.name).toHaveLength(1);
      }
      expect(outcomes.size).toBe(points.length);
    });

    it("killed after the charge and before its checkpoint, the retry's charge is the provider's replay", () => {
      const outcome = outcomes.get('after the charge, before its checkpoint')!;
      expect(outcome.chargesByRetry).toBe(0);
      expect(outcome.rowsAtRestart.orders[0]!.status).toBe('pending');
    });
  },
);
