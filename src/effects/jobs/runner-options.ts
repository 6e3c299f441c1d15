// The runner's options, normalised once into a fully filled settings object and validated at
// construction, with every default and bound stated here.
import { type BackoffDelay, type BackoffOptions, createBackoff } from './backoff.js';
import type { JobHandler } from './context.js';
import { checkMaxAttempts, checkTopic } from './enqueue-input.js';
import type { JobEvent } from './events.js';
import type { JobQueue } from './types.js';

export const defaultConcurrency = 4;
export const defaultLeaseMs = 30_000;
export const defaultMaxAttempts = 10;
export const defaultRetentionMs = 7 * 24 * 60 * 60_000;
export const defaultPollIntervalMs = 2000;
export const defaultReapIntervalMs = 60_000;
export const defaultReapBatchSize = 1000;
/** A reap pass deletes at most this many batches; the rest waits for the next pass. */
export const defaultMaxReapBatches = 100;
export const defaultGraceMs = 10_000;
/** The most jobs one runner runs at once, and claims in one batch. */
export const maxConcurrency = 1000;

export interface JobRunnerOptions<Tx> {
  queue: JobQueue<Tx>;
  /** One handler per topic; only these topics are claimed. */
  handlers: Record<string, JobHandler<Tx>>;
  /** Jobs run at once by this runner. Default 4. */
  concurrency?: number;
  /** The most jobs one claim takes (never more than free slots). Default: `concurrency`. */
  batchSize?: number;
  /** How long a claim holds a job before another runner may take it over. Default 30,000 ms. */
  leaseMs?: number;
  /** How often a running job's lease is renewed (fenced). Default `leaseMs / 3`. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Attempts of jobs enqueued without `maxAttempts`. Default 10. */
  maxAttempts?: number;
  /** How long done and dead jobs are kept before the reaper deletes them. Default 7 days. */
  retentionMs?: number;
  /** How often a started runner reaps. Default 60,000 ms. */
  reapIntervalMs?: number;
  /** Rows deleted per reap statement. Default 1000. */
  reapBatchSize?: number;
  /** Reap statements per pass. Default 100. */
  maxReapBatches?: number;
  /**
   * The longest a started runner sleeps without looking for due jobs: the fallback for jobs it
   * is not woken for (another process on SQLite, a dropped LISTEN). Default 2000 ms.
   */
  pollIntervalMs?: number;
  /** Hears every event; a throw from it is ignored. */
  onEvent?: (event: JobEvent) => void;
  /** The clock for leases, backoff, retention and stats. Default: the queue's. */
  now?: () => number;
  /** Uniform in [0, 1), for the backoff's jitter. Default `Math.random`. */
  random?: () => number;
}

export interface RunnerSettings<Tx> {
  queue: JobQueue<Tx>;
  handlers: Map<string, JobHandler<Tx>>;
  topics: string[];
  concurrency: number;
  batchSize: number;
  leaseMs: number;
  heartbeatMs: number;
  backoff: BackoffDelay;
  maxAttempts: number;
  retentionMs: number;
  reapIntervalMs: number;
  reapBatchSize: number;
  maxReapBatches: number;
  pollIntervalMs: number;
  emit: (event: JobEvent) => void;
  now: () => number;
  random: () => number;
}

export function runnerSettings<Tx>(options: JobRunnerOptions<Tx>): RunnerSettings<Tx> {
  if (options?.queue === undefined) throw new TypeError('createJobRunner needs a queue');
  const handlers = new Map<string, JobHandler<Tx>>();
  for (const [topic, handler] of Object.entries(options.handlers ?? {})) {
    checkTopic(topic, 'handler topic');
    if (typeof handler !== 'function') throw new TypeError(`the handler of topic ${topic} is not a function`);
    handlers.set(topic, handler);
  }
  if (handlers.size === 0)
    throw new TypeError('createJobRunner needs at least one handler: { handlers: { topic: handler } }');
  const concurrency = count('concurrency', options.concurrency ?? defaultConcurrency, maxConcurrency);
  const leaseMs = positiveMs('leaseMs', options.leaseMs ?? defaultLeaseMs);
  const heartbeatMs = positiveMs('heartbeatMs', options.heartbeatMs ?? leaseMs / 3);
  if (heartbeatMs >= leaseMs)
    throw new TypeError(
      `heartbeatMs (${heartbeatMs}) must be shorter than leaseMs (${leaseMs}) to renew the lease in time`,
    );
  const onEvent = options.onEvent;
  return {
    queue: options.queue,
    handlers,
    topics: [...handlers.keys()],
    concurrency,
    batchSize: count('batchSize', options.batchSize ?? concurrency, maxConcurrency),
    leaseMs,
    heartbeatMs,
    backoff: createBackoff(options.backoff),
    maxAttempts: checkMaxAttempts(options.maxAttempts ?? defaultMaxAttempts),
    retentionMs: positiveMs('retentionMs', options.retentionMs ?? defaultRetentionMs),
    reapIntervalMs: positiveMs('reapIntervalMs', options.reapIntervalMs ?? defaultReapIntervalMs),
    reapBatchSize: count('reapBatchSize', options.reapBatchSize ?? defaultReapBatchSize, 100_000),
    maxReapBatches: count('maxReapBatches', options.maxReapBatches ?? defaultMaxReapBatches, 100_000),
    pollIntervalMs: positiveMs('pollIntervalMs', options.pollIntervalMs ?? defaultPollIntervalMs),
    emit: (event) => {
      try {
        onEvent?.(event);
      } catch {
        // A logging hook must never stop the runner.
      }
    },
    now: options.now ?? options.queue.now,
    random: options.random ?? Math.random,
  };
}

function count(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new TypeError(`${what} must be a whole number from 1 to ${max}, got ${value}`);
  return value;
}

function positiveMs(what: string, ms: number): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)
    throw new TypeError(`${what} must be a finite number of milliseconds > 0, got ${ms}`);
  return ms;
}
