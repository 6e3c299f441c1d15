// Test-only delay switches, on only when RETRYSAFE_TEST_HOOKS=1: they hold a request inside
// its handler (before its writes) or between commit and response, so crash tests can kill
// a server at exactly those points.
import type { FastifyInstance, FastifyRequest } from 'fastify';

const maxDelayMs = 120_000;

function delayFrom(request: FastifyRequest, header: string): number {
  const value = Number(request.headers[header]);
  return Number.isFinite(value) && value > 0 ? Math.min(value, maxDelayMs) : 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TestHooks {
  /** Inside the handler, before its writes. */
  beforeWrites(request: FastifyRequest): Promise<void>;
}

export function registerTestHooks(app: FastifyInstance, enabled: boolean): TestHooks {
  if (!enabled) return { beforeWrites: async () => {} };
  app.addHook('onSend', async (request, _reply, payload) => {
    const ms = delayFrom(request, 'x-test-delay-after-commit-ms');
    if (ms > 0) {
      request.log.info({ delayMs: ms }, 'test hook: holding the response after commit');
      await sleep(ms);
    }
    return payload;
  });
  return {
    async beforeWrites(request) {
      const ms = delayFrom(request, 'x-test-delay-ms');
      if (ms > 0) {
        request.log.info({ delayMs: ms }, 'test hook: holding the request inside its handler');
        await sleep(ms);
      }
    },
  };
}
