// `retrysafe/consumer/nats`: a durable JetStream pull consumer with explicit acks, each event
// processed once through the consumer ledger: acked after its commit, nak'ed when it throws.
import {
  AckPolicy,
  type ConsumerConfig,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type NatsError,
  nanos,
} from 'nats';
import { natsEventHeaders } from '../relays/wire.js';
import {
  type ConsumedEvent,
  ConsumerAckError,
  type ConsumerErrorListener,
  type ConsumerStats,
  ConsumerStoppedError,
  type EventHandler,
  emptyStats,
  parseEventBody,
  parseMs,
  settleDelivery,
  UndecodableEventError,
  warnConsumerError,
} from './delivery.js';
import type { ConsumerLedger } from './ledger.js';

export * from './delivery.js';

/** How long the server waits for an ack before it redelivers (also after a crash). */
export const defaultNatsAckWaitMs = 30_000;
/** Deliveries of one message before JetStream stops redelivering it (it stays in the stream; an advisory is sent). */
export const defaultNatsMaxDeliver = 20;
/** The pause a failed delivery asks for before its redelivery (`nak` delay). */
export const defaultNatsRedeliveryDelayMs = 1000;
/** Messages pulled ahead of the handler; they wait in memory, unacked. */
export const defaultNatsBatchSize = 16;

export interface ConsumeNatsOptions<Tx> {
  connection: NatsConnection;
  stream: string;
  /** The durable consumer's name: created when missing, its ack settings updated when present. */
  durable: string;
  /** Only these subjects of the stream. Default: all of them. */
  filterSubject?: string;
  ledger: ConsumerLedger<Tx>;
  handle: EventHandler<Tx>;
  /** Aborting stops pulling; the delivery in hand finishes (commit and ack) first. */
  signal: AbortSignal;
  /** Default `defaultNatsAckWaitMs`; must exceed your slowest handler, or its message is redelivered meanwhile (and then skipped). */
  ackWaitMs?: number;
  /** Default `defaultNatsMaxDeliver`. */
  maxDeliver?: number;
  /** Default `defaultNatsRedeliveryDelayMs`. */
  redeliveryDelayMs?: number;
  /** Default `defaultNatsBatchSize`. */
  batchSize?: number;
  onError?: ConsumerErrorListener;
}

/**
 * Consumes until `signal` aborts, one delivery at a time, and resolves with the counts. Rejects
 * with `ConsumerStoppedError` when the subscription ends by itself (the connection closed).
 * Reconnects in between are the nats client's own.
 */
export async function consumeNats<Tx>(options: ConsumeNatsOptions<Tx>): Promise<ConsumerStats> {
  const stats = emptyStats();
  const onError = options.onError ?? warnConsumerError;
  const redeliveryDelayMs = wholeMs(
    'redeliveryDelayMs',
    options.redeliveryDelayMs ?? defaultNatsRedeliveryDelayMs,
  );
  const batchSize = options.batchSize ?? defaultNatsBatchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new TypeError(`batchSize must be ≥ 1, got ${batchSize}`);
  await ensureDurable(await options.connection.jetstreamManager(), options);
  if (options.signal.aborted) return stats;
  const consumer = await options.connection.jetstream().consumers.get(options.stream, options.durable);
  const messages = await consumer.consume({ max_messages: batchSize });
  const stop = () => messages.stop();
  options.signal.addEventListener('abort', stop, { once: true });
  // Aborted while the consumer was being set up: the listener above will not fire.
  if (options.signal.aborted) stop();
  // A closed connection does not end the iterator by itself: it would wait forever.
  void options.connection.closed().then(stop, stop);
  let failure: unknown;
  try {
    for await (const message of messages) {
      await deliver(message, options, stats, onError, redeliveryDelayMs);
      if (options.signal.aborted) break;
    }
  } catch (error) {
    failure = error;
  } finally {
    options.signal.removeEventListener('abort', stop);
    await messages.close().catch(() => {});
  }
  if (options.signal.aborted) return stats;
  const detail = options.connection.isClosed() ? 'its NATS connection closed' : 'the subscription ended';
  throw new ConsumerStoppedError('nats', detail, stats, { cause: failure });
}

async function deliver<Tx>(
  message: JsMsg,
  options: ConsumeNatsOptions<Tx>,
  stats: ConsumerStats,
  onError: ConsumerErrorListener,
  redeliveryDelayMs: number,
): Promise<void> {
  let event: ConsumedEvent;
  try {
    event = decodeNatsEvent(message);
  } catch (error) {
    stats.undecodable++;
    onError(error, { stage: 'decode' });
    // Redelivering it could only fail again.
    ignoreClosed(() => message.term());
    return;
  }
  const settlement = await settleDelivery(options.ledger, event, options.handle, stats, onError);
  if (settlement === 'redeliver') {
    ignoreClosed(() => message.nak(redeliveryDelayMs));
    return;
  }
  if (options.connection.isClosed()) {
    onError(new ConsumerAckError(event.id, new Error('the NATS connection is closed')), {
      stage: 'ack',
      eventId: event.id,
    });
    return;
  }
  try {
    // Acked with the server's answer, so a lost ack is seen (and reported) instead of assumed.
    await message.ackAck();
  } catch (error) {
    onError(new ConsumerAckError(event.id, error), { stage: 'ack', eventId: event.id });
  }
}

/** The event of a message the NATS relay published (or any message with a `Nats-Msg-Id`). */
export function decodeNatsEvent(message: JsMsg): ConsumedEvent {
  const id = message.headers?.get(natsEventHeaders.messageId) ?? '';
  if (id === '')
    throw new UndecodableEventError(
      'nats',
      `message ${message.seq} on ${message.subject} has no Nats-Msg-Id`,
    );
  const topic = message.headers?.get(natsEventHeaders.topic) || message.subject;
  return {
    id,
    topic,
    payload: parseEventBody('nats', id, message.data),
    createdAtMs: parseMs(message.headers?.get(natsEventHeaders.createdAtMs)),
    redelivered: message.redelivered,
  };
}

async function ensureDurable<Tx>(manager: JetStreamManager, options: ConsumeNatsOptions<Tx>): Promise<void> {
  const ackWaitMs = wholeMs('ackWaitMs', options.ackWaitMs ?? defaultNatsAckWaitMs);
  const maxDeliver = options.maxDeliver ?? defaultNatsMaxDeliver;
  if (!Number.isSafeInteger(maxDeliver) || maxDeliver < 1)
    throw new TypeError(`maxDeliver must be ≥ 1, got ${maxDeliver}`);
  const settings = {
    ack_wait: nanos(ackWaitMs),
    max_deliver: maxDeliver,
    ...(options.filterSubject === undefined ? {} : { filter_subject: options.filterSubject }),
  };
  let current: ConsumerConfig;
  try {
    current = (await manager.consumers.info(options.stream, options.durable)).config;
  } catch (error) {
    // 10014: consumer not found. Anything else (no stream, no permission) is the caller's to see.
    if ((error as NatsError).api_error?.err_code !== 10014) throw error;
    await manager.consumers.add(options.stream, {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      ...settings,
    });
    return;
  }
  // Updating resets the server's delivery counts of pending messages: only when a setting changed.
  const unchanged =
    current.ack_wait === settings.ack_wait &&
    current.max_deliver === settings.max_deliver &&
    (options.filterSubject === undefined || current.filter_subject === options.filterSubject);
  if (!unchanged) await manager.consumers.update(options.stream, options.durable, settings);
}

function ignoreClosed(settle: () => void): void {
  try {
    settle();
  } catch {
    // The connection is gone: the server redelivers after ackWaitMs anyway.
  }
}

function wholeMs(what: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new TypeError(`${what} must be a whole number of milliseconds ≥ 0, got ${ms}`);
  return ms;
}
