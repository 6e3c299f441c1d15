// Starts the reference service: opens its data, builds the app, listens, prints where it is
// and which keys work, and shuts down on SIGINT/SIGTERM within SHUTDOWN_GRACE_MS.
import type { FastifyInstance } from 'fastify';
import type { IdempotencyStore } from 'retrysafe';
import { buildServiceApp } from './app.js';
import { demoKeyRecords, demoKeys } from './auth.js';
import {
  type DatabaseConfig,
  defaultPostgresLimits,
  type PostgresLimits,
  type ServiceConfig,
} from './config.js';
import { openRedisConnection } from './data/redis.js';
import { openSqliteServiceData } from './data/sqlite.js';
import type { ServiceData } from './data/types.js';
import { serviceLoggerOptions } from './log-fields.js';

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
    done: () => clearTimeout(timer),
  };
}

export async function serve(config: ServiceConfig): Promise<FastifyInstance> {
  const startup = startupDeadline(config.startupTimeoutMs);
  const data = await startup.step('opening the database and applying migrations', () =>
    openServiceData(config.database, config.postgres),
  );
  const demoKeysUsable = await startup.step('seeding the demo API keys', async () => {
    const seeded = await data.apiKeys.seedDemoKeys(demoKeyRecords());
    return seeded || (await data.apiKeys.find(demoKeyRecords()[0]!.keyHash)) !== undefined;
  });
  const redis = config.redisUrl
    ? await startup.step('connecting to Redis', () => openRedisStore(config, config.redisUrl!))
    : undefined;
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
  });
  app.addHook('onClose', async () => {
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
