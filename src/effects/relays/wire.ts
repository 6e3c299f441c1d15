// How an event looks on the wire, decided once for the relays that write it and the consumer
// glue that reads it: the body is the payload's JSON, the id and topic travel as metadata.
import { InvalidEventError, type RelayBroker } from './errors.js';
import type { OutboxEvent } from './types.js';

export const eventContentType = 'application/json';

/** NATS headers. `Nats-Msg-Id` is JetStream's deduplication id; the others are for consumers. */
export const natsEventHeaders = {
  messageId: 'Nats-Msg-Id',
  eventId: 'Retrysafe-Event-Id',
  topic: 'Retrysafe-Topic',
  createdAtMs: 'Retrysafe-Created-At-Ms',
} as const;

/**
 * RabbitMQ carries the id in `messageId` and the topic in `type`; its `timestamp` has whole
 * seconds only, so the exact time travels in this header.
 */
export const rabbitCreatedAtMsHeader = 'retrysafe-created-at-ms';

const maxEventIdLength = 255;

/** Refuses an event no broker could carry or no consumer could deduplicate. */
export function checkEvent(broker: RelayBroker, event: OutboxEvent): void {
  if (typeof event.id !== 'string' || event.id.length === 0 || event.id.length > maxEventIdLength) {
    throw new InvalidEventError(broker, `its id must be a string of 1–${maxEventIdLength} characters`);
  }
  if (!/^[\x21-\x7e]+$/.test(event.id)) {
    throw new InvalidEventError(broker, `its id ${JSON.stringify(event.id)} must be printable ASCII`);
  }
  if (typeof event.topic !== 'string' || event.topic.length === 0) {
    throw new InvalidEventError(broker, `event ${event.id} has no topic`);
  }
  if (!Number.isFinite(event.createdAtMs)) {
    throw new InvalidEventError(broker, `event ${event.id} has no createdAtMs`);
  }
}

/** The payload's JSON text as bytes. */
export function encodeEventBody(broker: RelayBroker, event: OutboxEvent): Buffer {
  let text: string | undefined;
  try {
    text = JSON.stringify(event.payload);
  } catch (error) {
    throw new InvalidEventError(broker, `the payload of event ${event.id} is not JSON (${String(error)})`);
  }
  if (text === undefined) {
    throw new InvalidEventError(broker, `the payload of event ${event.id} is not a JSON value`);
  }
  return Buffer.from(text, 'utf8');
}
