// The brokers `order.paid` events go to, from the environment (NATS_URL, AMQP_URL). Each driver
// is loaded only when its broker is configured, so a service without brokers needs neither.
import type { EventRelay } from 'retrysafe/relays/nats';
import type { CheckoutConfig } from '../config.js';

/** Events go to `<prefix>.<topic>` (NATS_SUBJECT_PREFIX); the stream captures `<prefix>.>`. */
export const defaultNatsSubjectPrefix = 'events';

/**
 * What the stream captures. JetStream lets one stream hold a subject, so services (or test and
 * chaos runs) sharing a NATS server each need their own prefix.
 */
export function natsSubjectsFor(prefix: string): string[] {
  return [`${prefix}.>`];
}

/** The subjects with the default prefix. */
export const natsEventSubjects = natsSubjectsFor(defaultNatsSubjectPrefix);
/**
 * The resends the stream deduplicates: an event is published again only when the broker's
 * confirmation of an earlier publish was lost, normally at the next attempt; this covers ten
 * attempts at the backoff's 10-minute cap plus a lease each. An event job keeps trying far
 * longer (a broker down for days), and a resend after the window is stored twice: the
 * consumer helper's ledger skips it (keep its retention past the event jobs' horizon).
 */
export const eventRetryHorizonMs = 10 * (600_000 + 30_000);
export const natsDuplicateWindowMs = 2 * 60 * 60_000;

export interface OpenRelays {
  relays: EventRelay[];
  close(): Promise<void>;
}

export async function openRelays(config: CheckoutConfig): Promise<OpenRelays> {
  const relays: EventRelay[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    if (config.natsUrl !== undefined) {
      const [{ connect }, { createNatsRelay, ensureNatsStream }] = await Promise.all([
        import('nats'),
        import('retrysafe/relays/nats'),
      ]);
      // Reconnects for ever (the client's default gives up after 10 tries, about 20 s, and a
      // closed connection would refuse every later publish until a restart).
      const connection = await connect({
        servers: config.natsUrl,
        timeout: 5_000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 2_000,
      });
      closers.push(() => connection.close());
      await ensureNatsStream(connection, {
        name: config.natsStream,
        subjects: natsSubjectsFor(config.natsSubjectPrefix),
        duplicateWindowMs: natsDuplicateWindowMs,
        retryHorizonMs: eventRetryHorizonMs,
      });
      const prefix = config.natsSubjectPrefix;
      relays.push(
        createNatsRelay({
          connection,
          stream: config.natsStream,
          subject: (event) => `${prefix}.${event.topic}`,
        }),
      );
    }
    if (config.amqpUrl !== undefined) {
      const { createRabbitRelay } = await import('retrysafe/relays/rabbitmq');
      // Mandatory (the default): with no queue bound to the exchange an event is refused and
      // retried, never acknowledged and dropped. Bind your consumers' queues first.
      const relay = createRabbitRelay({
        url: config.amqpUrl,
        exchange: config.amqpExchange,
        exchangeType: 'topic',
      });
      closers.push(() => relay.close());
      relays.push(relay);
    }
  } catch (error) {
    await Promise.allSettled(closers.map((close) => close()));
    throw error;
  }
  return {
    relays,
    async close() {
      await Promise.allSettled(closers.map((close) => close()));
    },
  };
}
