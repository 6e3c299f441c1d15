// The RabbitMQ relay and consumer against the real broker at 127.0.0.1:5672, each test with an
// exchange and queue of its own (deleted afterwards): success only on the broker's confirm,
// persistent messages carrying the event id, a channel or connection lost and reopened, and a
// consumer that processes each event once through the ledger, however often it is delivered.
import { randomBytes, randomUUID } from 'node:crypto';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEvent, ConsumerStats } from '../../../src/effects/consumer/delivery.js';
import type { ConsumerLedger } from '../../../src/effects/consumer/ledger.js';
import { consumeRabbit } from '../../../src/effects/consumer/rabbitmq.js';
import {
  createRabbitRelay,
  RelayClosedError,
  RelayPublishError,
} from '../../../src/effects/relays/rabbitmq.js';
import type { OutboxEvent } from '../../../src/effects/relays/types.js';
import { runConsumerThatCrashesAfterCommit } from '../consumer/crash.js';
import { countingLedger, dialects, eventually, LedgerFixtures } from '../consumer/fixtures.js';
import { startLoopbackProxy } from './loopback-proxy.js';

const rabbitPort = 5672;
const rabbitUrl = `amqp://guest:guest@127.0.0.1:${rabbitPort}`;
const fixtures = new LedgerFixtures('retrysafe-rabbit');
let admin: ChannelModel;
let topology: Channel;
const exchanges: string[] = [];
const queues: string[] = [];

beforeAll(async () => {
  admin = await connect(rabbitUrl);
  topology = await admin.createChannel();
});

afterEach(async () => {
  for (const queue of queues.splice(0)) await topology.deleteQueue(queue);
  for (const exchange of exchanges.splice(0)) await topology.deleteExchange(exchange);
});

afterAll(async () => {
  await admin.close();
  await fixtures.close();
});

/** A topic exchange and a durable queue bound to `order.*`, both this test's own. */
async function newTopology(): Promise<{ exchange: string; queue: string }> {
  const suffix = randomBytes(5).toString('hex');
  const exchange = `retrysafe_x_${suffix}`;
  const queue = `retrysafe_q_${suffix}`;
  exchanges.push(exchange);
  queues.push(queue);
  await topology.assertExchange(exchange, 'topic', { durable: true });
  await topology.assertQueue(queue, { durable: true });
  await topology.bindQueue(queue, exchange, 'order.*');
  return { exchange, queue };
}

function newEvent(n: number): OutboxEvent {
  return {
    id: randomUUID(),
    topic: 'order.created',
    payload: { order: n },
    createdAtMs: 1_700_000_000_123 + n,
  };
}

async function queued(queue: string): Promise<number> {
  return (await topology.checkQueue(queue)).messageCount;
}

describe('the RabbitMQ relay', () => {
  it('resolves after the confirm, with a persistent message carrying messageId, type, content type and timestamp', async () => {
    const { exchange, queue } = await newTopology();
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    try {
      const event = newEvent(1);
      expect(await relay.publish(event)).toEqual({ duplicate: false });
      const message = await topology.get(queue, { noAck: true });
      if (message === false) throw new Error('the confirmed message is not in the queue');
      expect(message.fields.routingKey).toBe('order.created');
      expect(message.properties).toMatchObject({
        deliveryMode: 2,
        messageId: event.id,
        type: 'order.created',
        contentType: 'application/json',
        timestamp: Math.floor(event.createdAtMs / 1000),
        headers: { 'retrysafe-created-at-ms': event.createdAtMs },
      });
      expect(JSON.parse(message.content.toString())).toEqual({ order: 1 });
    } finally {
      await relay.close();
    }
  });

  it('a message no queue receives is not reported as published (mandatory), unless mandatory is off', async () => {
    const { exchange, queue } = await newTopology();
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const lenient = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic', mandatory: false });
    try {
      const unroutable = { ...newEvent(2), topic: 'invoice.created' };
      await expect(relay.publish(unroutable)).rejects.toMatchObject({
        name: 'RelayPublishError',
        reason: 'unroutable',
        eventId: unroutable.id,
      });
      // The mark of that return does not leak to the next publish of the same channel.
      expect(await relay.publish(newEvent(3))).toEqual({ duplicate: false });
      expect(await lenient.publish(unroutable)).toEqual({ duplicate: false });
      expect(await queued(queue)).toBe(1);
    } finally {
      await relay.close();
      await lenient.close();
    }
  });

  it('a broker nack (a full queue that rejects publishes) is a failed publish, not a success', async () => {
    const { exchange } = await newTopology();
    const full = `retrysafe_full_${randomBytes(5).toString('hex')}`;
    queues.push(full);
    await topology.assertQueue(full, { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await topology.bindQueue(full, exchange, 'order.*');
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    try {
      // The other bound queue takes it, but a message is confirmed only when every queue took it.
      await relay.publish(newEvent(8));
      const rejected = newEvent(9);
      await expect(relay.publish(rejected)).rejects.toMatchObject({
        name: 'RelayPublishError',
        reason: 'nacked',
        eventId: rejected.id,
      });
      expect(await queued(full)).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it('a channel the broker closed: that publish fails with a clear error, the next one opens a new channel', async () => {
    const { exchange, queue } = await newTopology();
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    try {
      await relay.publish(newEvent(4));
      // Publishing to an exchange that no longer exists makes the broker close the channel (404).
      await topology.deleteExchange(exchange);
      const failed = relay.publish(newEvent(5));
      await expect(failed).rejects.toBeInstanceOf(RelayPublishError);
      await expect(failed).rejects.toMatchObject({ reason: 'channel-closed', retryable: true });
      await expect(failed).rejects.toThrow(/publish it again with the same id later/);
      // The new channel declares the exchange again; the test restores the binding it lost.
      const resent = newEvent(5);
      await eventually('a new channel', async () => {
        await topology.assertExchange(exchange, 'topic', { durable: true });
        await topology.bindQueue(queue, exchange, 'order.*');
        return relay.publish(resent).then(
          () => true as const,
          () => undefined,
        );
      });
      expect(await queued(queue)).toBe(2);
    } finally {
      await relay.close();
    }
  });

  it('a lost connection: publishes fail while it is down, the next one reconnects', async () => {
    const { exchange, queue } = await newTopology();
    const proxy = await startLoopbackProxy(rabbitPort);
    const relay = createRabbitRelay({
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      exchange,
      exchangeType: 'topic',
      confirmTimeoutMs: 1000,
      connectTimeoutMs: 1000,
    });
    try {
      await relay.publish(newEvent(6));
      proxy.cut();
      const whileDown = newEvent(7);
      await expect(relay.publish(whileDown)).rejects.toBeInstanceOf(RelayPublishError);
      await expect(relay.publish(whileDown)).rejects.toBeInstanceOf(RelayPublishError);
      proxy.restore();
      await eventually('the relay reconnected', () =>
        relay.publish(whileDown).then(
          () => true as const,
          () => undefined,
        ),
      );
      expect(proxy.forwarded()).toBeGreaterThanOrEqual(2);
      expect(await queued(queue)).toBeGreaterThanOrEqual(2);
    } finally {
      await relay.close();
      await proxy.close();
    }
  });

  it('close() lets the publishes in flight be confirmed, then refuses new ones', async () => {
    const { exchange, queue } = await newTopology();
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const inFlight = Array.from({ length: 5 }, (_, n) => relay.publish(newEvent(10 + n)));
    await relay.close();
    expect(await Promise.all(inFlight)).toEqual(Array(5).fill({ duplicate: false }));
    await expect(relay.publish(newEvent(20))).rejects.toBeInstanceOf(RelayClosedError);
    expect(await queued(queue)).toBe(5);
  });

  it('publishes on a connection of yours and leaves it open', async () => {
    const { exchange, queue } = await newTopology();
    const relay = createRabbitRelay({ connection: admin, exchange, exchangeType: 'topic' });
    await relay.publish(newEvent(21));
    await relay.close();
    expect(await queued(queue)).toBe(1);
  });
});

/** Runs `consumeRabbit` on a connection of its own until `stop()`. */
async function startConsumer(options: {
  queue: string;
  ledger: ConsumerLedger<unknown>;
  handle: (event: ConsumedEvent, tx: unknown) => unknown;
  connection?: ChannelModel;
}) {
  const connection = options.connection ?? (await connect(rabbitUrl));
  const controller = new AbortController();
  const errors: unknown[] = [];
  const running = consumeRabbit({
    connection,
    queue: options.queue,
    ledger: options.ledger,
    handle: options.handle,
    prefetch: 4,
    requeueDelayMs: 20,
    signal: controller.signal,
    onError: (error) => errors.push(error),
  });
  return {
    running,
    errors,
    async stop(): Promise<ConsumerStats> {
      controller.abort();
      try {
        return await running;
      } finally {
        await connection.close().catch(() => {});
      }
    },
  };
}

describe.each(dialects)('consumeRabbit with the %s ledger', (dialect) => {
  it('an event the relay published twice (the broker keeps both) is processed once', async () => {
    const { exchange, queue } = await newTopology();
    const fixture = await fixtures.open(dialect);
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const event = newEvent(30);
    await relay.publish(event);
    await relay.publish(event);
    await relay.close();
    expect(await queued(queue)).toBe(2);

    const { ledger, answers } = countingLedger(fixture.ledger);
    const seen: ConsumedEvent[] = [];
    const consumer = await startConsumer({
      queue,
      ledger,
      handle: (delivered, tx) => {
        seen.push(delivered);
        return fixture.recordEffect(tx, delivered.id);
      },
    });
    await eventually(
      'both deliveries settled',
      () => answers.processed + answers.duplicates === 2 || undefined,
    );
    const stats = await consumer.stop();
    expect(stats).toMatchObject({ processed: 1, duplicates: 1, failed: 0 });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
    expect(seen[0]).toMatchObject({
      id: event.id,
      topic: 'order.created',
      payload: { order: 30 },
      createdAtMs: event.createdAtMs,
    });
    expect(await queued(queue)).toBe(0);
  });

  it('a handler that throws: nack with requeue, and the event is processed exactly once in the end', async () => {
    const { exchange, queue } = await newTopology();
    const fixture = await fixtures.open(dialect);
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const event = newEvent(31);
    await relay.publish(event);
    await relay.close();
    const seen: ConsumedEvent[] = [];
    const { ledger, answers } = countingLedger(fixture.ledger);
    const consumer = await startConsumer({
      queue,
      ledger,
      handle: async (delivered, tx) => {
        seen.push(delivered);
        await fixture.recordEffect(tx, delivered.id);
        if (seen.length === 1) throw new Error('warehouse unavailable');
      },
    });
    await eventually('the retried delivery committed', () => answers.processed === 1 || undefined);
    const stats = await consumer.stop();
    expect(stats).toMatchObject({ processed: 1, failed: 1 });
    expect(consumer.errors).toHaveLength(1);
    expect(seen.map((delivered) => delivered.redelivered)).toEqual([false, true]);
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
    expect(await queued(queue)).toBe(0);
  });

  it('a connection closed after the commit, before the ack: the broker redelivers, the ledger skips it', async () => {
    const { exchange, queue } = await newTopology();
    const fixture = await fixtures.open(dialect);
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const event = newEvent(32);
    await relay.publish(event);
    await relay.close();
    const doomed = await connect(rabbitUrl);
    const closingLedger: ConsumerLedger<unknown> = {
      consumer: fixture.ledger.consumer,
      reap: (options) => fixture.ledger.reap(options),
      async processOnce(eventId, work) {
        const outcome = await fixture.ledger.processOnce(eventId, work);
        await doomed.close();
        return outcome;
      },
    };
    const handle = (delivered: ConsumedEvent, tx: unknown) => fixture.recordEffect(tx, delivered.id);
    const first = await startConsumer({ queue, ledger: closingLedger, handle, connection: doomed });
    await expect(first.running).rejects.toMatchObject({ name: 'ConsumerStoppedError' });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));

    const { ledger, answers } = countingLedger(fixture.ledger);
    const second = await startConsumer({ queue, ledger, handle });
    await eventually('the redelivery settled', () => answers.duplicates === 1 || undefined);
    const stats = await second.stop();
    expect(stats).toMatchObject({ processed: 0, duplicates: 1 });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
    expect(await queued(queue)).toBe(0);
  });

  it('relay restart: closed and recreated mid-stream, the in-flight events resent: each processed exactly once', async () => {
    const { exchange, queue } = await newTopology();
    const fixture = await fixtures.open(dialect);
    const events = Array.from({ length: 20 }, (_, n) => newEvent(100 + n));
    const first = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    for (const event of events.slice(0, 12)) await first.publish(event);
    const inFlight = events.slice(12, 16).map((event) => first.publish(event));
    await first.close();
    await Promise.allSettled(inFlight);

    // The outbox resends everything not marked done: from event 9 on, 8 of them already delivered.
    const second = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    for (const event of events.slice(8)) await second.publish(event);
    await second.close();
    expect(await queued(queue)).toBe(28);

    const { ledger, answers } = countingLedger(fixture.ledger);
    const consumer = await startConsumer({
      queue,
      ledger,
      handle: (delivered, tx) => fixture.recordEffect(tx, delivered.id),
    });
    await eventually(
      'every delivery settled',
      () => answers.processed + answers.duplicates === 28 || undefined,
    );
    const stats = await consumer.stop();
    expect(stats).toMatchObject({ processed: 20, duplicates: 8 });
    const effects = await fixture.effects();
    expect([...effects.keys()].sort()).toEqual(events.map((event) => event.id).sort());
    expect([...effects.values()].every((count) => count === 1)).toBe(true);
  });
});

describe('a RabbitMQ consumer process killed after its commit, before its ack', () => {
  it('the broker redelivers to the next process, and the ledger skips it: one side effect', async () => {
    const { exchange, queue } = await newTopology();
    const fixture = await fixtures.open('sqlite');
    const relay = createRabbitRelay({ url: rabbitUrl, exchange, exchangeType: 'topic' });
    const event = newEvent(40);
    await relay.publish(event);
    await relay.close();
    const { databasePath, effectsTable } = fixture.sqliteFile!;
    const crashed = await runConsumerThatCrashesAfterCommit({
      broker: 'rabbitmq',
      port: rabbitPort,
      databasePath,
      effectsTable,
      consumer: fixture.ledger.consumer,
      queue,
    });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));

    const { ledger, answers } = countingLedger(fixture.ledger);
    const consumer = await startConsumer({
      queue,
      ledger,
      handle: (delivered, tx) => fixture.recordEffect(tx, delivered.id),
    });
    await eventually('the redelivery settled', () => answers.duplicates === 1 || undefined);
    expect(await consumer.stop()).toMatchObject({ processed: 0, duplicates: 1 });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
  });
});
