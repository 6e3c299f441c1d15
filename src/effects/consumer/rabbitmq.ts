// `retrysafe/consumer/rabbitmq`: consumes a RabbitMQ queue with manual acks, each event processed
// once through the consumer ledger: acked after its commit, nack'ed back to the queue when it throws.
import { setTimeout as afterMs, clearTimeout as cancelTimer } from 'node:timers';
import type { Channel, ConsumeMessage } from 'amqplib';
import { rabbitCreatedAtMsHeader } from '../relays/wire.js';
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

/** Unacked deliveries the broker hands this consumer at once; they are processed concurrently. */
export const defaultRabbitPrefetch = 16;
/**
 * How long a failed delivery is held before it goes back to the queue. RabbitMQ requeues at
 * once and counts nothing on classic queues, so without a pause a failing handler would spin;
 * for a bound on attempts use a quorum queue's `x-delivery-limit` with a dead-letter exchange.
 */
export const defaultRabbitRequeueDelayMs = 1000;

/** A connection to open the consumer's own channel on; amqplib's `ChannelModel` fits. */
export interface RabbitChannelSource {
  createChannel(): Promise<Channel>;
}

interface ConsumeRabbitSettings<Tx> {
  /** The queue must exist (declare and bind it with your topology). */
  queue: string;
  ledger: ConsumerLedger<Tx>;
  handle: EventHandler<Tx>;
  /** Default `defaultRabbitPrefetch`. */
  prefetch?: number;
  /** Default `defaultRabbitRequeueDelayMs`. */
  requeueDelayMs?: number;
  /** Aborting cancels the consumer; deliveries in hand finish (commit and ack) first. */
  signal: AbortSignal;
  onError?: ConsumerErrorListener;
}

export type ConsumeRabbitOptions<Tx> = ConsumeRabbitSettings<Tx> &
  (
    | {
        /** Yours: its prefetch is set to `prefetch`; it is not closed afterwards. */
        channel: Channel;
        connection?: never;
      }
    | {
        /** The consumer opens its own channel on it and closes that channel when it stops. */
        connection: RabbitChannelSource;
        channel?: never;
      }
  );

/**
 * Consumes until `signal` aborts and resolves with the counts. Rejects with
 * `ConsumerStoppedError` when the channel closes or the broker cancels the consumer first
 * (unacked deliveries go back to the queue); start it again on a new channel.
 */
export async function consumeRabbit<Tx>(options: ConsumeRabbitOptions<Tx>): Promise<ConsumerStats> {
  const prefetch = options.prefetch ?? defaultRabbitPrefetch;
  if (!Number.isSafeInteger(prefetch) || prefetch < 1)
    throw new TypeError(`prefetch must be ≥ 1, got ${prefetch}`);
  const requeueDelayMs = options.requeueDelayMs ?? defaultRabbitRequeueDelayMs;
  if (!Number.isSafeInteger(requeueDelayMs) || requeueDelayMs < 0) {
    throw new TypeError(`requeueDelayMs must be a whole number of milliseconds ≥ 0, got ${requeueDelayMs}`);
  }
  const stats = emptyStats();
  if (options.signal.aborted) return stats;
  const owned = options.channel === undefined;
  const channel = options.channel ?? (await options.connection.createChannel());
  // A channel the broker closes emits 'error' before 'close'; unheard, it crashes the process.
  const ignoreError = () => {};
  channel.on('error', ignoreError);
  try {
    await channel.prefetch(prefetch);
  } catch (error) {
    channel.removeListener('error', ignoreError);
    throw new ConsumerStoppedError('rabbitmq', 'its channel refused the prefetch', stats, { cause: error });
  }
  const consumer = new RabbitConsumer(channel, owned, options, stats, requeueDelayMs, ignoreError);
  return consumer.run();
}

class RabbitConsumer<Tx> {
  readonly #inFlight = new Set<Promise<void>>();
  readonly #onError: ConsumerErrorListener;
  #consumerTag: string | undefined;
  #stopping = false;
  #settle!: { resolve: (stats: ConsumerStats) => void; reject: (error: unknown) => void };

  constructor(
    readonly channel: Channel,
    readonly owned: boolean,
    readonly options: ConsumeRabbitSettings<Tx>,
    readonly stats: ConsumerStats,
    readonly requeueDelayMs: number,
    readonly ignoreError: () => void,
  ) {
    this.#onError = options.onError ?? warnConsumerError;
  }

  run(): Promise<ConsumerStats> {
    const done = new Promise<ConsumerStats>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.channel.on('close', this.#onClose);
    this.options.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.channel
      .consume(this.options.queue, (message) => this.#receive(message), { noAck: false })
      .then(
        ({ consumerTag }) => {
          this.#consumerTag = consumerTag;
          // Stopped while the consume was being set up: cancel it now.
          if (this.#stopping) this.channel.cancel(consumerTag).catch(() => {});
        },
        (error: unknown) =>
          void this.#stop(
            new ConsumerStoppedError(
              'rabbitmq',
              `the broker refused to consume ${this.options.queue}`,
              this.stats,
              {
                cause: error,
              },
            ),
          ),
      );
    return done;
  }

  readonly #onAbort = () => void this.#stop();
  readonly #onClose = () =>
    void this.#stop(new ConsumerStoppedError('rabbitmq', 'its channel closed', this.stats));

  #receive(message: ConsumeMessage | null): void {
    if (message === null) {
      void this.#stop(
        new ConsumerStoppedError(
          'rabbitmq',
          `the broker cancelled the consumer (was queue ${this.options.queue} deleted?)`,
          this.stats,
        ),
      );
      return;
    }
    if (this.#stopping) {
      // Arrived after the cancel was asked for: back to the queue, unprocessed.
      this.#tryOn(() => this.channel.nack(message, false, true));
      return;
    }
    const delivery = this.#deliver(message).finally(() => this.#inFlight.delete(delivery));
    this.#inFlight.add(delivery);
  }

  async #deliver(message: ConsumeMessage): Promise<void> {
    let event: ConsumedEvent;
    try {
      event = decodeRabbitEvent(message);
    } catch (error) {
      this.stats.undecodable++;
      this.#onError(error, { stage: 'decode' });
      // Not requeued (it could only fail again): dead-lettered if the queue has a dead-letter exchange.
      this.#tryOn(() => this.channel.nack(message, false, false));
      return;
    }
    const settlement = await settleDelivery(
      this.options.ledger,
      event,
      this.options.handle,
      this.stats,
      this.#onError,
    );
    if (settlement === 'ack') {
      try {
        this.channel.ack(message);
      } catch (error) {
        this.#onError(new ConsumerAckError(event.id, error), { stage: 'ack', eventId: event.id });
      }
      return;
    }
    await pause(this.requeueDelayMs, this.options.signal);
    this.#tryOn(() => this.channel.nack(message, false, true));
  }

  async #stop(error?: ConsumerStoppedError): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.options.signal.removeEventListener('abort', this.#onAbort);
    this.channel.removeListener('close', this.#onClose);
    if (error === undefined && this.#consumerTag !== undefined) {
      await this.channel.cancel(this.#consumerTag).catch(() => {});
    }
    await Promise.allSettled([...this.#inFlight]);
    if (this.owned) await this.channel.close().catch(() => {});
    else this.channel.removeListener('error', this.ignoreError);
    if (error === undefined) this.#settle.resolve(this.stats);
    else this.#settle.reject(error);
  }

  #tryOn(settle: () => void): void {
    try {
      settle();
    } catch {
      // The channel is gone: the broker requeues every unacked delivery by itself.
    }
  }
}

/** The event of a message the RabbitMQ relay published (or any message with a `messageId`). */
export function decodeRabbitEvent(message: ConsumeMessage): ConsumedEvent {
  const id: unknown = message.properties.messageId;
  if (typeof id !== 'string' || id === '') {
    throw new UndecodableEventError(
      'rabbitmq',
      `a message from exchange "${message.fields.exchange}" (routing key "${message.fields.routingKey}") has no messageId`,
    );
  }
  const type: unknown = message.properties.type;
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const timestampSeconds = parseMs(message.properties.timestamp);
  return {
    id,
    topic: typeof type === 'string' && type !== '' ? type : message.fields.routingKey,
    payload: parseEventBody('rabbitmq', id, message.content),
    createdAtMs:
      parseMs(headers[rabbitCreatedAtMsHeader]) ??
      (timestampSeconds === undefined ? undefined : timestampSeconds * 1000),
    redelivered: message.fields.redelivered,
  };
}

/** Waits `ms`, or less when `signal` aborts (a stopping consumer hands its failures back at once). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms === 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      cancelTimer(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = afterMs(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
