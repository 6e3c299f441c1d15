// `retrysafe chaos`: one bounded run. Scratch data (and for a checkout run its provider and
// event audit) → service processes (behind a database proxy when the database is to be cut or
// stalled) → fault proxy → workers placing orders while processes are killed and the database
// side fails → (checkout: wait for the completer and the relays) → stop everything → audit → report.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { resolveServiceConfig } from '../config.js';
import { auditOrders, readChaosOrders } from './audit.js';
import { type CheckoutAudit, type CheckoutSide, startCheckoutSide } from './checkout-side.js';
import {
  type BackendKiller,
  createBackendKiller,
  type DbFaultCounts,
  repeatAtRandom,
  runDbFaults,
} from './db-faults.js';
import { type DbProxy, startDbProxy } from './db-proxy.js';
import { Fleet } from './fleet.js';
import type { ChaosOptions } from './options.js';
import { createProgress } from './progress.js';
import { type ChaosProxy, startChaosProxy } from './proxy.js';
import { type ChaosReport, checkoutFailures, faultsFrom, formatReport, passed } from './report.js';
import { createScratch } from './scratch.js';
import { placeOrders, skuPrefix } from './workers.js';

/** The demo key seeded into every fresh database: tenant a, read-write. */
const chaosToken = 'demo-writer-a';
const chaosTenant = 'a';
/** A killed process is started again after this pause (its port is new; the proxy follows). */
const restartDelayMs = 200;
/** A lease-overrun order's first request is held this many leases; its second caller starts after 1.5. */
const overrunHoldLeases = 3;
const overrunSecondCallerLeases = 1.5;

export interface ChaosIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Aborted (e.g. on Ctrl-C): no new order starts; the run cleans up and reports what it has. */
  signal?: AbortSignal;
}

export async function runChaos(options: ChaosOptions, io: ChaosIo): Promise<ChaosReport> {
  const runId = randomBytes(4).toString('hex');
  const dbCounts: DbFaultCounts = {
    backendsTerminated: 0,
    backendsTerminatedInTransaction: 0,
    stallsShort: 0,
    stallsLong: 0,
    redisRestarts: 0,
  };
  const scratch = await createScratch({
    store: options.store,
    runId,
    postgresUrl: options.postgresUrl,
    redisUrl: options.redisUrl,
    ownRedis: options.redisRestartEveryMs > 0,
    keep: options.keep,
  });
  const startedAtMs = Date.now();
  let checkout: CheckoutSide | undefined;
  let proxy: ChaosProxy | undefined;
  let dbProxy: DbProxy | undefined;
  let backendKiller: BackendKiller | undefined;
  let fleet: Fleet | undefined;
  try {
    if (options.checkout) {
      checkout = await startCheckoutSide({
        runId,
        checkout: options.checkout,
        natsUrl: options.natsUrl,
        amqpUrl: options.amqpUrl,
        keep: options.keep,
      });
    }
    const env = {
      ...scratch.env,
      ...checkout?.env,
      IDEMPOTENCY_LEASE_MS: String(options.leaseMs),
      RETRYSAFE_TEST_FAIL_RATE: String(options.errorRate),
    };
    let database = scratch.dbArgument;
    if (scratch.database.kind === 'postgres' && (options.dbCutEveryMs > 0 || options.dbStallEveryMs > 0)) {
      const target = new URL(scratch.database.url);
      dbProxy = await startDbProxy({ host: target.hostname, port: Number(target.port || 5432) });
      database = dbProxy.through(scratch.database.url);
    }
    if (options.dbKillEveryMs > 0 && scratch.postgresDatabase && options.postgresUrl) {
      backendKiller = await createBackendKiller(options.postgresUrl, scratch.postgresDatabase, dbCounts);
    }
    const running = new Fleet({ processes: options.processes, database, env });
    fleet = running;
    await running.start();
    proxy = await startChaosProxy({
      backends: () => running.backends(),
      rates: { reset: options.resetRate, delay: options.delayRate },
      delayMs: options.timeoutMs + 500,
    });
    const counts = proxy.counts;
    const progress = createProgress(options.progress, io.stderr);
    const snapshot = (done: number) => ({
      done,
      total: options.orders,
      elapsedMs: Date.now() - startedAtMs,
      kills: running.kills,
      resets: counts.resets,
      delays: counts.delays,
    });

    // Kills come at random moments whether or not the last victim is back up yet.
    const placing = new AbortController();
    const restartErrors: unknown[] = [];
    const faultErrors: unknown[] = [];
    const restarts: Promise<void>[] = [];
    const killer = repeatAtRandom(
      options.killEveryMs,
      placing.signal,
      async () => {
        restarts.push(
          running.killOneAndRestart(Math.random, restartDelayMs).catch((error: unknown) => {
            restartErrors.push(error);
          }),
        );
      },
      restartErrors,
    );
    const dbFaults = runDbFaults({
      signal: placing.signal,
      errors: faultErrors,
      counts: dbCounts,
      killEveryMs: options.dbKillEveryMs,
      cutEveryMs: options.dbCutEveryMs,
      stallEveryMs: options.dbStallEveryMs,
      redisRestartEveryMs: options.redisRestartEveryMs,
      killer: backendKiller,
      proxy: dbProxy,
      limits: resolveServiceConfig({}, { ...process.env, ...env }).postgres,
      redis: scratch.ownRedis,
    });
    const deadlineAtMs = startedAtMs + options.maxSeconds * 1000;
    let placed: Awaited<ReturnType<typeof placeOrders>>;
    try {
      placed = await placeOrders({
        baseUrl: `http://127.0.0.1:${proxy.port}`,
        token: chaosToken,
        runId,
        workers: options.workers,
        orders: options.orders,
        keepGoing: () => Date.now() < deadlineAtMs && io.signal?.aborted !== true,
        timeoutMs: options.timeoutMs,
        maxCalls: 5,
        ...(options.leaseOverrunRate > 0
          ? {
              leaseOverrun: {
                rate: options.leaseOverrunRate,
                holdMs: options.leaseMs * overrunHoldLeases,
                secondCallerAfterMs: options.leaseMs * overrunSecondCallerLeases,
              },
            }
          : {}),
        ...(options.checkout ? { abandonRate: options.checkout.abandonRate } : {}),
        onSettled: (done) => progress.update(snapshot(done)),
      });
    } finally {
      placing.abort();
      await Promise.all([killer, dbFaults]);
      await Promise.all(restarts);
    }
    progress.finish(snapshot(placed.orders.length));
    if (restartErrors.length > 0) {
      throw new Error(`a killed service process did not start again: ${String(restartErrors[0])}`);
    }
    if (faultErrors.length > 0) {
      throw new Error(`a database-side fault could not be injected: ${String(faultErrors[0])}`);
    }
    // The fleet keeps running (its job runners complete abandoned checkouts and relay events).
    const drained = await checkout?.drain(scratch.database, chaosTenant, skuPrefix(runId), io.signal);
    await proxy.close();
    await running.stop();
    await dbProxy?.close();

    const stored = await readChaosOrders(scratch.database, chaosTenant, skuPrefix(runId));
    const figures = auditOrders(placed.orders, stored);
    const audited: CheckoutAudit | undefined = await checkout?.audit(
      placed.orders,
      scratch.database,
      chaosTenant,
      skuPrefix(runId),
    );
    const problems = {
      serverErrors: placed.counts.otherServerErrors,
      unexpectedExits: [...running.unexpectedExits, ...(checkout?.unexpectedExits() ?? [])],
      startTimeouts: running.startTimeouts,
    };
    const {
      progress: _p,
      jsonPath: _j,
      postgresUrl: _pg,
      redisUrl: _r,
      natsUrl: _n,
      amqpUrl: _a,
      ...settings
    } = options;
    const faults = faultsFrom(counts, placed.counts, running, dbCounts, dbProxy?.counts);
    const checkoutParts =
      audited && checkout && drained
        ? {
            charges: audited.charges,
            events: audited.events,
            checkout: {
              events: checkout.events,
              drainMs: drained.drainMs,
              drainTimedOut: drained.timedOut,
              auditConsumerRestarts: checkout.auditConsumerRestarts(),
            },
          }
        : {};
    if (audited) {
      faults.provider = { ...audited.provider, checkoutAnswers503: placed.counts.paymentsUnavailable };
    }
    const orders = audited ? { ...figures, ...audited.orders } : figures;
    const report: ChaosReport = {
      passed:
        passed(figures, problems) &&
        checkoutFailures({ orders: audited?.orders ?? {}, ...checkoutParts }).length === 0,
      runId,
      data: scratch.describe,
      settings,
      durationMs: Date.now() - startedAtMs,
      faults,
      problems,
      traffic: {
        httpAttempts: placed.orders.reduce((sum, order) => sum + order.attempts, 0),
        proxiedResponses: counts.responses,
        failedAttemptsByKind: placed.counts.failedAttempts,
        callerRepeats: placed.counts.callerRepeats,
      },
      orders,
      ...checkoutParts,
    };
    io.stdout(formatReport(report));
    if (options.jsonPath) await writeFile(options.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await proxy?.close();
    await fleet?.stop();
    await dbProxy?.close();
    await backendKiller?.close();
    await checkout?.close();
    await scratch.remove();
  }
}
