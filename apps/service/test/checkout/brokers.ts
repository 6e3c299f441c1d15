// The two brokers the checkout's `order.paid` events are relayed to, as the broker proofs use
// them: the service's environment for each (through a proxy port or directly), the topology a
// test owns (a NATS stream, a RabbitMQ exchange and audit queue) and its removal, and an audit
// consumer built on the library's consumer helpers.
import { randomBytes } from 'node:crypto';
import { type ChannelModel, connect as connectRabbit } from 'amqplib';
import { connect as connectNats, type NatsConnection } from 'nats';
import type { ConsumerStats, EventHandler } from 'retrysafe/consumer/nats';
import { consumeNats } from 'retrysafe/consumer/nats';
import { consumeRabbit } from 'retrysafe/consumer/rabbitmq';
import type { ConsumerLedger } from 'retrysafe/consumer/sqlite';

export type BrokerName = 'nats' | 'rabbitmq';
export const brokerNames: BrokerName[] = ['nats', 'rabbitmq'];

export interface Broker {
  name: BrokerName;
  /** The broker's own loopback port (a proxy in front of it forwards here). */
  port: number;
  /** The service's environment to relay to this broker on `port`. */
  env(port: number): Record<string, string>;
  /** Consumes the checkout's events until `signal` aborts. */
  consume<Tx>(
    ledger: ConsumerLedger<Tx>,
    handle: EventHandler<Tx>,
    signal: AbortSignal,
  ): Promise<ConsumerStats>;
  /** Messages the broker holds for the checkout's events (NATS: the stream; RabbitMQ: undefined, they are consumed). */
  storedMessages(): Promise<number | undefined>;
  /** Deletes what the test created on the broker and closes the test's connection. */
  close(): Promise<void>;
}

const natsPort = 4222;
const rabbitPort = 5672;

/**
 * The stream is created by the service at start; the test deletes it. Its own subject prefix
 * (NATS_SUBJECT_PREFIX), because JetStream gives a subject to one stream only and other runs
 * (chaos, another test file) may hold streams on the same server.
 */
async function natsBroker(): Promise<Broker> {
  const suffix = randomBytes(5).toString('hex');
  const stream = `RETRYSAFE_CHECKOUT_${suffix}`;
  const prefix = `checkout-test-${suffix}`;
  const connection: NatsConnection = await connectNats({ servers: `127.0.0.1:${natsPort}` });
  return {
    name: 'nats',
    port: natsPort,
    env: (port) => ({
      NATS_URL: `nats://127.0.0.1:${port}`,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: prefix,
    }),
    consume: (ledger, handle, signal) =>
      consumeNats({
        connection,
        stream,
        durable: 'checkout_audit',
        filterSubject: `${prefix}.order.paid`,
        ledger,
        handle,
        signal,
        redeliveryDelayMs: 100,
      }),
    async storedMessages() {
      const manager = await connection.jetstreamManager();
      return (await manager.streams.info(stream)).state.messages;
    },
    async close() {
      const manager = await connection.jetstreamManager();
      await manager.streams.delete(stream).catch(() => {});
      await connection.close();
    },
  };
}

/**
 * The exchange and the audit queue bound to `order.paid` exist before the service starts: its
 * relay publishes mandatory messages, refused while no queue is bound.
 */
async function rabbitBroker(): Promise<Broker> {
  const suffix = randomBytes(5).toString('hex');
  const exchange = `retrysafe.checkout.${suffix}`;
  const queue = `retrysafe.checkout.audit.${suffix}`;
  const connection: ChannelModel = await connectRabbit(`amqp://guest:guest@127.0.0.1:${rabbitPort}`);
  const topology = await connection.createChannel();
  await topology.assertExchange(exchange, 'topic', { durable: true });
  await topology.assertQueue(queue, { durable: true });
  await topology.bindQueue(queue, exchange, 'order.paid');
  return {
    name: 'rabbitmq',
    port: rabbitPort,
    env: (port) => ({ AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}`, AMQP_EXCHANGE: exchange }),
    consume: (ledger, handle, signal) =>
      consumeRabbit({ connection, queue, ledger, handle, signal, requeueDelayMs: 100 }),
    storedMessages: async () => undefined,
    async close() {
      await topology.deleteQueue(queue).catch(() => {});
      await topology.deleteExchange(exchange).catch(() => {});
      await connection.close();
    },
  };
}

export function openBroker(name: BrokerName): Promise<Broker> {
  return name === 'nats' ? natsBroker() : rabbitBroker();
}
