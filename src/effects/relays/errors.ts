// The relay errors: one family, so a job handler can tell "the broker did not confirm, retry
// later" from "this event or this configuration can never be published".

export type RelayBroker = 'nats' | 'rabbitmq';

/** Base of every relay error. `retryable`: publishing the same event again later may succeed. */
export class RelayError extends Error {
  override name = 'RelayError';
  readonly broker: RelayBroker;
  readonly retryable: boolean;
  constructor(broker: RelayBroker, retryable: boolean, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.broker = broker;
    this.retryable = retryable;
  }
}

/**
 * Why a publish was not confirmed. Every one of them may still have reached the broker
 * (a lost confirmation is not a lost message), which is why the same event id is sent again.
 */
export type UnconfirmedReason =
  | 'timeout'
  | 'disconnected'
  | 'no-stream'
  | 'rejected'
  | 'nacked'
  | 'unroutable'
  | 'channel-closed'
  | 'unavailable';

/** The broker did not confirm the message: nothing is reported as published; retry later. */
export class RelayPublishError extends RelayError {
  override name = 'RelayPublishError';
  readonly eventId: string;
  readonly reason: UnconfirmedReason;
  constructor(
    broker: RelayBroker,
    eventId: string,
    reason: UnconfirmedReason,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      broker,
      true,
      `Event ${eventId} was not confirmed by ${brokerName(broker)} (${reason}): ${detail}. It may or may not have arrived; publish it again with the same id later, and the duplicate is discarded.`,
      options,
    );
    this.eventId = eventId;
    this.reason = reason;
  }
}

/** The event cannot be published as it is (no id, no topic, a payload that is not JSON): not retryable. */
export class InvalidEventError extends RelayError {
  override name = 'InvalidEventError';
  constructor(broker: RelayBroker, problem: string) {
    super(broker, false, `This event cannot be published: ${problem}.`);
  }
}

/** `publish` after `close()`: create a new relay. */
export class RelayClosedError extends RelayError {
  override name = 'RelayClosedError';
  constructor(broker: RelayBroker) {
    super(broker, true, `This ${brokerName(broker)} relay was closed; publish through a new relay.`);
  }
}

/**
 * The stream forgets ids sooner than the relay may resend them: a redelivery after the window is
 * a duplicate the server cannot see. Refused before the stream is created or changed.
 */
export class DuplicateWindowTooShortError extends RelayError {
  override name = 'DuplicateWindowTooShortError';
  readonly stream: string;
  readonly duplicateWindowMs: number;
  readonly retryHorizonMs: number;
  constructor(stream: string, duplicateWindowMs: number, retryHorizonMs: number) {
    super(
      'nats',
      false,
      `Stream ${stream}: duplicateWindowMs (${duplicateWindowMs} ms) is shorter than the relay's retry horizon (${retryHorizonMs} ms), so an event resent late would be stored twice. Set duplicateWindowMs to at least retryHorizonMs (JetStream keeps each id in memory for the window), or shorten the outbox's retry schedule.`,
    );
    this.stream = stream;
    this.duplicateWindowMs = duplicateWindowMs;
    this.retryHorizonMs = retryHorizonMs;
  }
}

function brokerName(broker: RelayBroker): string {
  return broker === 'nats' ? 'NATS JetStream' : 'RabbitMQ';
}
