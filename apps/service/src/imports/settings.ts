// The bounds of a bulk import and of the operations behind them, and the environment that
// changes them.
import { minOperationRetentionMs } from 'retrysafe/operations';

/** The most orders one import takes. */
export const maxImportOrders = 10_000;
/** Orders per batch: per step of the import's job, so a kill repeats at most this many. */
export const importBatchSize = 500;
/**
 * 16 MiB: 10,000 orders of about 1.6 KiB each (a few items and a note). Larger is 413 before
 * anything is stored; the input is kept in the database until the import ends.
 */
export const importBodyLimitBytes = 16 * 1024 * 1024;
/** The job topic of imports. */
export const importJobTopic = 'orders.import';
/** How often the operations past their retention are reaped, and how many per pass. */
export const operationsReapIntervalMs = 60_000;
export const operationsReapBatch = 1000;

/**
 * OPERATIONS_RETENTION_MS: how long ended operations are kept. At least 24 h (PROTOCOL rule 21);
 * a shorter value is refused at start rather than silently raised.
 */
export function operationsRetentionFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.OPERATIONS_RETENTION_MS;
  if (raw === undefined || raw === '') return minOperationRetentionMs;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < minOperationRetentionMs)
    throw new Error(
      `OPERATIONS_RETENTION_MS=${raw} must be a whole number of milliseconds ≥ ${minOperationRetentionMs} (24 h)`,
    );
  return ms;
}

/**
 * RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS (only with RETRYSAFE_TEST_HOOKS=1): a pause after each
 * committed batch, logged, so tests can kill or cancel an import between batches. The import
 * runs in a job, not a request, so a request's hold point cannot reach it.
 */
export function importBatchPauseFromEnv(testHooks: boolean, env: NodeJS.ProcessEnv = process.env): number {
  if (!testHooks) return 0;
  const ms = Number(env.RETRYSAFE_TEST_IMPORT_BATCH_PAUSE_MS ?? 0);
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 60_000) : 0;
}
