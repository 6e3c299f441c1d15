// `retrysafe/relays/nats`: publishes outbox events to NATS JetStream with the event id as
// `Nats-Msg-Id`, so the server itself drops a resent duplicate within the stream's window.
import {
  headers,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type NatsError,
  nanos,
  type PubAck,
  StorageType,
} from 'nats';
import {
  DuplicateWindowTooShortError,
  InvalidEventError,
  RelayPublishError,
  type UnconfirmedReason,
} from './errors.js';
import type { EventRelay, OutboxEvent, PublishResult } from './types.js';
import { checkEvent, encodeEventBody, natsEventHeaders } from './wire.js';

export * from './errors.js';
export type * from './types.js';

/** How long a publish waits for the stream's PubAck before it fails (retry later). */
export const defaultNatsPublishTimeoutMs = 5000;

/** `events.<topic>`: what an event is published to when no `subject` is given. */
export function defaultNatsSubject(event: OutboxEvent): string {
  return `events.${event.topic}`;
}

export interface NatsRelayOptions {
  /** Your connection; its reconnects are the nats client's own. The relay never closes it. */
  connection: NatsConnection;
  /** The stream that must store the events (`expect.streamName`): a message another stream captured is refused. */
  stream: string;
  /** Where an event is published. Default `defaultNatsSubject`: `events.<topic>`. */
  subject?: (event: OutboxEvent) => string;
  /** Default `defaultNatsPublishTimeoutMs`. */
  publishTimeoutMs?: number;
}

export class NatsRelay implements EventRelay {
  readonly stream: string;
  readonly publishTimeoutMs: number;
  readonly #connection: NatsConnection;
  readonly #jetstream: JetStreamClient;
  readonly #subject: (event: OutboxEvent) => string;

  constructor(options: NatsRelayOptions) {
    checkStreamName(options.stream);
    this.stream = options.stream;
    this.publishTimeoutMs = positiveMs(
      'publishTimeoutMs',
      options.publishTimeoutMs ?? defaultNatsPublishTimeoutMs,
    );
    this.#connection = options.connection;
    this.#jetstream = options.connection.jetstream();
    this.#subject = options.subject ?? defaultNatsSubject;
  }

  /**
   * Resolves with the stream's PubAck: `duplicate` is true when the stream already held this
   * event id within its duplicate window. Throws `RelayPublishError` whenever no PubAck came
   * (timeout, disconnected, no stream on the subject, refused by the server): retry later.
   */
  async publish(event: OutboxEvent): Promise<PublishResult> {
    checkEvent('nats', event);
    const subject = this.#subject(event);
    checkSubject(event, subject);
    const body = encodeEventBody('nats', event);
    if (this.#connection.isClosed()) {
      throw new RelayPublishError('nats', event.id, 'disconnected', 'the NATS connection is closed');
    }
    const messageHeaders = headers();
    messageHeaders.set(natsEventHeaders.eventId, event.id);
    messageHeaders.set(natsEventHeaders.topic, event.topic);
    messageHeaders.set(natsEventHeaders.createdAtMs, String(event.createdAtMs));
    let ack: PubAck;
    try {
      ack = await this.#jetstream.publish(subject, body, {
        msgID: event.id,
        expect: { streamName: this.stream },
        headers: messageHeaders,
        timeout: this.publishTimeoutMs,
      });
    } catch (error) {
      const [reason, detail] = unconfirmedReason(error as NatsError, subject, this.publishTimeoutMs);
      throw new RelayPublishError('nats', event.id, reason, detail, { cause: error });
    }
    return { duplicate: ack.duplicate };
  }
}

export function createNatsRelay(options: NatsRelayOptions): NatsRelay {
  return new NatsRelay(options);
}

function unconfirmedReason(
  error: NatsError,
  subject: string,
  timeoutMs: number,
): [UnconfirmedReason, string] {
  if (error.api_error !== undefined) {
    return [
      'rejected',
      `the server refused it: ${error.api_error.description} (${error.api_error.err_code})`,
    ];
  }
  switch (error.code) {
    case 'TIMEOUT':
      return [
        'timeout',
        `no PubAck within publishTimeoutMs (${timeoutMs} ms); the server may be unreachable or reconnecting`,
      ];
    case '503':
      return ['no-stream', `no stream listens on subject ${subject}`];
    case 'CONNECTION_CLOSED':
    case 'CONNECTION_DRAINING':
    case 'DISCONNECT':
      return ['disconnected', `the NATS connection went away (${error.code})`];
    default:
      return ['rejected', error.message];
  }
}

export interface NatsStreamOptions {
  name: string;
  /** Subjects the stream captures, e.g. `['events.>']` for the default subjects. */
  subjects: string[];
  /**
   * How long JetStream remembers a `Nats-Msg-Id` and drops a message that repeats it. It must
   * cover `retryHorizonMs`; the server keeps each id of the window in memory.
   */
  duplicateWindowMs: number;
  /**
   * How long after an event's first publish the outbox may still publish it again: the whole
   * retry schedule of the relay job (plus its leases). A resend later than the window is stored twice.
   */
  retryHorizonMs: number;
  /** Where a stream created by this call keeps its messages. Default `file`. An existing stream keeps its own. */
  storage?: 'file' | 'memory';
}

export interface EnsuredNatsStream {
  /** False when the stream existed and was updated to these subjects and window. */
  created: boolean;
  duplicateWindowMs: number;
}

/**
 * Creates the stream, or updates an existing one's subjects and duplicate window (its other
 * settings are kept). Refuses, before touching the server, a window shorter than the retry
 * horizon (`DuplicateWindowTooShortError`).
 */
export async function ensureNatsStream(
  connection: NatsConnection,
  options: NatsStreamOptions,
): Promise<EnsuredNatsStream> {
  checkStreamName(options.name);
  const duplicateWindowMs = positiveMs('duplicateWindowMs', options.duplicateWindowMs);
  const retryHorizonMs = positiveMs('retryHorizonMs', options.retryHorizonMs);
  if (duplicateWindowMs < retryHorizonMs) {
    throw new DuplicateWindowTooShortError(options.name, duplicateWindowMs, retryHorizonMs);
  }
  if (options.subjects.length === 0) throw new TypeError(`stream ${options.name} needs at least one subject`);
  const manager = await connection.jetstreamManager();
  const existing = await streamConfig(manager, options.name);
  if (existing === undefined) {
    await manager.streams.add({
      name: options.name,
      subjects: options.subjects,
      duplicate_window: nanos(duplicateWindowMs),
      storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
    });
    return { created: true, duplicateWindowMs };
  }
  await manager.streams.update(options.name, {
    ...existing,
    subjects: options.subjects,
    duplicate_window: nanos(duplicateWindowMs),
  });
  return { created: false, duplicateWindowMs };
}

async function streamConfig(manager: JetStreamManager, name: string) {
  try {
    return (await manager.streams.info(name)).config;
  } catch (error) {
    // 10059: stream not found. Anything else (no JetStream, no permission) is the caller's to see.
    if ((error as NatsError).api_error?.err_code === 10059) return undefined;
    throw error;
  }
}

function checkStreamName(name: string): void {
  // JetStream's own rule: no whitespace, `.`, `*`, `>`, path separators.
  if (typeof name !== 'string' || !/^[^\s.*>/\\]{1,255}$/.test(name)) {
    throw new TypeError(
      `stream name ${JSON.stringify(name)} must be 1–255 characters without whitespace, . * > / \\`,
    );
  }
}

function checkSubject(event: OutboxEvent, subject: string): void {
  // A wildcard or an empty token would be refused by the server or captured by the wrong stream.
  if (typeof subject !== 'string' || !/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(subject)) {
    throw new InvalidEventError(
      'nats',
      `its subject ${JSON.stringify(subject)} (event ${event.id}) is not a NATS subject: dot-separated tokens without whitespace or wildcards`,
    );
  }
}

function positiveMs(what: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new TypeError(`${what} must be a positive whole number of milliseconds, got ${ms}`);
  }
  return ms;
}
