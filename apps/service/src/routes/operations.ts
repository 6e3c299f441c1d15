// Operations surface: health, Prometheus metrics and the OpenAPI document. No key needed.
import type { FastifyInstance } from 'fastify';
import { ServiceUnavailableError } from 'retrysafe/http';
import type { ServiceData } from '../data/types.js';
import type { ServiceMetrics } from '../metrics.js';

export function operationsRoutes<Tx>(
  app: FastifyInstance,
  data: ServiceData<Tx>,
  metrics: ServiceMetrics,
): void {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: { summary: 'Liveness and database reachability', tags: ['operations'] },
    },
    async () => {
      try {
        await data.ping();
      } catch (error) {
        throw new ServiceUnavailableError('The database does not answer.', 5, error);
      }
      return { status: 'ok' };
    },
  );

  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
