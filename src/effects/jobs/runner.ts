// The job runner: claims due jobs of its topics in bounded batches, runs each once with a lease
// (job execution), wakes on commit (LISTEN, or an in-process signal) instead of tight polling,
// reaps finished jobs after retention, and stops gracefully. Dialect-free: any `JobQueue`.
import { clearTimeout, setTimeout } from 'node:timers';
import { JobRunnerStoppedError } from './errors.js';
import { eventJobOf, type JobEvent, type JobRunnerActivity } from './events.js';
import { JobExecution } from './execution.js';
import {
  defaultGraceMs,
  type JobRunnerOptions,
  type RunnerSettings,
  runnerSettings,
} from './runner-options.js';
import type { QueueStats, QueueSubscription } from './types.js';
import { Wakeup } from './wakeup.js';

/** The shortest sleep when jobs are due but none could be claimed (another runner's claim holds them). */
const busyRetryMs = 10;
/** The first pause after the database failed a claim; it doubles up to `pollIntervalMs`. */
const firstFailurePauseMs = 50;
/** `drain()` stops after this many jobs unless told otherwise: a bound, not a target. */
const defaultDrainLimit = 100_000;

/** What this runner did since it was created. */
export interface JobRunnerCounters {
  claimed: number;
  completed: number;
  retried: number;
  dead: number;
  leaseLost: number;
  released: number;
  reaped: number;
}

export interface JobRunnerStats extends QueueStats {
  runner: JobRunnerCounters & {
    /** Jobs this runner runs right now, out of `concurrency`. */
    running: number;
    concurrency: number;
  };
}

export interface StopOptions {
  /** How long running jobs may take to finish before they are aborted and released. Default 10,000 ms. */
  graceMs?: number;
}

export class JobRunner<Tx> {
  readonly #settings: RunnerSettings<Tx>;
  readonly #running = new Set<JobExecution<Tx>>();
  readonly #wakeup = new Wakeup();
  readonly #counters: JobRunnerCounters = {
    claimed: 0,
    completed: 0,
    retried: 0,
    dead: 0,
    leaseLost: 0,
    released: 0,
    reaped: 0,
  };
  #state: 'idle' | 'running' | 'stopping' = 'idle';
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #subscription: QueueSubscription | undefined;
  #waitingForSlot = false;
  #lastReapAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: JobRunnerOptions<Tx>) {
    const settings = runnerSettings(options);
    const emit = settings.emit;
    this.#settings = {
      ...settings,
      emit: (event) => {
        this.#count(event);
        emit(event);
      },
    };
  }

  /** The topics this runner claims: those it has handlers for. */
  get topics(): readonly string[] {
    return this.#settings.topics;
  }

  /**
   * Starts claiming. Resolves once the wake-up source is set up (PostgreSQL: the first LISTEN
   * attempt settled; on failure it retries in the background while the runner polls).
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error('this job runner is started already: stop() it first');
    this.#state = 'running';
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => {
      subscribed = resolve;
    });
    this.#loop = this.#subscribeThenClaim(subscribed);
    await ready;
  }

  /**
   * Stops claiming, lets running jobs finish within `graceMs`, then aborts the rest and releases
   * them (fenced; back to queued, their attempt not counted), and stops listening. A handler
   * that ignores its aborted signal may still be running afterwards: its writes are fenced off.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (this.#state === 'idle') return Promise.resolve();
    const graceMs = options.graceMs ?? defaultGraceMs;
    if (!Number.isFinite(graceMs) || graceMs < 0)
      throw new TypeError(`graceMs must be a finite number of milliseconds ≥ 0, got ${graceMs}`);
    this.#state = 'stopping';
    this.#wakeup.notify();
    this.#stopping = this.#shutDown(graceMs).finally(() => {
      this.#state = 'idle';
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  /**
   * Claims one batch (up to `batchSize` and the free slots) and runs it to the end. For tests
   * and scripts; not while started. Resolves with the number of jobs claimed.
   */
  async runOnce(): Promise<number> {
    if (this.#state !== 'idle') throw new Error('runOnce() and drain() are for a runner that is not started');
    const executions = await this.#claim();
    await Promise.all(executions.map((execution) => execution.done));
    return executions.length;
  }

  /** Runs batches until no job is due (delayed retries wait), at most `maxJobs`. Resolves with the count. */
  async drain(options: { maxJobs?: number } = {}): Promise<number> {
    const maxJobs = options.maxJobs ?? defaultDrainLimit;
    let total = 0;
    while (total < maxJobs) {
      const ran = await this.runOnce();
      if (ran === 0) break;
      total += ran;
    }
    return total;
  }

  /**
   * Deletes done and dead jobs finished more than `retentionMs` ago, in batches of
   * `reapBatchSize`, at most `maxReapBatches` of them. Resolves with the rows deleted.
   */
  async reap(): Promise<number> {
    const { queue, now, retentionMs, reapBatchSize, maxReapBatches } = this.#settings;
    const finishedBeforeMs = now() - retentionMs;
    let total = 0;
    for (let batch = 0; batch < maxReapBatches; batch++) {
      const deleted = await queue.reap(finishedBeforeMs, reapBatchSize);
      total += deleted;
      if (deleted < reapBatchSize) break;
    }
    if (total > 0) this.#settings.emit({ type: 'reaped', count: total });
    return total;
  }

  /** The queue's counts (all topics) and this runner's own. */
  async stats(): Promise<JobRunnerStats> {
    const queue = await this.#settings.queue.stats(this.#settings.now());
    return {
      ...queue,
      runner: { ...this.#counters, running: this.#running.size, concurrency: this.#settings.concurrency },
    };
  }

  async #subscribeThenClaim(subscribed: () => void): Promise<void> {
    const topics = new Set(this.#settings.topics);
    try {
      this.#subscription = await this.#settings.queue.subscribe({
        wake: (topic) => {
          if (topic === undefined || topics.has(topic)) this.#wakeup.notify();
        },
        state: (state, error) =>
          this.#settings.emit(
            state === 'restored'
              ? { type: 'listen-restored' }
              : error === undefined
                ? { type: 'listen-lost' }
                : { type: 'listen-lost', error },
          ),
      });
    } catch (error) {
      this.#report('subscribe', error);
    } finally {
      subscribed();
    }
    await this.#claimLoop();
  }

  async #claimLoop(): Promise<void> {
    const { queue, topics, concurrency, batchSize, pollIntervalMs, now } = this.#settings;
    let failurePauseMs = firstFailurePauseMs;
    while (this.#state === 'running') {
      await this.#reapWhenDue();
      const free = concurrency - this.#running.size;
      if (free <= 0) {
        this.#waitingForSlot = true;
        await this.#wakeup.sleep(pollIntervalMs);
        this.#waitingForSlot = false;
        continue;
      }
      try {
        const claimed = await this.#claim(Math.min(batchSize, free));
        if (claimed.length === Math.min(batchSize, free)) continue;
        // Fewer than asked: nothing else is due now. Sleep until the next due time, a wake-up or the poll.
        const nextAtMs = await queue.nextDueAtMs(topics);
        const untilNextMs = nextAtMs === undefined ? pollIntervalMs : nextAtMs - now();
        failurePauseMs = firstFailurePauseMs;
        await this.#wakeup.sleep(Math.min(pollIntervalMs, Math.max(busyRetryMs, untilNextMs)));
      } catch (error) {
        this.#report('claim', error);
        await this.#wakeup.sleep(failurePauseMs);
        failurePauseMs = Math.min(failurePauseMs * 2, pollIntervalMs);
      }
    }
  }

  /** Claims up to `limit` jobs and starts running them; reports jobs dead of a lapsed last lease. */
  async #claim(limit = Math.min(this.#settings.batchSize, this.#settings.concurrency - this.#running.size)) {
    if (limit <= 0) return [];
    const { queue, topics, now, leaseMs, maxAttempts } = this.#settings;
    const outcome = await queue.claim({
      topics,
      limit,
      nowMs: now(),
      leaseMs,
      defaultMaxAttempts: maxAttempts,
    });
    for (const job of outcome.exhausted) {
      this.#settings.emit({
        type: 'dead',
        job: eventJobOf(job, this.#settings.maxAttempts),
        error: job.lastError ?? '',
      });
    }
    return outcome.claimed.map((job) => {
      const execution = new JobExecution(job, this.#settings);
      this.#running.add(execution);
      void execution.start().then(() => {
        this.#running.delete(execution);
        if (this.#waitingForSlot) this.#wakeup.notify();
      });
      return execution;
    });
  }

  async #shutDown(graceMs: number): Promise<void> {
    await this.#loop;
    this.#loop = undefined;
    const running = [...this.#running];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all(running.map((execution) => execution.done)), graceOver]);
    clearTimeout(timer);
    const reason = new JobRunnerStoppedError(graceMs);
    await Promise.all([...this.#running].map((execution) => execution.release(reason)));
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
  }

  async #reapWhenDue(): Promise<void> {
    const nowMs = this.#settings.now();
    if (nowMs - this.#lastReapAtMs < this.#settings.reapIntervalMs) return;
    this.#lastReapAtMs = nowMs;
    try {
      await this.reap();
    } catch (error) {
      this.#report('reap', error);
    }
  }

  #report(during: JobRunnerActivity, error: unknown): void {
    this.#settings.emit({ type: 'error', during, error });
  }

  #count(event: JobEvent): void {
    const counters = this.#counters;
    if (event.type === 'claimed') counters.claimed++;
    else if (event.type === 'completed') counters.completed++;
    else if (event.type === 'retry-scheduled') counters.retried++;
    else if (event.type === 'dead') counters.dead++;
    else if (event.type === 'lease-lost') counters.leaseLost++;
    else if (event.type === 'released') counters.released++;
    else if (event.type === 'reaped') counters.reaped += event.count;
  }
}

export function createJobRunner<Tx>(options: JobRunnerOptions<Tx>): JobRunner<Tx> {
  return new JobRunner(options);
}
