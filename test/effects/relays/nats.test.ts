// The NATS JetStream relay and consumer against the real server at 127.0.0.1:4222, each test on a
// stream of its own (deleted afterwards): the server drops a resent event id, a short duplicate
// window is refused, a publish without a PubAck throws, and consumers process each event once
// through the ledger (after a throw, a lost ack, a crash, and a relay restarted mid-stream).
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type NatsConnection, nanos } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedEvent, ConsumerStats } from '../../../src/effects/consumer/delivery.js';
import type { ConsumerLedger } from '../../../src/effects/consumer/ledger.js';
import { consumeNats } from '../../../src/effects/consumer/nats.js';
import {
  createNatsRelay,
  DuplicateWindowTooShortError,
  ensureNatsStream,
  InvalidEventError,
  RelayPublishError,
} from '../../../src/effects/relays/nats.js';
import type { OutboxEvent } from '../../../src/effects/relays/types.js';
import { runConsumerThatCrashesAfterCommit } from '../consumer/crash.js';
import { dialects, eventually, type LedgerFixture, LedgerFixtures } from '../consumer/fixtures.js';
import { startLoopbackProxy } from './loopback-proxy.js';

const natsPort = 4222;
const hourMs = 3_600_000;
const fixtures = new LedgerFixtures('retrysafe-nats');
let connection: NatsConnection;
const streams: string[] = [];

beforeAll(async () => {
  connection = await connect({ servers: `127.0.0.1:${natsPort}` });
});

afterEach(async () => {
  const manager = await connection.jetstreamManager();
  for (const stream of streams.splice(0)) await manager.streams.delete(stream).catch(() => {});
});

afterAll(async () => {
  await connection.close();
  await fixtures.close();
});

/** A stream of this test's own, capturing `<name>.>`, with a 28 h duplicate window. */
async function newStream(): Promise<{ name: string; subject: (event: OutboxEvent) => string }> {
  const name = `retrysafe_${randomBytes(5).toString('hex')}`;
  streams.push(name);
  await ensureNatsStream(connection, {
    name,
    subjects: [`${name}.>`],
    duplicateWindowMs: 28 * hourMs,
    retryHorizonMs: 28 * hourMs,
    storage: 'memory',
  });
  return { name, subject: (event) => `${name}.${event.topic}` };
}

function newEvent(n: number): OutboxEvent {
  return {
    id: randomUUID(),
    topic: 'order.created',
    payload: { order: n },
    createdAtMs: 1_700_000_000_000 + n,
  };
}

async function storedMessages(stream: string): Promise<number> {
  const manager = await connection.jetstreamManager();
  return (await manager.streams.info(stream)).state.messages;
}

describe('the NATS relay', () => {
  it('publishing the same event twice stores one message: the second PubAck says duplicate', async () => {
    const { name, subject } = await newStream();
    const relay = createNatsRelay({ connection, stream: name, subject });
    const event = newEvent(1);
    expect(await relay.publish(event)).toEqual({ duplicate: false });
    expect(await relay.publish(event)).toEqual({ duplicate: true });
    expect(await storedMessages(name)).toBe(1);

    const manager = await connection.jetstreamManager();
    const stored = await manager.streams.getMessage(name, { seq: 1 });
    expect(stored.subject).toBe(`${name}.order.created`);
    expect(stored.header.get('Nats-Msg-Id')).toBe(event.id);
    expect(stored.header.get('Retrysafe-Event-Id')).toBe(event.id);
    expect(stored.header.get('Retrysafe-Topic')).toBe('order.created');
    expect(stored.header.get('Retrysafe-Created-At-Ms')).toBe(String(event.createdAtMs));
    expect(stored.json()).toEqual({ order: 1 });
  });

  it('publishes to events.<topic> by default', async () => {
    const name = `retrysafe_${randomBytes(5).toString('hex')}`;
    streams.push(name);
    // Its own prefix is not possible with the default subject, so the stream filters on the topic.
    const topic = `t${randomBytes(5).toString('hex')}`;
    await ensureNatsStream(connection, {
      name,
      subjects: [`events.${topic}`],
      duplicateWindowMs: hourMs,
      retryHorizonMs: hourMs,
      storage: 'memory',
    });
    const relay = createNatsRelay({ connection, stream: name });
    await relay.publish({ ...newEvent(2), topic });
    const manager = await connection.jetstreamManager();
    expect((await manager.streams.getMessage(name, { seq: 1 })).subject).toBe(`events.${topic}`);
  });

  it('ensureNatsStream refuses a duplicate window shorter than the retry horizon, before creating anything', async () => {
    const name = `retrysafe_${randomBytes(5).toString('hex')}`;
    streams.push(name);
    const attempt = ensureNatsStream(connection, {
      name,
      subjects: [`${name}.>`],
      duplicateWindowMs: 2 * 60_000,
      retryHorizonMs: 28 * hourMs,
    });
    await expect(attempt).rejects.toBeInstanceOf(DuplicateWindowTooShortError);
    await expect(attempt).rejects.toThrow(/shorter than the relay's retry horizon/);
    const manager = await connection.jetstreamManager();
    await expect(manager.streams.info(name)).rejects.toThrow(/stream not found/);
  });

  it('ensureNatsStream updates an existing stream to the new window and subjects', async () => {
    const { name } = await newStream();
    const updated = await ensureNatsStream(connection, {
      name,
      subjects: [`${name}.>`, `${name}_extra.>`],
      duplicateWindowMs: 30 * hourMs,
      retryHorizonMs: 28 * hourMs,
    });
    expect(updated).toEqual({ created: false, duplicateWindowMs: 30 * hourMs });
    const manager = await connection.jetstreamManager();
    const { config } = await manager.streams.info(name);
    expect(config.duplicate_window).toBe(nanos(30 * hourMs));
    expect(config.subjects).toEqual([`${name}.>`, `${name}_extra.>`]);
  });

  it('a subject no stream captures is not confirmed: RelayPublishError (no-stream)', async () => {
    const { name } = await newStream();
    const relay = createNatsRelay({ connection, stream: name, subject: () => `nobody_${name}.x` });
    const attempt = relay.publish(newEvent(3));
    await expect(attempt).rejects.toBeInstanceOf(RelayPublishError);
    await expect(attempt).rejects.toMatchObject({ reason: 'no-stream', retryable: true });
  });

  it('a message another stream captures is refused (expect.streamName)', async () => {
    const { subject } = await newStream();
    const other = await newStream();
    const relay = createNatsRelay({ connection, stream: other.name, subject });
    await expect(relay.publish(newEvent(4))).rejects.toMatchObject({
      name: 'RelayPublishError',
      reason: 'rejected',
    });
  });

  it('an event with a wildcard in its subject or a payload that is not JSON is refused, not retried', async () => {
    const { name, subject } = await newStream();
    const relay = createNatsRelay({ connection, stream: name, subject });
    await expect(relay.publish({ ...newEvent(5), topic: 'order.*' })).rejects.toBeInstanceOf(
      InvalidEventError,
    );
    await expect(relay.publish({ ...newEvent(6), payload: undefined })).rejects.toMatchObject({
      retryable: false,
    });
    expect(await storedMessages(name)).toBe(0);
  });

  it('a publish during a disconnect throws; after the client reconnects the resend is confirmed once', async () => {
    const { name, subject } = await newStream();
    const proxy = await startLoopbackProxy(natsPort);
    const flaky = await connect({
      servers: `127.0.0.1:${proxy.port}`,
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
    });
    try {
      const relay = createNatsRelay({ connection: flaky, stream: name, subject, publishTimeoutMs: 300 });
      const event = newEvent(7);
      proxy.cut();
      await expect(relay.publish(event)).rejects.toMatchObject({
        name: 'RelayPublishError',
        reason: 'timeout',
      });
      proxy.restore();
      // The client reconnects by itself; the outbox's retry sends the same event again.
      const resent = await eventually('the resend after the reconnect', async () => {
        try {
          return await relay.publish(event);
        } catch {
          return undefined;
        }
      });
      // The first attempt was buffered by the client and may have reached the stream on reconnect.
      expect(typeof resent.duplicate).toBe('boolean');
      expect(await storedMessages(name)).toBe(1);
    } finally {
      await flaky.close();
      await proxy.close();
    }
  });

  it('a publish on a closed connection throws at once (disconnected)', async () => {
    const { name, subject } = await newStream();
    const closed = await connect({ servers: `127.0.0.1:${natsPort}` });
    await closed.close();
    const relay = createNatsRelay({ connection: closed, stream: name, subject });
    await expect(relay.publish(newEvent(8))).rejects.toMatchObject({ reason: 'disconnected' });
  });
});

/** Runs `consumeNats` until aborted; `stop()` aborts and returns its counts. */
function startConsumer(
  options: {
    connection?: NatsConnection;
    stream: string;
    durable: string;
    ledger: ConsumerLedger<unknown>;
    handle: (event: ConsumedEvent, tx: unknown) => unknown;
    ackWaitMs?: number;
  },
  errors: unknown[] = [],
) {
  const controller = new AbortController();
  const running = consumeNats({
    connection: options.connection ?? connection,
    stream: options.stream,
    durable: options.durable,
    ledger: options.ledger,
    handle: options.handle,
    signal: controller.signal,
    ackWaitMs: options.ackWaitMs ?? 30_000,
    redeliveryDelayMs: 20,
    onError: (error) => errors.push(error),
  });
  return {
    running,
    async stop(): Promise<ConsumerStats> {
      controller.abort();
      return running;
    },
  };
}

/** True once the durable consumer's ack floor reached `streamSeq` with nothing pending an ack. */
async function acked(stream: string, durable: string, streamSeq: number): Promise<true | undefined> {
  const manager = await connection.jetstreamManager();
  const info = await manager.consumers.info(stream, durable);
  return info.ack_floor.stream_seq >= streamSeq && info.num_ack_pending === 0 ? true : undefined;
}

async function effectsSettled(fixture: LedgerFixture, count: number): Promise<Map<string, number>> {
  return eventually(`${count} events processed`, async () => {
    const effects = await fixture.effects();
    return effects.size >= count ? effects : undefined;
  });
}

describe.each(dialects)('consumeNats with the %s ledger', (dialect) => {
  it('a handler that throws gets the event again (nak) and processes it exactly once in the end', async () => {
    const { name, subject } = await newStream();
    const fixture = await fixtures.open(dialect);
    const event = newEvent(10);
    await createNatsRelay({ connection, stream: name, subject }).publish(event);
    const seen: ConsumedEvent[] = [];
    const errors: unknown[] = [];
    const consumer = startConsumer(
      {
        stream: name,
        durable: 'billing',
        ledger: fixture.ledger,
        handle: async (delivered, tx) => {
          seen.push(delivered);
          await fixture.recordEffect(tx, delivered.id);
          if (seen.length === 1) throw new Error('card service unavailable');
        },
      },
      errors,
    );
    await effectsSettled(fixture, 1);
    const stats = await consumer.stop();
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
    expect(seen.map((delivered) => delivered.redelivered)).toEqual([false, true]);
    expect(seen[1]).toMatchObject({
      id: event.id,
      topic: 'order.created',
      payload: { order: 10 },
      createdAtMs: event.createdAtMs,
    });
    expect(stats).toMatchObject({ processed: 1, failed: 1 });
    expect(errors).toHaveLength(1);
  });

  it('an ack lost with the connection: the redelivery is skipped as a duplicate', async () => {
    const { name, subject } = await newStream();
    const fixture = await fixtures.open(dialect);
    const event = newEvent(11);
    await createNatsRelay({ connection, stream: name, subject }).publish(event);
    const doomed = await connect({ servers: `127.0.0.1:${natsPort}` });
    const handle = (delivered: ConsumedEvent, tx: unknown) => fixture.recordEffect(tx, delivered.id);
    // Committed, then the connection goes before the ack can be sent.
    const closingLedger: ConsumerLedger<unknown> = {
      consumer: fixture.ledger.consumer,
      reap: (options) => fixture.ledger.reap(options),
      async processOnce(eventId, work) {
        const outcome = await fixture.ledger.processOnce(eventId, work);
        await doomed.close();
        return outcome;
      },
    };
    const first = startConsumer({
      connection: doomed,
      stream: name,
      durable: 'billing',
      ledger: closingLedger,
      handle,
      ackWaitMs: 500,
    });
    await expect(first.running).rejects.toMatchObject({ name: 'ConsumerStoppedError' });

    const second = startConsumer({
      stream: name,
      durable: 'billing',
      ledger: fixture.ledger,
      handle,
      ackWaitMs: 500,
    });
    await eventually('the redelivery', async () => (await fixture.processedIds()).length === 1 || undefined);
    await eventually('the redelivery acked', () => acked(name, 'billing', 1));
    const stats = await second.stop();
    expect(stats).toMatchObject({ processed: 0, duplicates: 1 });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
  });

  it('relay restart: the connection closes mid-stream and the new relay resends the in-flight events; each is processed once', async () => {
    const { name, subject } = await newStream();
    const fixture = await fixtures.open(dialect);
    const events = Array.from({ length: 20 }, (_, n) => newEvent(100 + n));
    const firstConnection = await connect({ servers: `127.0.0.1:${natsPort}` });
    const first = createNatsRelay({ connection: firstConnection, stream: name, subject });
    for (const event of events.slice(0, 12)) await first.publish(event);
    // Four more in flight when the relay's connection goes away.
    const inFlight = events.slice(12, 16).map((event) => first.publish(event));
    const closing = firstConnection.close();
    const outcomes = await Promise.allSettled(inFlight);
    await closing;
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(RelayPublishError);
    }

    // The outbox resends everything not marked done: here from event 9 on (some of them were confirmed).
    const second = createNatsRelay({ connection, stream: name, subject });
    const resent = [];
    for (const event of events.slice(8)) resent.push(await second.publish(event));
    expect(resent.slice(0, 4).every((result) => result.duplicate)).toBe(true);
    expect(await storedMessages(name)).toBe(20);

    const consumer = startConsumer({
      stream: name,
      durable: 'billing',
      ledger: fixture.ledger,
      handle: (delivered, tx) => fixture.recordEffect(tx, delivered.id),
    });
    const effects = await effectsSettled(fixture, 20);
    const stats = await consumer.stop();
    expect(stats.processed).toBe(20);
    expect([...effects.keys()].sort()).toEqual(events.map((event) => event.id).sort());
    expect([...effects.values()].every((count) => count === 1)).toBe(true);
  });
});

describe('a consumer process killed after its commit, before its ack', () => {
  it('the redelivery to the next process is skipped by the ledger: one side effect', async () => {
    const { name, subject } = await newStream();
    const fixture = await fixtures.open('sqlite');
    const event = newEvent(30);
    await createNatsRelay({ connection, stream: name, subject }).publish(event);
    const { databasePath, effectsTable } = fixture.sqliteFile!;
    const crashed = await runConsumerThatCrashesAfterCommit({
      broker: 'nats',
      port: natsPort,
      databasePath,
      effectsTable,
      consumer: fixture.ledger.consumer,
      stream: name,
      durable: 'billing',
      ackWaitMs: 500,
    });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));

    const consumer = startConsumer({
      stream: name,
      durable: 'billing',
      ledger: fixture.ledger,
      handle: (delivered, tx) => fixture.recordEffect(tx, delivered.id),
      ackWaitMs: 500,
    });
    await eventually('the redelivery acked', () => acked(name, 'billing', 1));
    const stats = await consumer.stop();
    expect(stats).toMatchObject({ processed: 0, duplicates: 1 });
    expect(await fixture.effects()).toEqual(new Map([[event.id, 1]]));
  });
});
