// The consumer ledger's contract, shared by its SQLite and PostgreSQL forms: which event ids a
// consumer has processed, recorded in the same transaction as what processing them wrote.

export const defaultConsumerLedgerTableName = 'retrysafe_processed_events';

/** The migration part of the ledger's table: `retrysafe.consumer-ledger`, or `…:<table>` for another table. */
export function consumerLedgerPart(tableName: string = defaultConsumerLedgerTableName): string {
  return tableName === defaultConsumerLedgerTableName
    ? 'retrysafe.consumer-ledger'
    : `retrysafe.consumer-ledger:${tableName}`;
}

/** `processed: false`: this consumer had already processed the event; the work did not run. */
export type ProcessOnceResult<R> = { processed: true; result: R } | { processed: false };

export interface ReapOptions {
  /**
   * Ids processed longer ago than this are forgotten. It must cover the sender's whole retry
   * horizon (the outbox's retry schedule, e.g. about 28 h for the webhook schedule) plus the
   * broker's own redelivery time: an id forgotten earlier makes a late redelivery look new.
   */
  olderThanMs: number;
  /** At most this many rows are deleted by one call (a bounded batch); call again while `deleted === limit`. */
  limit: number;
}

export interface ConsumerLedger<Tx> {
  /** Who is consuming: ids are remembered per consumer, so two services may process one event each. */
  readonly consumer: string;
  /**
   * In one transaction: records `eventId` for this consumer unless it is already there, and
   * only then runs `work` with the transaction. A throw rolls back the work and the id alike,
   * so a redelivery processes the event again.
   */
  processOnce<R>(eventId: string, work: (tx: Tx) => Promise<R> | R): Promise<ProcessOnceResult<R>>;
  /** Deletes processed ids older than `olderThanMs`, at most `limit` of them. */
  reap(options: ReapOptions): Promise<{ deleted: number }>;
}

export interface ConsumerLedgerSettings {
  /** A stable name for this consumer (service and purpose), e.g. `billing.order-events`. */
  consumer: string;
  /** Default `retrysafe_processed_events`. */
  tableName?: string;
  /**
   * When given, `reap` refuses an `olderThanMs` shorter than this: the sender's retry horizon.
   */
  retryHorizonMs?: number;
  /** The clock of `processed_at_ms` and of `reap`; for tests. Default `Date.now`. */
  now?: () => number;
}

/** The settings, validated and filled once at construction. */
export interface LedgerSettings {
  consumer: string;
  tableName: string;
  retryHorizonMs: number | undefined;
  now: () => number;
}

export function ledgerSettings(settings: ConsumerLedgerSettings, tablePattern: RegExp): LedgerSettings {
  checkConsumerName(settings.consumer);
  const tableName = settings.tableName ?? defaultConsumerLedgerTableName;
  if (!tablePattern.test(tableName)) throw new TypeError(`tableName ${tableName} is not a plain identifier`);
  const { retryHorizonMs } = settings;
  if (retryHorizonMs !== undefined && (!Number.isSafeInteger(retryHorizonMs) || retryHorizonMs < 0)) {
    throw new TypeError(`retryHorizonMs must be a whole number of milliseconds ≥ 0, got ${retryHorizonMs}`);
  }
  return { consumer: settings.consumer, tableName, retryHorizonMs, now: settings.now ?? Date.now };
}

/** An id a broker handed over cannot be deduplicated unless it is a usable key. */
export function checkEventId(eventId: string): void {
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 255) {
    throw new TypeError(`an event id must be a string of 1–255 characters, got ${JSON.stringify(eventId)}`);
  }
}

function checkConsumerName(consumer: string): void {
  if (typeof consumer !== 'string' || consumer.length === 0 || consumer.length > 200) {
    throw new TypeError(`consumer must be a name of 1–200 characters, got ${JSON.stringify(consumer)}`);
  }
}

/** The reap bounds, checked once for both dialects; returns the cutoff (ids processed before it go). */
export function reapCutoffMs(options: ReapOptions, settings: LedgerSettings): number {
  const { olderThanMs, limit } = options;
  if (!Number.isSafeInteger(olderThanMs) || olderThanMs < 0) {
    throw new TypeError(`olderThanMs must be a whole number of milliseconds ≥ 0, got ${olderThanMs}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxReapLimit) {
    throw new TypeError(`limit must be a whole number from 1 to ${maxReapLimit}, got ${limit}`);
  }
  if (settings.retryHorizonMs !== undefined && olderThanMs < settings.retryHorizonMs) {
    throw new RangeError(
      `reap olderThanMs (${olderThanMs} ms) is shorter than the sender's retry horizon (${settings.retryHorizonMs} ms): an event resent after its id was forgotten would be processed twice. Keep ids at least retryHorizonMs.`,
    );
  }
  return settings.now() - olderThanMs;
}

/** The largest batch one `reap` call deletes, so a backlog never becomes one long transaction. */
export const maxReapLimit = 10_000;
