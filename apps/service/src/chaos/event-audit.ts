// The broker side of a checkout chaos run: a JetStream stream or a RabbitMQ exchange and queue of
// the run's own, set up before any service starts and deleted at the end, and the audit consumer
// that reads every `order.paid` event through the library's consumer helper and SQLite ledger.
// Its handler inserts one row per processing into a table with no unique key, so an event
// processed twice (a ledger that failed to deduplicate) shows as two rows.
import Database from 'better-sqlite3';
import { type ConsumerStats, consumeNats } from 'retrysafe/consumer/nats';
import { consumeRabbit } from 'retrysafe/consumer/rabbitmq';
import { SqliteConsumerLedger } from 'retrysafe/consumer/sqlite';
import { ensureNatsStream } from 'retrysafe/relays/nats';
import { orderPaidTopic } from '../checkout/checkout.js';
import { eventRetryHorizonMs, natsDuplicateWindowMs, natsSubjectsFor } from '../checkout/relays.js';
import type { ChaosBroker } from './options.js';

/** A consumer the broker ended by itself (a connection drop) is started again after this pause. */
const consumerRestartDelayMs = 500;
/**
 * How long JetStream waits for the audit's ack before it redelivers: short, so a delivery
 * pulled by a consumer that was stopped comes back within the run's drain.
 */
const natsAckWaitMs = 5_000;
const effectsTable = 'chaos_audit_effects';

export interface EventAuditOptions {
  broker: ChaosBroker;
  runId: string;
  natsUrl: string;
  amqpUrl: string;
  /** The audit consumer's SQLite file (its ledger and its effects table). */
  databasePath: string;
}

export interface EventAuditCounts {
  /** Deliveries processed for the first time, over every start of the consumer. */
  processed: number;
  /** Deliveries the ledger skipped because the id was processed before (a resend or a redelivery). */
  duplicatesSkipped: number;
  /** Deliveries whose handler or commit failed (handed back to the broker). */
  failed: number;
  /** Times the broker ended the consumer by itself and it was started again. */
  restarts: number;
}

export interface EventAudit {
  /** Environment for every service process: the broker's URL and the run's stream or exchange. */
  serviceEnv: Record<string, string>;
  /** Where the events go, for the report. */
  describe: string;
  readonly counts: EventAuditCounts;
  /** How many times each event id was processed (rows of the effects table). */
  processings(): Map<string, number>;
  /** Distinct event ids processed so far. */
  processedIds(): number;
  /** Stops the consumer (the delivery in hand commits first), then deletes the broker objects. */
  close(): Promise<void>;
}

export async function startEventAudit(options: EventAuditOptions): Promise<EventAudit> {
  const db = new Database(options.databasePath);
  db.pragma('journal_mode = WAL');
  const ledger = new SqliteConsumerLedger({ database: db, consumer: 'retrysafe-chaos.audit' });
  const effects = {
    part: 'retrysafe-chaos.audit-effects',
    version: 1,
    name: 'one row per processing of an event (no unique key, on purpose)',
    up: `CREATE TABLE ${effectsTable} (event_id TEXT NOT NULL, order_id TEXT, processed_at_ms INTEGER NOT NULL)`,
  };
  ledger.unitOfWork.register(effects);
  ledger.unitOfWork.migrate([effects]);
  const insert = db.prepare<[string, string | null, number]>(
    `INSERT INTO ${effectsTable} (event_id, order_id, processed_at_ms) VALUES (?, ?, ?)`,
  );
  const handle = (event: { id: string; payload: unknown }) => {
    const orderId = (event.payload as { orderId?: unknown } | null)?.orderId;
    insert.run(event.id, typeof orderId === 'string' ? orderId : null, Date.now());
  };
  const counts: EventAuditCounts = { processed: 0, duplicatesSkipped: 0, failed: 0, restarts: 0 };
  const add = (stats: ConsumerStats) => {
    counts.processed += stats.processed;
    counts.duplicatesSkipped += stats.duplicates;
    counts.failed += stats.failed;
  };
  const stop = new AbortController();
  let broker: BrokerSide;
  try {
    broker =
      options.broker === 'nats'
        ? await natsSide(options, ledger, handle, stop.signal, add)
        : await rabbitSide(options, ledger, handle, stop.signal, add);
  } catch (error) {
    db.close();
    throw error;
  }
  const consuming = (async () => {
    while (!stop.signal.aborted) {
      try {
        await broker.consume();
      } catch {
        if (stop.signal.aborted) return;
        counts.restarts++;
        await new Promise((resolve) => setTimeout(resolve, consumerRestartDelayMs));
      }
    }
  })();
  const count = db.prepare<[], { event_id: string; n: number }>(
    `SELECT event_id, COUNT(*) AS n FROM ${effectsTable} GROUP BY event_id`,
  );
  const distinct = db.prepare<[], { n: number }>(`SELECT COUNT(DISTINCT event_id) AS n FROM ${effectsTable}`);
  let closed = false;
  return {
    serviceEnv: broker.serviceEnv,
    describe: broker.describe,
    counts,
    processings: () => new Map(count.all().map((row) => [row.event_id, row.n])),
    processedIds: () => distinct.get()!.n,
    async close() {
      if (closed) return;
      closed = true;
      stop.abort();
      await consuming;
      await broker.remove();
      db.close();
    },
  };
}

interface BrokerSide {
  serviceEnv: Record<string, string>;
  describe: string;
  /** One run of the consumer, until the signal or the broker ends it (a rejection). */
  consume(): Promise<void>;
  remove(): Promise<void>;
}

type Handle = (event: { id: string; payload: unknown }) => void;

async function natsSide(
  options: EventAuditOptions,
  ledger: SqliteConsumerLedger,
  handle: Handle,
  signal: AbortSignal,
  add: (stats: ConsumerStats) => void,
): Promise<BrokerSide> {
  const { connect } = await import('nats');
  const stream = `RETRYSAFE_CHAOS_${options.runId}`;
  // The run's own subjects: JetStream gives a subject to one stream, so runs and services
  // sharing the server never collide.
  const prefix = `retrysafe-chaos-${options.runId}`;
  const admin = await connect({ servers: options.natsUrl, timeout: 5_000 });
  try {
    await ensureNatsStream(admin, {
      name: stream,
      subjects: natsSubjectsFor(prefix),
      duplicateWindowMs: natsDuplicateWindowMs,
      retryHorizonMs: eventRetryHorizonMs,
      storage: 'memory',
    });
  } catch (error) {
    await admin.close();
    throw error;
  }
  return {
    serviceEnv: { NATS_URL: options.natsUrl, NATS_STREAM: stream, NATS_SUBJECT_PREFIX: prefix },
    describe: `NATS JetStream stream ${stream}`,
    async consume() {
      const connection = await connect({ servers: options.natsUrl, timeout: 5_000 });
      try {
        add(
          await consumeNats({
            connection,
            stream,
            durable: 'retrysafe-chaos-audit',
            ledger,
            handle: (event) => handle(event),
            signal,
            ackWaitMs: natsAckWaitMs,
            onError: () => {},
          }),
        );
      } catch (error) {
        const stats = (error as { stats?: ConsumerStats }).stats;
        if (stats) add(stats);
        throw error;
      } finally {
        await connection.close().catch(() => {});
      }
    },
    async remove() {
      try {
        const manager = await admin.jetstreamManager();
        await manager.streams.delete(stream);
      } finally {
        await admin.close();
      }
    },
  };
}

async function rabbitSide(
  options: EventAuditOptions,
  ledger: SqliteConsumerLedger,
  handle: Handle,
  signal: AbortSignal,
  add: (stats: ConsumerStats) => void,
): Promise<BrokerSide> {
  const { connect } = await import('amqplib');
  const exchange = `retrysafe-chaos.${options.runId}.events`;
  const queue = `retrysafe-chaos.${options.runId}.audit`;
  const admin = await connect(options.amqpUrl);
  admin.on('error', () => {});
  const channel = await admin.createChannel();
  try {
    // As the relay declares it (durable topic), and the queue bound first: the relay's
    // publishes are mandatory, so an event with no queue bound would be refused.
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, orderPaidTopic);
  } catch (error) {
    await admin.close().catch(() => {});
    throw error;
  }
  return {
    serviceEnv: { AMQP_URL: options.amqpUrl, AMQP_EXCHANGE: exchange },
    describe: `RabbitMQ exchange ${exchange} (queue ${queue})`,
    async consume() {
      const connection = await connect(options.amqpUrl);
      connection.on('error', () => {});
      try {
        add(
          await consumeRabbit({
            connection,
            queue,
            ledger,
            handle: (event) => handle(event),
            signal,
            onError: () => {},
          }),
        );
      } catch (error) {
        const stats = (error as { stats?: ConsumerStats }).stats;
        if (stats) add(stats);
        throw error;
      } finally {
        await connection.close().catch(() => {});
      }
    },
    async remove() {
      try {
        await channel.deleteQueue(queue);
        await channel.deleteExchange(exchange);
      } finally {
        await admin.close().catch(() => {});
      }
    },
  };
}
