// Waiting for another process's SQLite write lock without blocking the event loop: each try
// blocks at most busy_timeout (short); between tries the wait is asynchronous, up to a bound.
import { performance } from 'node:perf_hooks';
// From node:timers, so tests that fake the global timers cannot stall a wait for the lock.
import { setTimeout as afterMs } from 'node:timers';

/**
 * busy_timeout of every connection retrysafe opens or wraps: how long one try for a lock another
 * connection holds may block the event loop (better-sqlite3 is synchronous). Longer waits are
 * asynchronous, bounded by `lockWaitMs`.
 */
export const sqliteBusyTimeoutMs = 25;

/** Default bound on the whole wait for another process's write lock before a 503. */
export const defaultSqliteLockWaitMs = 5000;

/**
 * busy_timeout while `migrate()` runs at start-up: synchronous, so several processes starting
 * on one file take turns, as before the wait became asynchronous.
 */
export const sqliteMigrationBusyTimeoutMs = 5000;

/** The first pause between tries; it doubles up to `maxLockRetryDelayMs`. */
const firstLockRetryDelayMs = 2;
const maxLockRetryDelayMs = 50;

/**
 * Another connection held the file's write lock for longer than `lockWaitMs`: nothing was
 * written. Keeps SQLite's code, so every "database unavailable" check treats it as SQLITE_BUSY;
 * a transaction that cannot start surfaces as `TransactionUnavailableError` (503) instead.
 */
export class SqliteLockWaitError extends Error {
  override name = 'SqliteLockWaitError';
  readonly code = 'SQLITE_BUSY';
  readonly lockWaitMs: number;
  constructor(lockWaitMs: number, cause: unknown) {
    super(
      `Another connection held the SQLite write lock for more than lockWaitMs (${lockWaitMs} ms), so nothing was written. Retry later; if this is frequent, shorten the other process's transactions or raise lockWaitMs.`,
      { cause },
    );
    this.lockWaitMs = lockWaitMs;
  }
}

export function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)(_|$)/.test(code);
}

export function validLockWaitMs(lockWaitMs: number): number {
  if (!Number.isFinite(lockWaitMs) || lockWaitMs < 0) {
    throw new TypeError(`lockWaitMs must be a finite number of milliseconds ≥ 0, got ${lockWaitMs}`);
  }
  return lockWaitMs;
}

/** When a wait that starts now for at most `lockWaitMs` ends; monotonic, unaffected by fake Date. */
export interface LockDeadline {
  readonly lockWaitMs: number;
  readonly atMs: number;
}

export function lockDeadline(lockWaitMs: number): LockDeadline {
  return { lockWaitMs, atMs: performance.now() + lockWaitMs };
}

/**
 * Runs `attempt` — synchronous, and either done or nothing changed when it throws SQLITE_BUSY —
 * until it does not fail for the lock, pausing asynchronously between tries, at least once and
 * until `deadline`; then throws `SqliteLockWaitError`. The caller holds this connection's
 * in-process write lock throughout, so nothing of another request runs on it meanwhile.
 */
export async function whileSqliteBusy<T>(attempt: () => T, deadline: LockDeadline): Promise<T> {
  let delayMs = firstLockRetryDelayMs;
  for (;;) {
    try {
      return attempt();
    } catch (error) {
      if (!isSqliteBusy(error)) throw error;
      const leftMs = deadline.atMs - performance.now();
      if (leftMs <= 0) throw new SqliteLockWaitError(deadline.lockWaitMs, error);
      await new Promise((resolve) => afterMs(resolve, Math.min(delayMs, leftMs)));
      delayMs = Math.min(delayMs * 2, maxLockRetryDelayMs);
    }
  }
}
