// Starts the reference service: opens its data, builds the app, listens, prints where it is
// and which keys work, and shuts down on SIGINT/SIGTERM within SHUTDOWN_GRACE_MS.
import type { FastifyInstance } from 'fastify';
import type { IdempotencyStore } from 'retrysafe';
import { ProblemError } from 'retrysafe/http';
import { buildServiceApp } from './app.js';
import { demoKeyRecords, demoKeys } from './auth.js';
import { openRelays } from './checkout/relays.js';
import {
  type DatabaseConfig,
  defaultPostgresLimits,
  type PostgresLimits,
  type ServiceConfig,
} from './config.js';
import { openRedisConnection } from './data/redis.js';
import { openSqliteServiceData } from './data/sqlite.js';
import type { ServiceData } from './data/types.js';
import { isUnavailable } from './data/unavailable.js';
import { serviceLoggerOptions } from './log-fields.js';
import { createPaymentsClient } from './payments/client.js';

export async function openServiceData(
  database: DatabaseConfig,
  limits: PostgresLimits = defaultPostgresLimits,
): Promise<ServiceData<unknown>> {
  if (database.kind === 'sqlite') return openSqliteServiceData(database.path) as ServiceData<unknown>;
  // Loaded on demand, so a SQLite user never needs the pg package.
  const { openPostgresServiceData } = await import('./data/postgres.js');
  return (await openPostgresServiceData(database.url, limits)) as ServiceData<unknown>;
}

/**
 * Idempotency records in Redis (REDIS_URL) while the business data stays in SQL. node-redis:
 * with this store it measured about 20% less CPU per request than ioredis (`npm run bench`).
 */
async function openRedisStore(config: ServiceConfig, url: string) {
  const [connection, { createRedisStore }] = await Promise.all([
    openRedisConnection(url, config.redis),
    import('retrysafe/stores/redis'),
  ]);
  const prefix = config.redisKeyPrefix;
  return {
    store: createRedisStore({ client: connection.client, ...(prefix ? { prefix } : {}) }),
    ping: connection.ping,
    close: connection.close,
  };
}

/**
 * Start-up is bounded as a whole: a database or Redis that accepts connections but never
 * answers could otherwise hold a start-up forever between bounded steps, with no port open and
 * nothing said. Past `startupTimeoutMs` the process names the step it was in and exits 1, so a
 * supervisor (or `retrysafe chaos`) starts it again.
 */
function startupDeadline(timeoutMs: number) {
  let step = 'starting';
  const timer = setTimeout(() => {
    process.stderr.write(
      `retrysafe: start-up did not finish within ${timeoutMs} ms (STARTUP_TIMEOUT_MS); stuck while ${step}\n`,
    );
    process.exit(1);
  }, timeoutMs);
  return {
    async step<T>(name: string, work: () => Promise<T>): Promise<T> {
      step = name;
      return work();
    },
    /**
     * A step against the database: an outage (a cut connection, a refused connect, a 503 from
     * a transaction) is tried again with a growing pause, until the deadline ends it. One
     * connection lost while starting must not end a process that would have served.
     */
    async retrying<T>(name: string, work: () => Promise<T>): Promise<T> {
      step = name;
      for (let pauseMs = 100; ; pauseMs = Math.min(pauseMs * 2, 2_000)) {
        try {
          return await work();
        } catch (error) {
          if (!isOutage(error)) throw error;
          process.stderr.write(
            `retrysafe: ${name} failed (${String(error)}); trying again in ${pauseMs} ms\n`,
          );
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
      }
    },
    done: () => clearTimeout(timer),
  };
}

function isOutage(error: unknown): boolean {
  return isUnavailable(error) || (error instanceof ProblemError && error.status === 503);
}

/**
 * The provider the checkout charges: PAYMENTS_URL, or else a `payments-sim` embedded in this
 * process on loopback, so `npm start` shows the whole checkout with nothing configured. Its
 * file sits beside a SQLite database (a temporary one otherwise). Only for one process: two
 * processes with embedded providers would each charge on their own.
 */
async function openPayments(config: ServiceConfig) {
  const { checkout } = config;
  if (checkout.paymentsUrl !== undefined) {
    const client = createPaymentsClient({
      baseUrl: checkout.paymentsUrl,
      timeoutMs: checkout.paymentsTimeoutMs,
    });
    return { client, url: checkout.paymentsUrl, embedded: false, close: async () => {} };
  }
  const { startPaymentsSim } = await import('./payments/sim.js');
  const { database } = config;
  const sim = await startPaymentsSim({
    ...(database.kind === 'sqlite' && database.path !== ':memory:'
      ? { databasePath: `${database.path}.payments.sqlite` }
      : {}),
  });
  const client = createPaymentsClient({ baseUrl: sim.url, timeoutMs: checkout.paymentsTimeoutMs });
  return { client, url: sim.url, embedded: true, close: () => sim.close() };
}

export async function serve(config: ServiceConfig): Promise<FastifyInstance> {
  const startup = startupDeadline(config.startupTimeoutMs);
  try {
    return await startServing(config, startup);
  } finally {
    // Also when start-up failed: the error is the answer, the deadline must not hold the exit.
    startup.done();
  }
}

async function startServing(
  config: ServiceConfig,
  startup: ReturnType<typeof startupDeadline>,
): Promise<FastifyInstance> {
  const data = await startup.retrying('opening the database and applying migrations', () =>
    openServiceData(config.database, config.postgres),
  );
  const demoKeysUsable = await startup.retrying('seeding the demo API keys', async () => {
    const seeded = await data.apiKeys.seedDemoKeys(demoKeyRecords());
    return seeded || (await data.apiKeys.find(demoKeyRecords()[0]!.keyHash)) !== undefined;
  });
  const redis = config.redisUrl
    ? await startup.step('connecting to Redis', () => openRedisStore(config, config.redisUrl!))
    : undefined;
  const payments = await startup.step('starting the payment provider', () => openPayments(config));
  const brokers = await startup.step('connecting to the event brokers', () => openRelays(config.checkout));
  const app = await buildServiceApp({
    data,
    ...(redis ? { idempotencyStore: redis.store as IdempotencyStore<unknown> } : {}),
    ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
    ...(config.retentionMs === undefined ? {} : { retentionMs: config.retentionMs }),
    ...(config.maxRecordsPerTenant === undefined ? {} : { maxRecordsPerTenant: config.maxRecordsPerTenant }),
    ...(config.maxStoredResponseBytes === undefined
      ? {}
      : { maxStoredResponseBytes: config.maxStoredResponseBytes }),
    logger: serviceLoggerOptions(config.logLevel),
    testHooks: config.testHooks,
    corsOrigins: config.corsOrigins,
    http: config.http,
    readinessChecks: redis ? [{ name: 'redis', check: redis.ping }] : [],
    readyTimeoutMs: config.readyTimeoutMs,
    payments: payments.client,
    completerDelayMs: config.checkout.completerDelayMs,
    relays: brokers.relays,
    jobs: { pollIntervalMs: config.checkout.jobPollIntervalMs, leaseMs: config.checkout.jobLeaseMs },
  });
  app.addHook('onClose', async () => {
    await brokers.close();
    await payments.close();
    await redis?.close();
    await data.close();
  });
  await startup.step('opening the HTTP port', () => app.listen({ port: config.port, host: config.host }));
  startup.done();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const where =
    (config.database.kind === 'sqlite' ? config.database.path : 'PostgreSQL') +
    (redis ? '; idempotency records in Redis' : '');
  const lines = [`retrysafe reference service listening on http://${host}:${port} (data: ${where})`];
  // Known before listening: the banner follows the port at once, with no database round trip.
  if (demoKeysUsable) {
    lines.push('Demo API keys (send as "Authorization: Bearer <key>"):');
    for (const k of demoKeys)
      lines.push(`  ${k.key}  tenant ${k.tenant}, ${k.role === 'writer' ? 'read-write' : 'read-only'}`);
  }
  lines.push(`Try: curl -H 'Authorization: Bearer demo-writer-a' http://${host}:${port}/users`);
  lines.push(
    payments.embedded
      ? `Payment provider (embedded payments-sim, for one process only): ${payments.url}; set PAYMENTS_URL to use another`
      : `Payment provider: ${payments.url}`,
  );
  if (brokers.relays.length === 0)
    lines.push('Events (order.paid) wait in the outbox: set NATS_URL or AMQP_URL to publish them');
  process.stdout.write(`${lines.join('\n')}\n`);

  let closing = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (closing) return;
      closing = true;
      // In-flight requests get the grace period; then every connection is cut (a body that
      // never finishes, a handler that hangs) and the process exits anyway, with status 1.
      const deadline = setTimeout(() => {
        app.log.warn(
          { graceMs: config.http.shutdownGraceMs },
          'shutdown grace period over: cutting connections',
        );
        app.server.closeAllConnections();
        process.exit(1);
      }, config.http.shutdownGraceMs);
      deadline.unref();
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return app;
}
