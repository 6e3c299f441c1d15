// `retrysafe chaos` options: defaults at the top, parsed and checked once from the command line.
import type { ChaosStore } from './scratch.js';

export const defaultProcesses = 3;
export const defaultWorkers = 16;
export const defaultOrders = 500;
/** The run stops starting new orders after this long, even short of `orders`. */
export const defaultMaxSeconds = 300;
export const defaultResetRate = 0.05;
export const defaultDelayRate = 0.03;
export const defaultErrorRate = 0.05;
/** Mean time between SIGKILLs (each wait is 0.5–1.5× this). */
export const defaultKillEveryMs = 3_000;
/** The client's per-attempt timeout; a delayed response is held 500 ms longer than this. */
export const defaultTimeoutMs = 1_000;
/** Short, so a claim left by a killed process is taken over within the run. */
export const defaultLeaseMs = 2_000;
export const defaultRedisUrl = 'redis://127.0.0.1:6379';
/**
 * Database-side faults, each off (0) unless asked for: mean time between pg_terminate_backend
 * of a service backend, between connection cuts, between stalls (PostgreSQL stores), and
 * between restarts of the run's own redis-server (records in Redis).
 */
export const defaultDbKillEveryMs = 0;
export const defaultDbCutEveryMs = 0;
export const defaultDbStallEveryMs = 0;
export const defaultRedisRestartEveryMs = 0;
/** Fraction of orders whose first request is held in its transaction past its lease. */
export const defaultLeaseOverrunRate = 0;

export interface ChaosOptions {
  processes: number;
  workers: number;
  orders: number;
  maxSeconds: number;
  store: ChaosStore;
  postgresUrl: string | undefined;
  redisUrl: string;
  resetRate: number;
  delayRate: number;
  errorRate: number;
  killEveryMs: number;
  timeoutMs: number;
  leaseMs: number;
  dbKillEveryMs: number;
  dbCutEveryMs: number;
  dbStallEveryMs: number;
  redisRestartEveryMs: number;
  leaseOverrunRate: number;
  /** Write the report here as JSON. */
  jsonPath: string | undefined;
  /** Keep the scratch database (and Redis keys) for inspection. */
  keep: boolean;
  /** Redraw a progress bar (a terminal) or print a line every 10% (a log). */
  progress: 'bar' | 'lines' | 'off';
}

export const chaosFlags = {
  processes: { type: 'string' },
  workers: { type: 'string' },
  orders: { type: 'string' },
  'max-seconds': { type: 'string' },
  store: { type: 'string' },
  'database-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'reset-rate': { type: 'string' },
  'delay-rate': { type: 'string' },
  'error-rate': { type: 'string' },
  'kill-every-ms': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'lease-ms': { type: 'string' },
  'db-kill-every-ms': { type: 'string' },
  'db-cut-every-ms': { type: 'string' },
  'db-stall-every-ms': { type: 'string' },
  'redis-restart-every-ms': { type: 'string' },
  'lease-overrun-rate': { type: 'string' },
  json: { type: 'string' },
  keep: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

export const chaosUsage = `  retrysafe chaos [--store sqlite|postgres|redis|postgres+redis] [--processes 3]
                  [--workers 16] [--orders 500] [--max-seconds 300] [--reset-rate 0.05]
                  [--delay-rate 0.03] [--error-rate 0.05] [--kill-every-ms 3000]
                  [--timeout-ms 1000] [--lease-ms 2000] [--lease-overrun-rate 0]
                  [--db-kill-every-ms 0] [--db-cut-every-ms 0] [--db-stall-every-ms 0]
                  [--redis-restart-every-ms 0] [--database-url postgres://…]
                  [--redis-url redis://…] [--json report.json] [--keep] [--quiet]
      Starts service processes on a scratch database behind a fault-injecting proxy, places
      orders through retrysafe/client while resetting connections, delaying responses,
      failing writes with 5xx and SIGKILLing processes, then audits the database. Exits 1
      on any duplicate or lost order. Database-side faults (0 = off): PostgreSQL backends
      terminated, connections cut mid-transaction, the database stalled (through a proxy of
      its own); with records in Redis, a redis-server of the run's own restarted (AOF on).
      --lease-overrun-rate holds that share of first requests past their lease while a
      second caller with the same key takes over.`;

type Flags = {
  [name in keyof typeof chaosFlags]?: (typeof chaosFlags)[name]['type'] extends 'boolean' ? boolean : string;
};

export class ChaosOptionError extends Error {
  override name = 'ChaosOptionError';
}

export function parseChaosOptions(flags: Flags, env: NodeJS.ProcessEnv, isTerminal: boolean): ChaosOptions {
  const store = flags.store ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'postgres' && store !== 'redis' && store !== 'postgres+redis') {
    throw new ChaosOptionError(`--store ${store}: choose sqlite, postgres, redis or postgres+redis`);
  }
  const onPostgres = store === 'postgres' || store === 'postgres+redis';
  const inRedis = store === 'redis' || store === 'postgres+redis';
  const every = (
    name: keyof Flags & `${string}-every-ms`,
    fallback: number,
    allowed: boolean,
    needs: string,
  ) => {
    const ms = integer(name, flags[name], fallback, 0, 3_600_000);
    if (ms > 0 && !allowed) throw new ChaosOptionError(`--${name} needs ${needs}`);
    return ms;
  };
  const onPg = 'PostgreSQL data (--store postgres or postgres+redis)';
  const onRedis = 'records in Redis (--store redis or postgres+redis)';
  const resetRate = rate('reset-rate', flags['reset-rate'], defaultResetRate);
  const delayRate = rate('delay-rate', flags['delay-rate'], defaultDelayRate);
  if (resetRate + delayRate > 1) {
    throw new ChaosOptionError(
      '--reset-rate and --delay-rate together exceed 1 (each response gets one fault)',
    );
  }
  return {
    processes: integer('processes', flags.processes, defaultProcesses, 1, 32),
    workers: integer('workers', flags.workers, defaultWorkers, 1, 1_000),
    orders: integer('orders', flags.orders, defaultOrders, 1, 10_000_000),
    maxSeconds: integer('max-seconds', flags['max-seconds'], defaultMaxSeconds, 1, 86_400),
    store,
    postgresUrl: flags['database-url'] ?? env.DATABASE_URL,
    redisUrl: flags['redis-url'] ?? env.REDIS_URL ?? defaultRedisUrl,
    resetRate,
    delayRate,
    errorRate: rate('error-rate', flags['error-rate'], defaultErrorRate),
    killEveryMs: integer('kill-every-ms', flags['kill-every-ms'], defaultKillEveryMs, 0, 3_600_000),
    timeoutMs: integer('timeout-ms', flags['timeout-ms'], defaultTimeoutMs, 50, 600_000),
    leaseMs: integer('lease-ms', flags['lease-ms'], defaultLeaseMs, 100, 3_600_000),
    dbKillEveryMs: every('db-kill-every-ms', defaultDbKillEveryMs, onPostgres, onPg),
    dbCutEveryMs: every('db-cut-every-ms', defaultDbCutEveryMs, onPostgres, onPg),
    dbStallEveryMs: every('db-stall-every-ms', defaultDbStallEveryMs, onPostgres, onPg),
    redisRestartEveryMs: every('redis-restart-every-ms', defaultRedisRestartEveryMs, inRedis, onRedis),
    leaseOverrunRate: rate('lease-overrun-rate', flags['lease-overrun-rate'], defaultLeaseOverrunRate),
    jsonPath: flags.json,
    keep: flags.keep ?? false,
    progress: flags.quiet ? 'off' : isTerminal ? 'bar' : 'lines',
  };
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ChaosOptionError(`--${name} ${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

function rate(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new ChaosOptionError(`--${name} ${value}: expected a fraction from 0 to 1`);
  }
  return n;
}
