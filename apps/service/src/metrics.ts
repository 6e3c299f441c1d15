// Prometheus metrics of the reference service (prom-client, its own registry).
import { Counter, Histogram, Registry } from 'prom-client';
import type { LifecycleOutcome } from 'retrysafe';

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

  constructor() {
    // Zero-initialise so every outcome is visible before it first happens.
    const outcomes: LifecycleOutcome[] = ['executed', 'replayed', 'in_use', 'mismatch', 'unkeyed', 'refused'];
    for (const outcome of outcomes) {
      this.idempotency.inc({ outcome }, 0);
    }
  }
}
