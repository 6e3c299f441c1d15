// What a relay publishes and answers: an outbox event as the job runner reads it, and the
// broker's confirmation. Structural, so the outbox and the relays never import each other.

/** A JSON value: what an event's payload may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One outbox row, as the job handler hands it to a relay. */
export interface OutboxEvent {
  /** Stable across every attempt (a uuid): brokers and consumers deduplicate by it. */
  readonly id: string;
  /** What happened, e.g. `order.created`; the default subject or routing key is derived from it. */
  readonly topic: string;
  /** The event's body: a JSON value (not its text), sent as `application/json`. */
  readonly payload: unknown;
  /** When the business transaction wrote the row. */
  readonly createdAtMs: number;
}

/** The broker confirmed the message: it is stored (NATS) or routed and confirmed (RabbitMQ). */
export interface PublishResult {
  /**
   * True when the broker said it already held a message with this id (NATS JetStream within
   * the stream's duplicate window). RabbitMQ cannot tell, so it is always false there: its
   * consumers deduplicate with the consumer ledger.
   */
  duplicate: boolean;
}

/**
 * What the job handler calls for each event. Resolves only once the broker confirmed the
 * message; a throw means "not confirmed, retry later with the same event".
 */
export interface EventRelay {
  publish(event: OutboxEvent): Promise<PublishResult>;
}
