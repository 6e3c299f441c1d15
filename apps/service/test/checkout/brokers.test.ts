// Proof of the checkout's events on real brokers — NATS JetStream and RabbitMQ, each with a
// service on SQLite and on PostgreSQL: every checkout's `order.paid` event reaches the broker,
// and an audit consumer (the library's consumer helper with a SQLite ledger) processes each
// exactly once, even when the relay is SIGKILLed mid-stream: with events published whose
// acknowledgement it never got (a proxy drops the broker's replies), so the restarted service
// publishes them again.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ConsumedEvent, ConsumerStats } from 'retrysafe/consumer/nats';
import { type ConsumerLedger, createSqliteConsumerLedger } from 'retrysafe/consumer/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderPaidEventId } from '../../src/checkout/checkout.js';
import type { StartedService } from '../helpers/service.js';
import { type Backend, type BackendName, backendNames, openBackend } from './backends.js';
import { type Broker, type BrokerName, brokerNames, openBroker } from './brokers.js';
import { orderOf, postOrder, startCheckoutService, waitFor } from './checkout.js';
import { type Provider, startProvider } from './provider.js';
import { type ReplyDroppingProxy, startReplyDroppingProxy } from './reply-dropping-proxy.js';

/** Checkouts before the broker's replies are dropped, while they are, and after the restart. */
const phases = { relayed: 4, unacknowledged: 4, afterRestart: 3 };
const total = phases.relayed + phases.unacknowledged + phases.afterRestart;

const relayEnv = { JOBS_POLL_INTERVAL_MS: '100', JOBS_LEASE_MS: '1000' };

let provider: Provider;
let providerDir: string;

beforeAll(async () => {
  providerDir = mkdtempSync(join(tmpdir(), 'retrysafe-checkout-brokers-provider-'));
  provider = await startProvider(providerDir);
});

afterAll(async () => {
  await provider?.stop();
  rmSync(providerDir, { recursive: true, force: true });
});

const combinations = brokerNames.flatMap((broker) =>
  backendNames.map((backend) => [broker, backend] as const),
);

describe.each(combinations)(
  'order.paid events on %s, the service on %s',
  (brokerName: BrokerName, backendName: BackendName) => {
    let dir: string;
    let backend: Backend;
    let broker: Broker;
    let proxy: ReplyDroppingProxy;
    let service: StartedService | undefined;
    let auditDb: Database.Database;
    const deliveries: string[] = [];
    let consumed: Promise<ConsumerStats>;
    const stopConsumer = new AbortController();
    const orderIds: string[] = [];
    let stateBeforeKill: string[] = [];
    let stats: ConsumerStats;
    let stored: number | undefined;

    const audited = () =>
      auditDb
        .prepare('SELECT order_id AS orderId, event_id AS eventId FROM audited ORDER BY rowid')
        .all() as {
        orderId: string;
        eventId: string;
      }[];

    async function checkouts(count: number, phase: string): Promise<void> {
      for (let i = 0; i < count; i++) {
        const order = orderOf(
          `${brokerName}-${backendName}-${phase}-${i}-${randomUUID()}`,
          5_000 + orderIds.length,
        );
        const answer = await postOrder(service!, randomUUID(), order);
        expect(answer.status).toBe(201);
        orderIds.push(answer.json.id);
      }
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `retrysafe-checkout-${brokerName}-${backendName}-`));
      backend = await openBackend(backendName, dir);
      broker = await openBroker(brokerName);
      proxy = await startReplyDroppingProxy({ host: '127.0.0.1', port: broker.port });

      auditDb = new Database(join(dir, 'audit.db'));
      auditDb.pragma('journal_mode = WAL');
      // No uniqueness on purpose: an event processed twice would show as two rows.
      auditDb.exec('CREATE TABLE audited (order_id TEXT NOT NULL, event_id TEXT NOT NULL)');
      const ledger = createSqliteConsumerLedger({ database: auditDb, consumer: 'checkout.audit' });
      // Every delivery the broker makes goes through the ledger: counted here, duplicates included.
      const countingLedger: ConsumerLedger<Database.Database> = {
        consumer: ledger.consumer,
        processOnce(eventId, work) {
          deliveries.push(eventId);
          return ledger.processOnce(eventId, work);
        },
        reap: (options) => ledger.reap(options),
      };
      const handle = (event: ConsumedEvent, tx: Database.Database) => {
        const { orderId } = event.payload as { orderId: string };
        tx.prepare('INSERT INTO audited (order_id, event_id) VALUES (?, ?)').run(orderId, event.id);
      };

      // The relay goes through the proxy; the audit consumer talks to the broker directly.
      service = await startCheckoutService(backend, provider.url, { ...relayEnv, ...broker.env(proxy.port) });
      consumed = broker.consume(countingLedger, handle, stopConsumer.signal);
      await checkouts(phases.relayed, 'relayed');
      await waitFor(() => audited().length === phases.relayed, 'the first events to be consumed');

      // Publishes still reach the broker (and the consumer); their acknowledgements are lost.
      proxy.dropReplies();
      await checkouts(phases.unacknowledged, 'unacknowledged');
      await waitFor(
        () => audited().length === phases.relayed + phases.unacknowledged,
        'the unacknowledged events to be consumed',
      );
      stateBeforeKill = (await backend.allPaidEvents()).slice(phases.relayed).map((event) => event.state);
      await service.kill('SIGKILL');

      service = await startCheckoutService(backend, provider.url, {
        ...relayEnv,
        ...broker.env(broker.port),
      });
      await checkouts(phases.afterRestart, 'after-restart');
      await waitFor(
        async () => (await backend.allPaidEvents()).every((event) => event.state === 'done'),
        'the restarted relay to publish every event',
      );
      // RabbitMQ delivers the republished events again; wait until the ledger has seen them.
      if (brokerName === 'rabbitmq')
        await waitFor(
          () => deliveries.length >= total + phases.unacknowledged,
          'the duplicates to be delivered',
        );
      await waitFor(() => audited().length >= total, 'every event to be consumed');
      stored = await broker.storedMessages();
      stopConsumer.abort();
      stats = await consumed;
    });

    afterAll(async () => {
      stopConsumer.abort();
      await consumed?.catch(() => {});
      await service?.kill();
      await proxy?.close();
      await broker?.close();
      auditDb?.close();
      await backend?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('the relay was killed mid-stream: events published but never acknowledged were not done', () => {
      expect(stateBeforeKill).toHaveLength(phases.unacknowledged);
      expect(stateBeforeKill.every((state) => state !== 'done')).toBe(true);
    });

    it('every checkout’s order.paid event reached the broker, and was processed exactly once', async () => {
      expect(orderIds).toHaveLength(total);
      const rows = audited();
      expect(rows.map((row) => row.orderId).sort()).toEqual([...orderIds].sort());
      for (const row of rows) expect(row.eventId).toBe(orderPaidEventId(row.orderId));
      expect(stats.processed).toBe(total);
      expect(stats.failed).toBe(0);
      expect(stats.undecodable).toBe(0);
      const events = await backend.allPaidEvents();
      expect(events).toHaveLength(total);
      // The restarted relay republished the unacknowledged ones (a second attempt each).
      expect(
        events.slice(phases.relayed, phases.relayed + phases.unacknowledged).every((e) => e.attempts >= 2),
      ).toBe(true);
    });

    it(
      brokerName === 'nats'
        ? 'the resent events were dropped by JetStream (Nats-Msg-Id): the stream holds each once'
        : 'the resent events were delivered again and skipped by the consumer ledger',
      () => {
        if (brokerName === 'nats') {
          expect(stored).toBe(total);
          expect(stats.duplicates).toBe(0);
        } else {
          expect(stats.duplicates).toBeGreaterThanOrEqual(phases.unacknowledged);
          expect(deliveries.length).toBe(stats.processed + stats.duplicates);
        }
      },
    );
  },
);
