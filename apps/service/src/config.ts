// The reference service's settings, resolved once from flags, then environment, then defaults,
// and refused at start when they cannot work (a ConfigError: the message, exit status 1).
import { defaultLeaseMs, defaultRetentionMs, suggestedMaxRecordsPerScope } from 'retrysafe';

export const defaultPort = 3000;
export const defaultHost = '127.0.0.1';
export const defaultDatabasePath = './data/retrysafe.db';

/**
 * Longest lease or retention, in ms (2^52, about 142,000 years). `now + retention` must stay a
 * safe integer (engine arithmetic), a PostgreSQL bigint and a Redis PXAT; while `now` is below
 * 2^52 ms (until the year 144,000) this bound keeps all three.
 */
export const maxDurationMs = 2 ** 52;
/** Longest timeout: Node's timers (and so pg's and the HTTP server's) fire at once above 2^31-1 ms. */
export const maxTimeoutMs = 2 ** 31 - 1;

/** Every bound the service puts on its HTTP server, with its default (README: Operations). */
export interface HttpLimits {
  /** HTTP_HEADERS_TIMEOUT_MS: the request line and headers must arrive within this. Default 10 s. */
  headersTimeoutMs: number;
  /** HTTP_REQUEST_TIMEOUT_MS: the whole request, body included; then 408. Default 30 s. */
  requestTimeoutMs: number;
  /** HTTP_KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this. Default 5 s. */
  keepAliveTimeoutMs: number;
  /** HTTP_MAX_CONNECTIONS: open connections beyond this are refused. Keep it under `ulimit -n`. Default 1000. */
  maxConnections: number;
  /** SHUTDOWN_GRACE_MS: after SIGTERM, in-flight requests get this long, then connections are cut. Default 10 s. */
  shutdownGraceMs: number;
}

/** Bounds on every PostgreSQL call, so a stalled server answers 503 instead of hanging. */
export interface PostgresLimits {
  /** PG_POOL_MAX: connections per process. Default 10. */
  poolMax: number;
  /** PG_CONNECT_TIMEOUT_MS: pool checkout including a new connection (pg `connectionTimeoutMillis`). Default 2 s. */
  connectTimeoutMs: number;
  /** PG_STATEMENT_TIMEOUT_MS: server-side `statement_timeout`. Default 5 s. */
  statementTimeoutMs: number;
  /** PG_LOCK_TIMEOUT_MS: server-side `lock_timeout`, a lock wait inside a statement. Default 2 s. */
  lockTimeoutMs: number;
  /**
   * PG_QUERY_TIMEOUT_MS: client-side `query_timeout`, for a server that stopped answering at all.
   * Longer than the statement timeout, so a live server cancels first and the session stays
   * usable. Default 6 s.
   */
  queryTimeoutMs: number;
}

export interface RedisLimits {
  /** REDIS_CONNECT_TIMEOUT_MS: opening a connection. Default 2 s. */
  connectTimeoutMs: number;
  /** REDIS_COMMAND_TIMEOUT_MS: a command without an answer this long fails, and the connection is replaced. Default 2 s. */
  commandTimeoutMs: number;
}

export const defaultHttpLimits: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1_000,
  shutdownGraceMs: 10_000,
};
export const defaultPostgresLimits: PostgresLimits = {
  poolMax: 10,
  connectTimeoutMs: 2_000,
  statementTimeoutMs: 5_000,
  lockTimeoutMs: 2_000,
  queryTimeoutMs: 6_000,
};
export const defaultRedisLimits: RedisLimits = { connectTimeoutMs: 2_000, commandTimeoutMs: 2_000 };
/** READY_TIMEOUT_MS: how long /readyz waits for each store. Default 1 s. */
export const defaultReadyTimeoutMs = 1_000;
/** STARTUP_TIMEOUT_MS: room for a slow migration, yet a hung start-up is reported and ends. */
export const defaultStartupTimeoutMs = 60_000;

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
  /** Most live idempotency records one tenant may hold (429 beyond). Default 100,000. */
  maxRecordsPerTenant: number | undefined;
  /** Largest answer body stored for replay; undefined: the engine's default (1 MiB). */
  maxStoredResponseBytes: number | undefined;
  logLevel: string;
  testHooks: boolean;
  /** Browser origins allowed to call the service (CORS); empty: none, `['*']`: any. */
  corsOrigins: string[];
  http: HttpLimits;
  postgres: PostgresLimits;
  redis: RedisLimits;
  readyTimeoutMs: number;
  /** STARTUP_TIMEOUT_MS: the whole start-up, database and Redis included; then exit 1. Default 60 s. */
  startupTimeoutMs: number;
  checkout: CheckoutConfig;
}

export interface CheckoutConfig {
  /** PAYMENTS_URL: the payment provider; unset, the service starts an embedded `payments-sim` on loopback. */
  paymentsUrl: string | undefined;
  /** PAYMENTS_TIMEOUT_MS: one call to the provider. Default 5 s. */
  paymentsTimeoutMs: number;
  /** CHECKOUT_COMPLETER_DELAY_MS: how long a checkout may stay unfinished before the completer job finishes it. Default 60 s. */
  completerDelayMs: number;
  /** JOBS_POLL_INTERVAL_MS: the longest the job runner sleeps without looking for due jobs. Default 2 s. */
  jobPollIntervalMs: number;
  /** JOBS_LEASE_MS: how long a claimed job is held before another process may take it over. Default 30 s. */
  jobLeaseMs: number;
  /** NATS_URL: publish events to NATS JetStream (stream NATS_STREAM, default RETRYSAFE_EVENTS). */
  natsUrl: string | undefined;
  natsStream: string;
  /** NATS_SUBJECT_PREFIX: events go to `<prefix>.<topic>`, the stream captures `<prefix>.>`. Default `events`. */
  natsSubjectPrefix: string;
  /** AMQP_URL: publish events to RabbitMQ (topic exchange AMQP_EXCHANGE, default `retrysafe.events`). */
  amqpUrl: string | undefined;
  amqpExchange: string;
}

export interface ConfigFlags {
  port?: string | undefined;
  host?: string | undefined;
  db?: string | undefined;
}

export function resolveServiceConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv): ServiceConfig {
  const leaseMs = parseInteger(env, 'IDEMPOTENCY_LEASE_MS', undefined, 1, maxDurationMs);
  const retentionMs = parseInteger(env, 'IDEMPOTENCY_RETENTION_MS', undefined, 1, maxDurationMs);
  const effectiveLeaseMs = leaseMs ?? defaultLeaseMs;
  const effectiveRetentionMs = retentionMs ?? defaultRetentionMs;
  if (effectiveLeaseMs > effectiveRetentionMs) {
    throw new ConfigError(
      `IDEMPOTENCY_LEASE_MS (${effectiveLeaseMs}) is longer than IDEMPOTENCY_RETENTION_MS (${effectiveRetentionMs}): a record would expire while its request still runs. Make the lease shorter than the retention.`,
    );
  }
  const timeout = (name: string, fallback: number, min = 1) =>
    parseInteger(env, name, fallback, min, maxTimeoutMs) as number;
  const http: HttpLimits = {
    headersTimeoutMs: timeout('HTTP_HEADERS_TIMEOUT_MS', defaultHttpLimits.headersTimeoutMs),
    requestTimeoutMs: timeout('HTTP_REQUEST_TIMEOUT_MS', defaultHttpLimits.requestTimeoutMs),
    keepAliveTimeoutMs: timeout('HTTP_KEEP_ALIVE_TIMEOUT_MS', defaultHttpLimits.keepAliveTimeoutMs),
    maxConnections: timeout('HTTP_MAX_CONNECTIONS', defaultHttpLimits.maxConnections),
    shutdownGraceMs: timeout('SHUTDOWN_GRACE_MS', defaultHttpLimits.shutdownGraceMs, 0),
  };
  if (http.headersTimeoutMs > http.requestTimeoutMs) {
    throw new ConfigError(
      `HTTP_HEADERS_TIMEOUT_MS (${http.headersTimeoutMs}) is longer than HTTP_REQUEST_TIMEOUT_MS (${http.requestTimeoutMs}), which includes the headers. Make it shorter.`,
    );
  }
  const postgres: PostgresLimits = {
    poolMax: parseInteger(env, 'PG_POOL_MAX', defaultPostgresLimits.poolMax, 1, 10_000) as number,
    connectTimeoutMs: timeout('PG_CONNECT_TIMEOUT_MS', defaultPostgresLimits.connectTimeoutMs),
    statementTimeoutMs: timeout('PG_STATEMENT_TIMEOUT_MS', defaultPostgresLimits.statementTimeoutMs),
    lockTimeoutMs: timeout('PG_LOCK_TIMEOUT_MS', defaultPostgresLimits.lockTimeoutMs),
    queryTimeoutMs: timeout('PG_QUERY_TIMEOUT_MS', defaultPostgresLimits.queryTimeoutMs),
  };
  if (postgres.queryTimeoutMs <= postgres.statementTimeoutMs) {
    throw new ConfigError(
      `PG_QUERY_TIMEOUT_MS (${postgres.queryTimeoutMs}) must be longer than PG_STATEMENT_TIMEOUT_MS (${postgres.statementTimeoutMs}): the server should cancel a slow statement before the client gives up on the connection.`,
    );
  }
  return {
    port: parsePort(flags.port ?? env.PORT),
    host: flags.host ?? env.HOST ?? defaultHost,
    database: parseDatabase(flags.db ?? env.DATABASE_URL ?? defaultDatabasePath),
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.REDIS_KEY_PREFIX || undefined,
    leaseMs,
    retentionMs,
    // The library applies no bound by default; a service facing many tenants should.
    maxRecordsPerTenant: parseInteger(
      env,
      'IDEMPOTENCY_MAX_RECORDS_PER_TENANT',
      suggestedMaxRecordsPerScope,
      1,
      2 ** 31 - 1,
    ),
    maxStoredResponseBytes: parseInteger(
      env,
      'IDEMPOTENCY_MAX_STORED_RESPONSE_BYTES',
      undefined,
      1,
      64 * 1024 * 1024,
    ),
    logLevel: env.LOG_LEVEL ?? 'info',
    testHooks: env.RETRYSAFE_TEST_HOOKS === '1',
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ''),
    http,
    postgres,
    redis: {
      connectTimeoutMs: timeout('REDIS_CONNECT_TIMEOUT_MS', defaultRedisLimits.connectTimeoutMs),
      commandTimeoutMs: timeout('REDIS_COMMAND_TIMEOUT_MS', defaultRedisLimits.commandTimeoutMs),
    },
    readyTimeoutMs: timeout('READY_TIMEOUT_MS', defaultReadyTimeoutMs),
    startupTimeoutMs: timeout('STARTUP_TIMEOUT_MS', defaultStartupTimeoutMs),
    checkout: {
      paymentsUrl: env.PAYMENTS_URL || undefined,
      paymentsTimeoutMs: timeout('PAYMENTS_TIMEOUT_MS', 5_000),
      completerDelayMs: timeout('CHECKOUT_COMPLETER_DELAY_MS', 60_000, 0),
      jobPollIntervalMs: timeout('JOBS_POLL_INTERVAL_MS', 2_000),
      jobLeaseMs: timeout('JOBS_LEASE_MS', 30_000, 100),
      natsUrl: env.NATS_URL || undefined,
      natsStream: env.NATS_STREAM || 'RETRYSAFE_EVENTS',
      natsSubjectPrefix: natsSubjectPrefix(env.NATS_SUBJECT_PREFIX || 'events'),
      amqpUrl: env.AMQP_URL || undefined,
      amqpExchange: env.AMQP_EXCHANGE || 'retrysafe.events',
    },
  };
}

/** Dot-separated tokens of letters, digits, `_` and `-`: no wildcard, no empty token. */
function natsSubjectPrefix(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/.test(value))
    throw new ConfigError(
      `NATS_SUBJECT_PREFIX=${value} is not a NATS subject prefix: use tokens of letters, digits, _ and - separated by dots (e.g. events or shop.events)`,
    );
  return value;
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

/**
 * A whole number from `env[name]` in min…max, or `fallback` when unset. Decimal digits only:
 * `1.5`, `1e3`, `0x10` and ` 5 ` are refused rather than guessed at.
 */
function parseInteger(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number | undefined,
  min: number,
  max: number,
): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]+$/.test(value)) {
    throw new ConfigError(`${name}=${value} is not a whole number (decimal digits only).`);
  }
  const number = Number(value);
  if (number < min || number > max) {
    throw new ConfigError(`${name}=${value} is out of range: use ${min} to ${max}.`);
  }
  return number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}
