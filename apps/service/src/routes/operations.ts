// Operations surface: liveness, readiness, Prometheus metrics and the OpenAPI document. No key needed.
import type { FastifyInstance } from 'fastify';
import { ProblemError } from 'retrysafe/http';
import type { ServiceMetrics } from '../metrics.js';

/** One store the service depends on; `check` makes one cheap round trip to it. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface ReadinessOptions {
  checks: ReadinessCheck[];
  /** Each check fails when it has not answered within this. */
  timeoutMs: number;
}

/** Seconds a load balancer or client waits before asking a not-ready instance again. */
const notReadyRetryAfterSeconds = 1;

export function operationsRoutes(
  app: FastifyInstance,
  metrics: ServiceMetrics,
  readiness: ReadinessOptions,
): void {
  // Liveness: the process and its event loop answer. It asks no store, so an outage of one
  // does not get healthy processes restarted; /readyz says whether to send traffic.
  app.get(
    '/healthz',
    { config: { public: true }, schema: { summary: 'Liveness', tags: ['operations'] } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: { summary: 'Readiness: every store answers within its timeout', tags: ['operations'] },
    },
    async () => {
      const results = await Promise.all(
        readiness.checks.map(async ({ name, check }) => ({
          name,
          error: await bounded(check, readiness.timeoutMs),
        })),
      );
      const down = results.filter((result) => result.error !== undefined);
      if (down.length > 0) {
        throw new ProblemError({
          status: 503,
          type: 'not-ready',
          title: 'Service unavailable',
          detail: `Not ready: ${down.map((d) => `${d.name} ${d.error}`).join('; ')}.`,
          headers: { 'retry-after': String(notReadyRetryAfterSeconds) },
          extensions: { checks: Object.fromEntries(results.map((r) => [r.name, r.error ?? 'ok'])) },
        });
      }
      return { status: 'ok', checks: Object.fromEntries(results.map((r) => [r.name, 'ok'])) };
    },
  );

  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}

/** Why `check` failed or did not answer within `timeoutMs`; undefined when it answered. */
async function bounded(check: () => Promise<void>, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      check().then(
        () => undefined,
        () => 'does not answer',
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
