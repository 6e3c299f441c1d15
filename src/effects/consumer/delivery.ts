// What the broker glue shares: the event a handler sees, the one rule for a delivery (process it
// once through the ledger, then ack; on a throw, hand it back), the errors and the counts.
import type { RelayBroker } from '../relays/errors.js';
import type { ConsumerLedger } from './ledger.js';

/** An event as a consumer receives it. */
export interface ConsumedEvent {
  /** The outbox id: `Nats-Msg-Id` or `messageId`. */
  id: string;
  topic: string;
  /** The parsed JSON body. */
  payload: unknown;
  /** When the sender's transaction wrote it; undefined when the message did not say. */
  createdAtMs: number | undefined;
  /** The broker says it delivered this message before (after a throw, a crash, a lost ack). */
  redelivered: boolean;
}

/** Runs inside the ledger's transaction: its writes and the event's id commit together. */
export type EventHandler<Tx> = (event: ConsumedEvent, tx: Tx) => unknown;

/** Where a delivery failed: reading it, the handler (or its commit), or the ack after the commit. */
export type ConsumerErrorStage = 'decode' | 'handle' | 'ack';

/**
 * Told about every delivery that did not end in an ack; the consumer goes on with the next one.
 * Default: `process.emitWarning`.
 */
export type ConsumerErrorListener = (
  error: unknown,
  context: { stage: ConsumerErrorStage; eventId?: string },
) => void;

/** How the deliveries of one consumer run ended, for metrics and tests. */
export interface ConsumerStats {
  /** Handled and committed for the first time. */
  processed: number;
  /** Already in the ledger: acked without running the handler. */
  duplicates: number;
  /** The handler (or its transaction) threw: handed back for redelivery. */
  failed: number;
  /** No event id or a body that is not JSON: refused without redelivery. */
  undecodable: number;
}

/** A message that can never be processed (no id to deduplicate by, or not JSON): it is not redelivered. */
export class UndecodableEventError extends Error {
  override name = 'UndecodableEventError';
  readonly broker: RelayBroker;
  constructor(broker: RelayBroker, problem: string, options?: { cause?: unknown }) {
    super(`A ${broker} message was refused without redelivery: ${problem}.`, options);
    this.broker = broker;
  }
}

/** The ack after a commit was lost. Harmless: the redelivery finds the id in the ledger and is acked then. */
export class ConsumerAckError extends Error {
  override name = 'ConsumerAckError';
  readonly eventId: string;
  constructor(eventId: string, cause: unknown) {
    super(
      `Event ${eventId} was processed and committed, but its ack did not reach the broker; its redelivery will be skipped as a duplicate.`,
      { cause },
    );
    this.eventId = eventId;
  }
}

/** The broker ended the subscription (connection or channel closed, consumer deleted) before the signal asked. */
export class ConsumerStoppedError extends Error {
  override name = 'ConsumerStoppedError';
  readonly broker: RelayBroker;
  readonly stats: ConsumerStats;
  constructor(broker: RelayBroker, detail: string, stats: ConsumerStats, options?: { cause?: unknown }) {
    super(
      `The ${broker} consumer stopped: ${detail}. Unacked deliveries return to the queue; start the consumer again (on a new connection if it closed).`,
      options,
    );
    this.broker = broker;
    this.stats = stats;
  }
}

export function emptyStats(): ConsumerStats {
  return { processed: 0, duplicates: 0, failed: 0, undecodable: 0 };
}

export const warnConsumerError: ConsumerErrorListener = (error, context) => {
  process.emitWarning(
    error instanceof Error ? error : new Error(String(error)),
    `retrysafe consumer (${context.stage}${context.eventId === undefined ? '' : ` of ${context.eventId}`})`,
  );
};

/** What the glue does with the delivery once the ledger answered. */
export type Settlement = 'ack' | 'redeliver';

/**
 * The one rule for a delivery: run the handler through the ledger (once per id, in its
 * transaction); ack what committed or was already there; hand back what threw.
 */
export async function settleDelivery<Tx>(
  ledger: ConsumerLedger<Tx>,
  event: ConsumedEvent,
  handle: EventHandler<Tx>,
  stats: ConsumerStats,
  onError: ConsumerErrorListener,
): Promise<Settlement> {
  try {
    const outcome = await ledger.processOnce(event.id, (tx) => handle(event, tx));
    if (outcome.processed) stats.processed++;
    else stats.duplicates++;
    return 'ack';
  } catch (error) {
    stats.failed++;
    onError(error, { stage: 'handle', eventId: event.id });
    return 'redeliver';
  }
}

/** The body as JSON, or an `UndecodableEventError`. */
export function parseEventBody(broker: RelayBroker, eventId: string, body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (error) {
    throw new UndecodableEventError(broker, `the body of event ${eventId} is not JSON`, { cause: error });
  }
}

/** A millisecond timestamp header, or undefined when absent or malformed. */
export function parseMs(value: unknown): number | undefined {
  const ms =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && value !== ''
        ? Number(value)
        : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}
