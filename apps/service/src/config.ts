// The reference service's settings, resolved once from flags, then environment, then defaults.

export const defaultPort = 3000;
export const defaultHost = '127.0.0.1';
export const defaultDatabasePath = './data/retrysafe.db';

export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export interface ServiceConfig {
  port: number;
  host: string;
  database: DatabaseConfig;
  /** Keep idempotency records in Redis instead of the SQL database. */
  redisUrl: string | undefined;
  /** Key prefix for idempotency records in Redis. */
  redisKeyPrefix: string | undefined;
  leaseMs: number | undefined;
  retentionMs: number | undefined;
  logLevel: string;
  testHooks: boolean;
  /** Browser origins allowed to call the service (CORS); empty: none, `['*']`: any. */
  corsOrigins: string[];
}

export interface ConfigFlags {
  port?: string | undefined;
  host?: string | undefined;
  db?: string | undefined;
}

export function resolveServiceConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv): ServiceConfig {
  return {
    port: parsePort(flags.port ?? env.PORT),
    host: flags.host ?? env.HOST ?? defaultHost,
    database: parseDatabase(flags.db ?? env.DATABASE_URL ?? defaultDatabasePath),
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.REDIS_KEY_PREFIX || undefined,
    leaseMs: parseMs('IDEMPOTENCY_LEASE_MS', env.IDEMPOTENCY_LEASE_MS),
    retentionMs: parseMs('IDEMPOTENCY_RETENTION_MS', env.IDEMPOTENCY_RETENTION_MS),
    logLevel: env.LOG_LEVEL ?? 'info',
    testHooks: env.RETRYSAFE_TEST_HOOKS === '1',
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ''),
  };
}

/** `postgres://…` / `postgresql://…` is PostgreSQL; `sqlite:PATH`, `file:PATH` or a bare path is SQLite. */
export function parseDatabase(value: string): DatabaseConfig {
  if (/^postgres(ql)?:\/\//.test(value)) return { kind: 'postgres', url: value };
  const path = value.replace(/^(sqlite|file):(\/\/)?/, '');
  if (path === '') throw new ConfigError('DATABASE_URL / --db names no SQLite file');
  return { kind: 'sqlite', path };
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return defaultPort;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`port ${value} is not 0–65535`);
  return port;
}

function parseMs(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = Number(value);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new ConfigError(`${name}=${value} is not a positive number of milliseconds`);
  return ms;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}
