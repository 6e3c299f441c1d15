// Test-only fault switches, on only when RETRYSAFE_TEST_HOOKS=1: they hold a request inside
// its handler (before its writes) or between commit and response, so crash tests can kill
// a server at exactly those points; and they make a share of writes fail with a 5xx, before
// or after the handler's writes, for `retrysafe chaos`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProblemError } from 'retrysafe/http';

const maxDelayMs = 120_000;

function delayFrom(request: FastifyRequest, header: string): number {
  const value = Number(request.headers[header]);
  return Number.isFinite(value) && value > 0 ? Math.min(value, maxDelayMs) : 0;
}

/** Waits as long as the request's `header` asks (capped), logging what it holds. */
async function holdIfAsked(request: FastifyRequest, header: string, what: string): Promise<void> {
  const ms = delayFrom(request, header);
  if (ms === 0) return;
  request.log.info({ delayMs: ms }, `test hook: holding ${what}`);
  await sleep(ms);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TestHookOptions {
  /** Fraction of writes answered with a 5xx: half as 503 before the writes, half as 500 after them. */
  failRate?: number;
  random?: () => number;
}

/**
 * RETRYSAFE_TEST_FAIL_RATE (0–1). Read here rather than in config.ts: like the switches above
 * it exists only for tests and `retrysafe chaos`, and only with RETRYSAFE_TEST_HOOKS=1.
 */
export function failRateFrom(env: NodeJS.ProcessEnv): number {
  const rate = Number(env.RETRYSAFE_TEST_FAIL_RATE ?? 0);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw new Error(`RETRYSAFE_TEST_FAIL_RATE=${env.RETRYSAFE_TEST_FAIL_RATE} is not a number from 0 to 1`);
  }
  return rate;
}

export interface TestHooks {
  /** Inside the handler, before its writes. */
  beforeWrites(request: FastifyRequest): Promise<void>;
  /** Inside the write transaction, after the writes: a throw here must roll them back. */
  afterWrites(request: FastifyRequest): Promise<void>;
  /**
   * At a named point of a multi-step write (POST /orders: `after-order`, `after-charge`,
   * `after-charge-checkpoint`; PUT /orders/{id}: `after-adjust`): holds the request
   * when its `x-test-hold-at` header names the point, for `x-test-hold-ms` (default 30 s), so a
   * crash test can kill the process exactly there.
   */
  holdAt(request: FastifyRequest, point: string): Promise<void>;
}

/** Problem type of every injected failure, so `retrysafe chaos` can tell them from real ones. */
export const injectedFaultType = 'injected-fault';

/** An injected failure: 503 before the writes (retryable), 500 after them (must roll them back). */
export class InjectedFaultError extends ProblemError {
  override name = 'InjectedFaultError';
  constructor(where: 'before' | 'after') {
    super(
      where === 'before'
        ? {
            status: 503,
            type: injectedFaultType,
            title: 'Service unavailable',
            detail: 'Injected fault: this instance refused the write before making it.',
            headers: { 'retry-after': '1' },
          }
        : {
            status: 500,
            type: injectedFaultType,
            title: 'Internal server error',
            detail: 'Injected fault after the writes; they were rolled back.',
          },
    );
  }
}

const noHooks: TestHooks = {
  beforeWrites: async () => {},
  afterWrites: async () => {},
  holdAt: async () => {},
};

const defaultHoldMs = 30_000;

export function registerTestHooks(
  app: FastifyInstance,
  enabled: boolean,
  options: TestHookOptions = {},
): TestHooks {
  if (!enabled) return noHooks;
  const failRate = options.failRate ?? failRateFrom(process.env);
  const random = options.random ?? Math.random;
  // One roll per request decides whether and where it fails.
  const failures = new WeakMap<FastifyRequest, 'before' | 'after'>();
  if (failRate > 0) {
    app.addHook('onRequest', async (request) => {
      const roll = random();
      if (roll < failRate) failures.set(request, roll < failRate / 2 ? 'before' : 'after');
    });
  }
  app.addHook('onSend', async (request, _reply, payload) => {
    await holdIfAsked(request, 'x-test-delay-after-commit-ms', 'the response after commit');
    return payload;
  });
  return {
    async beforeWrites(request) {
      await holdIfAsked(request, 'x-test-delay-ms', 'the request inside its handler');
      if (failures.get(request) === 'before') throw new InjectedFaultError('before');
    },
    async afterWrites(request) {
      await holdIfAsked(request, 'x-test-delay-after-writes-ms', 'the transaction after its writes');
      if (failures.get(request) === 'after') throw new InjectedFaultError('after');
    },
    async holdAt(request, point) {
      const points = String(request.headers['x-test-hold-at'] ?? '').split(',');
      if (!points.map((each) => each.trim()).includes(point)) return;
      const asked = delayFrom(request, 'x-test-hold-ms');
      const ms = asked > 0 ? asked : defaultHoldMs;
      request.log.info({ delayMs: ms, point }, `test hook: holding at ${point}`);
      await sleep(ms);
    },
  };
}
