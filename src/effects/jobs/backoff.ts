// How long a failed job waits before its next attempt: capped exponential growth (or a fixed
// schedule) with jitter, so a downstream that failed many jobs at once is not hit by all of them
// again at the same moment.

export interface BackoffOptions {
  /** The delay after the first failed attempt, doubled (`factor`) after each next one. Default 1000 ms. */
  baseMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** The cap of the growing delay. Default 600,000 ms (10 minutes). */
  maxMs?: number;
  /**
   * A fixed schedule instead: the delay after failed attempt n is `scheduleMs[n - 1]`, the last
   * entry repeating (e.g. `[0, 5_000, 300_000, 1_800_000]`).
   */
  scheduleMs?: readonly number[];
  /**
   * The share of each delay drawn at random: 0 none, 1 "full jitter" (anywhere from 0 to the
   * delay). Default 0.5: from half the delay to all of it, so a retry never comes right back.
   */
  jitter?: number;
}

export const defaultBackoff = { baseMs: 1000, factor: 2, maxMs: 600_000, jitter: 0.5 } as const;

/** The delay after failed attempt `attempt` (1-based), given a uniform random number in [0, 1). */
export type BackoffDelay = (attempt: number, random: number) => number;

export function createBackoff(options: BackoffOptions = {}): BackoffDelay {
  const jitter = options.jitter ?? defaultBackoff.jitter;
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1)
    throw new TypeError(`backoff.jitter must be from 0 to 1, got ${jitter}`);
  const raw = options.scheduleMs !== undefined ? scheduled(options.scheduleMs) : exponential(options);
  return (attempt, random) => {
    const delayMs = raw(Math.max(1, attempt));
    return Math.round(delayMs - delayMs * jitter * random);
  };
}

function scheduled(scheduleMs: readonly number[]): (attempt: number) => number {
  if (!Array.isArray(scheduleMs) || scheduleMs.length === 0)
    throw new TypeError('backoff.scheduleMs must list at least one delay in milliseconds');
  for (const delayMs of scheduleMs) checkMs('backoff.scheduleMs entries', delayMs);
  const schedule = [...scheduleMs];
  return (attempt) => schedule[Math.min(attempt, schedule.length) - 1]!;
}

function exponential(options: BackoffOptions): (attempt: number) => number {
  const baseMs = checkMs('backoff.baseMs', options.baseMs ?? defaultBackoff.baseMs);
  const maxMs = checkMs('backoff.maxMs', options.maxMs ?? defaultBackoff.maxMs);
  const factor = options.factor ?? defaultBackoff.factor;
  if (!Number.isFinite(factor) || factor < 1)
    throw new TypeError(`backoff.factor must be ≥ 1, got ${factor}`);
  if (maxMs < baseMs)
    throw new TypeError(`backoff.maxMs (${maxMs}) must be at least backoff.baseMs (${baseMs})`);
  return (attempt) => Math.min(maxMs, baseMs * factor ** (attempt - 1));
}

function checkMs(what: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
    throw new TypeError(`${what} must be a finite number of milliseconds ≥ 0, got ${ms}`);
  return ms;
}
