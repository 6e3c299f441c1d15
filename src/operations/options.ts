// The stores' options and bounds, normalised once and validated at construction.

/** Operations are kept this long after they end (PROTOCOL rule 21: at least 24 h). */
export const defaultOperationRetentionMs = 24 * 60 * 60_000;
/** The shortest retention allowed unless `allowShortRetention` (tests) says otherwise. */
export const minOperationRetentionMs = defaultOperationRetentionMs;
/** The longest a `waitFor` waits, whatever it is asked (a `Prefer: wait` is capped lower). */
export const defaultMaxWaitMs = 120_000;
/** How often a wait re-reads the row when no in-process wake-up came (another process's change). */
export const defaultSqliteWaitPollMs = 1000;
export const defaultPostgresWaitPollMs = 500;
/** A list page holds at most this many operations. */
export const maxListLimit = 100;
export const defaultListLimit = 20;
/** A reap call deletes at most this many rows. */
export const maxReapLimit = 10_000;

export interface OperationStoreOptions {
  /** Plain identifier (PostgreSQL: optionally schema-qualified). Default `retrysafe_operations`. */
  tableName?: string;
  /** How long ended operations are kept before `reap` may delete them. Default 24 h. */
  retentionMs?: number;
  /** Allows a `retentionMs` under 24 h: for tests only (PROTOCOL rule 21 keeps them 24 h). */
  allowShortRetention?: boolean;
  /** The bound on one `waitFor`. Default 120,000 ms. */
  maxWaitMs?: number;
  /** How often a waiting `waitFor` re-reads the row. Default 1000 ms (SQLite) / 500 ms (PostgreSQL). */
  waitPollMs?: number;
  /** The clock rows are stamped with. Default `Date.now`. */
  now?: () => number;
}

export interface OperationStoreSettings {
  retentionMs: number;
  maxWaitMs: number;
  waitPollMs: number;
  now: () => number;
}

export function operationStoreSettings(
  options: OperationStoreOptions,
  defaultWaitPollMs: number,
): OperationStoreSettings {
  const retentionMs = positiveMs('retentionMs', options.retentionMs ?? defaultOperationRetentionMs);
  if (retentionMs < minOperationRetentionMs && options.allowShortRetention !== true) {
    throw new TypeError(
      `retentionMs ${retentionMs} is under 24 h: operations are kept at least 24 h (PROTOCOL rule 21); pass allowShortRetention: true only in tests`,
    );
  }
  return {
    retentionMs,
    maxWaitMs: positiveMs('maxWaitMs', options.maxWaitMs ?? defaultMaxWaitMs),
    waitPollMs: positiveMs('waitPollMs', options.waitPollMs ?? defaultWaitPollMs),
    now: options.now ?? Date.now,
  };
}

export function checkReapLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > maxReapLimit)
    throw new TypeError(`reap limit must be a whole number from 1 to ${maxReapLimit}, got ${limit}`);
  return limit;
}

function positiveMs(what: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)
    throw new TypeError(`${what} must be a finite number of milliseconds > 0, got ${ms}`);
  return ms;
}
