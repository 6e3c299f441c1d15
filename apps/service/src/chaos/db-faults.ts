// Faults a chaos run injects on the database side, each at random moments: PostgreSQL backends
// of the service processes terminated (pg_terminate_backend, only in the run's own scratch
// database), their connections cut or stalled through the database proxy, and a Redis server
// of the run's own restarted. Never the shared servers themselves.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PostgresLimits } from '../config.js';
import type { DbProxy } from './db-proxy.js';
import type { OwnRedisServer } from './redis-server.js';

/** How long a backend kill looks for a backend inside a transaction before taking any. */
const backendSearchMs = 1_000;
const backendPollMs = 20;

/**
 * Calls `action` again and again, `meanMs` × 0.5–1.5 apart, until `signal` aborts; 0 means
 * never. Each action runs to its end before the next wait starts. Errors are collected.
 */
export async function repeatAtRandom(
  meanMs: number,
  signal: AbortSignal,
  action: () => Promise<void>,
  errors: unknown[],
): Promise<void> {
  if (meanMs === 0) return;
  for (;;) {
    const woke = await sleep(meanMs * (0.5 + Math.random()), true, { signal }).catch(() => false);
    if (!woke) return;
    try {
      await action();
    } catch (error) {
      if (!signal.aborted) errors.push(error);
    }
  }
}

export interface DbFaultCounts {
  /** Backends of the service processes terminated with pg_terminate_backend, … */
  backendsTerminated: number;
  /** … of which were inside a transaction. */
  backendsTerminatedInTransaction: number;
  /** Stalls shorter than every PG timeout of the service (requests wait, then go on). */
  stallsShort: number;
  /** Stalls longer than its query timeout (requests give up with a 503). */
  stallsLong: number;
  redisRestarts: number;
}

/** Terminates the service's backends in `database` only, from an admin connection to another one. */
export interface BackendKiller {
  killOne(): Promise<void>;
  close(): Promise<void>;
}

export async function createBackendKiller(
  adminUrl: string,
  database: string,
  counts: DbFaultCounts,
): Promise<BackendKiller> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', () => {});
  await admin.connect();
  const find = async () => {
    const { rows } = await admin.query<{ pid: number; in_transaction: boolean }>(
      `SELECT pid, xact_start IS NOT NULL AS in_transaction FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      [database],
    );
    return rows;
  };
  return {
    async killOne() {
      const searchUntil = Date.now() + backendSearchMs;
      let rows = await find();
      while (!rows.some((row) => row.in_transaction) && Date.now() < searchUntil) {
        await sleep(backendPollMs);
        rows = await find();
      }
      const inTransaction = rows.filter((row) => row.in_transaction);
      const pool = inTransaction.length > 0 ? inTransaction : rows;
      const victim = pool[Math.floor(Math.random() * pool.length)];
      if (!victim) return;
      const { rows: result } = await admin.query<{ terminated: boolean }>(
        // The datname check again, in the same statement: a pid is never reused under our feet.
        `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE pid = $1 AND datname = $2`,
        [victim.pid, database],
      );
      if (result[0]?.terminated) {
        counts.backendsTerminated++;
        if (victim.in_transaction) counts.backendsTerminatedInTransaction++;
      }
    },
    close: () => admin.end().catch(() => {}),
  };
}

/**
 * Stall lengths around the service's PostgreSQL bounds: a short one under the smallest of them
 * (nothing times out, requests just wait), a long one past the client-side query timeout (every
 * query in flight gives up with a 503, the pool replaces the connection). They alternate,
 * long first, so a short run sees both.
 */
export function stallLengthMs(limits: PostgresLimits, index: number): { ms: number; long: boolean } {
  if (index % 2 === 1) {
    const smallest = Math.min(limits.connectTimeoutMs, limits.lockTimeoutMs, limits.statementTimeoutMs);
    return { ms: Math.round(smallest * (0.25 + 0.5 * Math.random())), long: false };
  }
  return { ms: Math.round(limits.queryTimeoutMs * (1.1 + 0.2 * Math.random())), long: true };
}

export interface DbFaultOptions {
  signal: AbortSignal;
  errors: unknown[];
  counts: DbFaultCounts;
  killEveryMs: number;
  cutEveryMs: number;
  stallEveryMs: number;
  redisRestartEveryMs: number;
  killer: BackendKiller | undefined;
  proxy: DbProxy | undefined;
  limits: PostgresLimits;
  redis: OwnRedisServer | undefined;
}

/** Runs every enabled database-side fault until `signal` aborts. */
export function runDbFaults(options: DbFaultOptions): Promise<unknown> {
  const { signal, errors, counts, killer, proxy, redis } = options;
  let stalls = 0;
  return Promise.all([
    killer && repeatAtRandom(options.killEveryMs, signal, () => killer.killOne(), errors),
    proxy && repeatAtRandom(options.cutEveryMs, signal, () => proxy.cut(), errors),
    proxy &&
      repeatAtRandom(
        options.stallEveryMs,
        signal,
        async () => {
          const { ms, long } = stallLengthMs(options.limits, stalls++);
          if (long) counts.stallsLong++;
          else counts.stallsShort++;
          await proxy.stall(ms, signal);
        },
        errors,
      ),
    redis &&
      repeatAtRandom(
        options.redisRestartEveryMs,
        signal,
        async () => {
          await redis.restart();
          counts.redisRestarts++;
        },
        errors,
      ),
  ]);
}
