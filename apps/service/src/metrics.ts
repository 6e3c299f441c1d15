// Prometheus metrics of the reference service (prom-client, its own registry).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LifecycleOutcome, ReapRun } from 'retrysafe';
import type { QueueStats } from 'retrysafe/effects';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly idempotency = new Counter({
    name: 'idempotency_outcomes_total',
    help: 'Requests on idempotent routes by what the lifecycle did (unkeyed: no key sent; refused: a bad key or an unreachable store).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly retried = new Counter({
    name: 'http_retried_requests_total',
    help: 'Requests that arrived with X-Retry-Count > 0, by route.',
    labelNames: ['method', 'route'] as const,
    registers: [this.registry],
  });

  readonly reaperDeleted = new Counter({
    name: 'retrysafe_reaper_deleted_total',
    help: 'Expired idempotency records the reaper deleted.',
    registers: [this.registry],
  });
  readonly reaperLastDuration = new Gauge({
    name: 'retrysafe_reaper_last_run_seconds',
    help: 'How long the last reaper run took.',
    registers: [this.registry],
  });
  readonly reaperCaughtUp = new Gauge({
    name: 'retrysafe_reaper_caught_up',
    help: '1 when the last reaper run deleted every expired record it found; 0 when its time bound stopped it first (a backlog).',
    registers: [this.registry],
  });
  readonly reaperRunsBehind = new Counter({
    name: 'retrysafe_reaper_runs_behind_total',
    help: 'Reaper runs that ended at their time bound with expired records left.',
    registers: [this.registry],
  });

  #jobStats: { stats: () => Promise<QueueStats>; eventTopics: readonly string[] } | undefined;
  readonly jobs: Gauge<'topic' | 'state'> = new Gauge({
    name: 'retrysafe_jobs',
    help: 'Jobs and events in the outbox, by topic and state (queued, running, done, dead)',
    labelNames: ['topic', 'state'],
    registers: [this.registry],
    // Read when /metrics is scraped (one grouped query): counters kept here would miss what
    // the other processes sharing the outbox did.
    collect: () => this.#collectJobs(),
  });
  readonly jobAttempts = new Gauge({
    name: 'retrysafe_job_attempts',
    help: 'Attempts made by the jobs the outbox still keeps, by topic',
    labelNames: ['topic'],
    registers: [this.registry],
  });
  readonly relayLag = new Gauge({
    name: 'retrysafe_relay_lag_seconds',
    help: 'Age of the oldest due event not yet published to a broker, by topic (0 when none waits)',
    labelNames: ['topic'],
    registers: [this.registry],
  });

  observeJobs(stats: () => Promise<QueueStats>, eventTopics: readonly string[]): void {
    this.#jobStats = { stats, eventTopics };
  }

  async #collectJobs(): Promise<void> {
    if (this.#jobStats === undefined) return;
    const { topics } = await this.#jobStats.stats();
    this.jobs.reset();
    this.jobAttempts.reset();
    this.relayLag.reset();
    for (const [topic, figures] of Object.entries(topics)) {
      for (const state of ['queued', 'running', 'done', 'dead'] as const)
        this.jobs.set({ topic, state }, figures[state]);
      this.jobAttempts.set({ topic }, figures.attempts);
      if (this.#jobStats.eventTopics.includes(topic))
        this.relayLag.set({ topic }, figures.oldestDueAgeMs / 1000);
    }
  }

  recordReap(run: ReapRun): void {
    this.reaperDeleted.inc(run.deleted);
    this.reaperLastDuration.set(run.durationMs / 1000);
    this.reaperCaughtUp.set(run.caughtUp ? 1 : 0);
    if (!run.caughtUp) this.reaperRunsBehind.inc();
  }

  constructor() {
    this.reaperCaughtUp.set(1);
    // Zero-initialise so every outcome is visible before it first happens.
    const outcomes: LifecycleOutcome[] = ['executed', 'replayed', 'in_use', 'mismatch', 'unkeyed', 'refused'];
    for (const outcome of outcomes) {
      this.idempotency.inc({ outcome }, 0);
    }
  }
}
