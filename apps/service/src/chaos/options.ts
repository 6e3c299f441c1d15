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

/**
 * `orders`: today's run (POST /orders and its audit of duplicates and losses). `checkout`: the
 * same through a payment provider of the run's own with faults, abandoned checkouts, the
 * completer and (with `--broker`) the `order.paid` events relayed to a broker and an audit consumer.
 */
export type ChaosScenario = 'orders' | 'checkout';
export type ChaosBroker = 'nats' | 'rabbitmq';
export const defaultNatsUrl = 'nats://127.0.0.1:4222';
export const defaultAmqpUrl = 'amqp://guest:guest@127.0.0.1:5672';
/** Provider faults of a checkout run: 503s before charging, resets after the charge, slow answers. */
export const defaultPaymentsFailRate = 0.05;
export const defaultPaymentsResetRate = 0.05;
export const defaultPaymentsSlowRate = 0.05;
/**
 * The service's timeout for one provider call; a slow answer is held twice this long, so every
 * slow charge is a timeout after the provider charged (the retry or the completer replays it).
 */
export const defaultPaymentsTimeoutMs = 500;
/** Share of checkout callers that give up at their first 503 and never come back. */
export const defaultAbandonRate = 0.2;
/** Short, so abandoned checkouts are finished by the completer within the run. */
export const defaultCompleterDelayMs = 2_000;
/** After the load, how long the run waits at most for the completer and the relays to finish. */
export const defaultDrainSeconds = 120;

export interface CheckoutChaosOptions {
  broker: ChaosBroker | undefined;
  paymentsFailRate: number;
  paymentsResetRate: number;
  paymentsSlowRate: number;
  paymentsTimeoutMs: number;
  abandonRate: number;
  completerDelayMs: number;
  drainSeconds: number;
}

export interface ChaosOptions {
  scenario: ChaosScenario;
  /** Set for `--scenario checkout` only. */
  checkout: CheckoutChaosOptions | undefined;
  processes: number;
  workers: number;
  orders: number;
  maxSeconds: number;
  store: ChaosStore;
  postgresUrl: string | undefined;
  redisUrl: string;
  natsUrl: string;
  amqpUrl: string;
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
  scenario: { type: 'string' },
  broker: { type: 'string' },
  'nats-url': { type: 'string' },
  'amqp-url': { type: 'string' },
  'payments-fail-rate': { type: 'string' },
  'payments-reset-rate': { type: 'string' },
  'payments-slow-rate': { type: 'string' },
  'payments-timeout-ms': { type: 'string' },
  'abandon-rate': { type: 'string' },
  'completer-delay-ms': { type: 'string' },
  'drain-seconds': { type: 'string' },
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
      second caller with the same key takes over.
  retrysafe chaos --scenario checkout [--broker nats|rabbitmq] [--payments-fail-rate 0.05]
                  [--payments-reset-rate 0.05] [--payments-slow-rate 0.05]
                  [--payments-timeout-ms 500] [--abandon-rate 0.2] [--completer-delay-ms 2000]
                  [--drain-seconds 120] [--nats-url nats://…] [--amqp-url amqp://…] [any flag above]
      The same faults, every POST /orders a checkout charged at a payments-sim process of the
      run's own that refuses charges (503), resets and slows its answers after charging (past
      the service's --payments-timeout-ms). A share of callers give up at their first 503; the
      completer must finish their orders. With --broker, every process relays order.paid to a
      JetStream stream or a RabbitMQ exchange of the run's own, read by an audit consumer with
      its own ledger. After the load the run waits (at most --drain-seconds) for the completer
      and the relays, then audits the database, the provider and the consumer. Exits 1 on any
      duplicate, lost, double-charged or unpaid order, orphaned charge, missing or twice
      processed event.`;

type Flags = {
  [name in keyof typeof chaosFlags]?: (typeof chaosFlags)[name]['type'] extends 'boolean' ? boolean : string;
};

export class ChaosOptionError extends Error {
  override name = 'ChaosOptionError';
}

export function parseChaosOptions(flags: Flags, env: NodeJS.ProcessEnv, isTerminal: boolean): ChaosOptions {
  const scenario = flags.scenario ?? 'orders';
  if (scenario !== 'orders' && scenario !== 'checkout') {
    throw new ChaosOptionError(`--scenario ${scenario}: choose orders or checkout`);
  }
  const checkout = scenario === 'checkout' ? parseCheckoutOptions(flags) : undefined;
  if (checkout === undefined) {
    const only = checkoutOnlyFlags.find((name) => flags[name] !== undefined);
    if (only !== undefined) throw new ChaosOptionError(`--${only} needs --scenario checkout`);
  }
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
    scenario,
    checkout,
    processes: integer('processes', flags.processes, defaultProcesses, 1, 32),
    workers: integer('workers', flags.workers, defaultWorkers, 1, 1_000),
    orders: integer('orders', flags.orders, defaultOrders, 1, 10_000_000),
    maxSeconds: integer('max-seconds', flags['max-seconds'], defaultMaxSeconds, 1, 86_400),
    store,
    postgresUrl: flags['database-url'] ?? env.DATABASE_URL,
    redisUrl: flags['redis-url'] ?? env.REDIS_URL ?? defaultRedisUrl,
    natsUrl: flags['nats-url'] ?? env.NATS_URL ?? defaultNatsUrl,
    amqpUrl: flags['amqp-url'] ?? env.AMQP_URL ?? defaultAmqpUrl,
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

const checkoutOnlyFlags = [
  'broker',
  'nats-url',
  'amqp-url',
  'payments-fail-rate',
  'payments-reset-rate',
  'payments-slow-rate',
  'payments-timeout-ms',
  'abandon-rate',
  'completer-delay-ms',
  'drain-seconds',
] as const satisfies ReadonlyArray<keyof Flags>;

function parseCheckoutOptions(flags: Flags): CheckoutChaosOptions {
  const broker = flags.broker;
  if (broker !== undefined && broker !== 'nats' && broker !== 'rabbitmq') {
    throw new ChaosOptionError(`--broker ${broker}: choose nats or rabbitmq`);
  }
  return {
    broker,
    paymentsFailRate: rate('payments-fail-rate', flags['payments-fail-rate'], defaultPaymentsFailRate),
    paymentsResetRate: rate('payments-reset-rate', flags['payments-reset-rate'], defaultPaymentsResetRate),
    paymentsSlowRate: rate('payments-slow-rate', flags['payments-slow-rate'], defaultPaymentsSlowRate),
    // Slow answers are held twice this: within the simulator's bound of 120 s.
    paymentsTimeoutMs: integer(
      'payments-timeout-ms',
      flags['payments-timeout-ms'],
      defaultPaymentsTimeoutMs,
      50,
      60_000,
    ),
    abandonRate: rate('abandon-rate', flags['abandon-rate'], defaultAbandonRate),
    completerDelayMs: integer(
      'completer-delay-ms',
      flags['completer-delay-ms'],
      defaultCompleterDelayMs,
      0,
      600_000,
    ),
    drainSeconds: integer('drain-seconds', flags['drain-seconds'], defaultDrainSeconds, 1, 86_400),
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
