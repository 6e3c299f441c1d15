// Starts the reference service: opens its data, builds the app, listens, prints where it is
// and which keys work, and shuts down cleanly on SIGINT/SIGTERM.
import type { FastifyInstance } from 'fastify';
import { buildServiceApp } from './app.js';
import { demoKeyRecords, demoKeys } from './auth.js';
import { ConfigError, type DatabaseConfig, type ServiceConfig } from './config.js';
import { openSqliteServiceData } from './data/sqlite.js';
import type { ServiceData } from './data/types.js';

export async function openServiceData(database: DatabaseConfig): Promise<ServiceData<unknown>> {
  if (database.kind === 'sqlite') return openSqliteServiceData(database.path) as ServiceData<unknown>;
  throw new ConfigError('PostgreSQL is not supported by this build yet; use a SQLite file path.');
}

export async function serve(config: ServiceConfig): Promise<FastifyInstance> {
  const data = await openServiceData(config.database);
  const seeded = await data.apiKeys.seedDemoKeys(demoKeyRecords());
  const app = await buildServiceApp({
    data,
    ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
    ...(config.retentionMs === undefined ? {} : { retentionMs: config.retentionMs }),
    logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    testHooks: config.testHooks,
  });
  app.addHook('onClose', async () => data.close());
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const where = config.database.kind === 'sqlite' ? config.database.path : 'PostgreSQL';
  const lines = [`retrysafe reference service listening on http://${host}:${port} (data: ${where})`];
  if (seeded || (await data.apiKeys.find(demoKeyRecords()[0]!.keyHash))) {
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
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return app;
}
