// `retrysafe/relays/rabbitmq`: publishes outbox events to a RabbitMQ exchange on a confirm
// channel (persistent, `messageId` = event id) and reports success only on the broker's ack.
// RabbitMQ cannot drop duplicates itself: consumers do, with the consumer ledger.
import { setTimeout as afterMs, clearTimeout as cancelTimer } from 'node:timers';
import { type ChannelModel, type ConfirmChannel, connect, type Message } from 'amqplib';
import { RelayClosedError, RelayPublishError } from './errors.js';
import type { EventRelay, OutboxEvent, PublishResult } from './types.js';
import { checkEvent, encodeEventBody, eventContentType, rabbitCreatedAtMsHeader } from './wire.js';

export * from './errors.js';
export type * from './types.js';

/** How long a publish waits for the broker's confirm before it fails (retry later). */
export const defaultRabbitConfirmTimeoutMs = 5000;
/** How long opening a connection from `url` may take. */
export const defaultRabbitConnectTimeoutMs = 5000;

/** A connection of yours to open confirm channels on; amqplib's `ChannelModel` and its recovering connection fit. */
export interface RabbitConnectionLike {
  createConfirmChannel(): Promise<ConfirmChannel>;
}

export type RabbitExchangeType = 'topic' | 'direct' | 'fanout' | 'headers';

interface RabbitRelaySettings {
  /** Declared durable on every channel the relay opens (`''`, the default exchange, is not declared). */
  exchange: string;
  exchangeType: RabbitExchangeType;
  /** Default: the event's topic. */
  routingKey?: (event: OutboxEvent) => string;
  /** Default `defaultRabbitConfirmTimeoutMs`. */
  confirmTimeoutMs?: number;
  /**
   * Published `mandatory`: a message no queue is bound to receive comes back, and the publish
   * fails as `unroutable` instead of being acked and dropped. Default true; set false for an
   * exchange that may rightly have no subscribers.
   */
  mandatory?: boolean;
}

export type RabbitRelayOptions = RabbitRelaySettings &
  (
    | {
        /** The relay opens (and after a loss reopens) its own connection; `close()` closes it. */
        url: string;
        /** Default `defaultRabbitConnectTimeoutMs`. */
        connectTimeoutMs?: number;
        connection?: never;
      }
    | {
        /** Yours: the relay opens channels on it and never closes it. */
        connection: RabbitConnectionLike;
        url?: never;
        connectTimeoutMs?: never;
      }
  );

/** A confirm channel and the ids of messages the broker returned as unroutable on it. */
interface OpenChannel {
  channel: ConfirmChannel;
  returned: Map<string, number>;
}

export class RabbitRelay implements EventRelay {
  readonly exchange: string;
  readonly exchangeType: RabbitExchangeType;
  readonly confirmTimeoutMs: number;
  readonly mandatory: boolean;
  readonly #routingKey: (event: OutboxEvent) => string;
  readonly #url: string | undefined;
  readonly #connectTimeoutMs: number;
  readonly #given: RabbitConnectionLike | undefined;
  #owned: Promise<ChannelModel> | undefined;
  #channel: Promise<OpenChannel> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: RabbitRelayOptions) {
    if ((options.url === undefined) === (options.connection === undefined)) {
      throw new TypeError('createRabbitRelay needs exactly one of url or connection');
    }
    if (typeof options.exchange !== 'string') throw new TypeError('exchange must be a string');
    this.exchange = options.exchange;
    this.exchangeType = options.exchangeType;
    this.confirmTimeoutMs = positiveMs(
      'confirmTimeoutMs',
      options.confirmTimeoutMs ?? defaultRabbitConfirmTimeoutMs,
    );
    this.mandatory = options.mandatory ?? true;
    this.#routingKey = options.routingKey ?? ((event) => event.topic);
    this.#url = options.url;
    this.#connectTimeoutMs = positiveMs(
      'connectTimeoutMs',
      options.connectTimeoutMs ?? defaultRabbitConnectTimeoutMs,
    );
    this.#given = options.connection;
  }

  /**
   * Resolves once the broker confirmed the message (ack). Throws `RelayPublishError` on a nack,
   * an unroutable return, a confirm timeout, or a channel or connection that closed before the
   * confirm; the next publish opens a new channel (and, with `url`, a new connection).
   */
  publish(event: OutboxEvent): Promise<PublishResult> {
    if (this.#closed) return Promise.reject(new RelayClosedError('rabbitmq'));
    let attempt: Promise<PublishResult>;
    try {
      checkEvent('rabbitmq', event);
      attempt = this.#publish(event, this.#routingKey(event), encodeEventBody('rabbitmq', event));
    } catch (error) {
      return Promise.reject(error);
    }
    this.#inFlight.add(attempt);
    const forget = () => this.#inFlight.delete(attempt);
    attempt.then(forget, forget);
    return attempt;
  }

  async #publish(event: OutboxEvent, routingKey: string, body: Buffer): Promise<PublishResult> {
    let open: OpenChannel;
    try {
      open = await this.#openChannel();
    } catch (error) {
      throw new RelayPublishError(
        'rabbitmq',
        event.id,
        'unavailable',
        `no confirm channel could be opened (${messageOf(error)})`,
        { cause: error },
      );
    }
    return new Promise<PublishResult>((resolve, reject) => {
      let settled = false;
      const fail = (
        reason: 'timeout' | 'nacked' | 'unroutable' | 'channel-closed',
        detail: string,
        cause?: unknown,
      ) => {
        if (settled) return;
        settled = true;
        cancelTimer(timer);
        reject(new RelayPublishError('rabbitmq', event.id, reason, detail, { cause }));
      };
      const timer = afterMs(
        () => fail('timeout', `no confirm within confirmTimeoutMs (${this.confirmTimeoutMs} ms)`),
        this.confirmTimeoutMs,
      );
      const onConfirm = (error: unknown) => {
        // The broker sends a return before the ack of the same message; its mark is taken even
        // when the wait already timed out, so it cannot leak to a later publish of the same id.
        const returned = takeReturned(open, event.id);
        if (error) {
          if (messageOf(error) === 'message nacked') fail('nacked', 'the broker nacked it', error);
          else fail('channel-closed', `the channel closed before the confirm (${messageOf(error)})`, error);
        } else if (returned) {
          fail(
            'unroutable',
            `exchange "${this.exchange}" routed it to no queue (routing key "${routingKey}")`,
          );
        } else if (!settled) {
          settled = true;
          cancelTimer(timer);
          resolve({ duplicate: false });
        }
      };
      try {
        open.channel.publish(
          this.exchange,
          routingKey,
          body,
          {
            persistent: true,
            mandatory: this.mandatory,
            messageId: event.id,
            type: event.topic,
            contentType: eventContentType,
            // AMQP timestamps are whole seconds.
            timestamp: Math.floor(event.createdAtMs / 1000),
            headers: { [rabbitCreatedAtMsHeader]: event.createdAtMs },
          },
          onConfirm,
        );
      } catch (error) {
        // amqplib throws at once on a channel that already closed.
        this.#forgetChannel(open);
        fail('channel-closed', `the channel was closed (${messageOf(error)})`, error);
      }
    });
  }

  #openChannel(): Promise<OpenChannel> {
    if (this.#channel === undefined) {
      const opening = this.#newChannel();
      this.#channel = opening;
      opening.catch(() => {
        if (this.#channel === opening) this.#channel = undefined;
      });
    }
    return this.#channel;
  }

  async #newChannel(): Promise<OpenChannel> {
    const connection = this.#given ?? (await this.#ownConnection());
    const channel = await connection.createConfirmChannel();
    const open: OpenChannel = { channel, returned: new Map() };
    // A channel closed by the broker (an error) emits 'error' then 'close'; unheard, 'error' crashes the process.
    channel.on('error', () => {});
    channel.on('close', () => this.#forgetChannel(open));
    channel.on('return', (message: Message) => {
      const id = message.properties.messageId as unknown;
      if (typeof id === 'string') open.returned.set(id, (open.returned.get(id) ?? 0) + 1);
    });
    try {
      if (this.exchange !== '')
        await channel.assertExchange(this.exchange, this.exchangeType, { durable: true });
    } catch (error) {
      this.#forgetChannel(open);
      await channel.close().catch(() => {});
      throw error;
    }
    return open;
  }

  #forgetChannel(open: OpenChannel): void {
    const current = this.#channel;
    if (current === undefined) return;
    current.then(
      (known) => {
        if (known === open && this.#channel === current) this.#channel = undefined;
      },
      () => {},
    );
  }

  #ownConnection(): Promise<ChannelModel> {
    if (this.#owned === undefined) {
      const opening = connect(this.#url!, { timeout: this.#connectTimeoutMs }).then((connection) => {
        connection.on('error', () => {});
        connection.on('close', () => {
          if (this.#owned === opening) this.#owned = undefined;
          this.#channel = undefined;
        });
        return connection;
      });
      this.#owned = opening;
      opening.catch(() => {
        if (this.#owned === opening) this.#owned = undefined;
      });
    }
    return this.#owned;
  }

  /**
   * Refuses new publishes, waits for the ones in flight to be confirmed or fail (each bounded by
   * `confirmTimeoutMs`), then closes the channel and, with `url`, the connection.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel !== undefined) {
      await channel
        .then(
          (open) => open.channel.close(),
          () => {},
        )
        .catch(() => {});
    }
    const owned = this.#owned;
    this.#owned = undefined;
    if (owned !== undefined) {
      await owned
        .then(
          (connection) => connection.close(),
          () => {},
        )
        .catch(() => {});
    }
  }
}

export function createRabbitRelay(options: RabbitRelayOptions): RabbitRelay {
  return new RabbitRelay(options);
}

function takeReturned(open: OpenChannel, id: string): boolean {
  const count = open.returned.get(id);
  if (count === undefined) return false;
  if (count <= 1) open.returned.delete(id);
  else open.returned.set(id, count - 1);
  return true;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function positiveMs(what: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new TypeError(`${what} must be a positive whole number of milliseconds, got ${ms}`);
  }
  return ms;
}
