// `retrysafe chaos`: one bounded run. Scratch data → service processes → fault proxy →
// workers placing orders while processes are killed → stop everything → audit → report.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { auditOrders, readChaosOrders } from './audit.js';
import { Fleet } from './fleet.js';
import type { ChaosOptions } from './options.js';
import { createProgress } from './progress.js';
import { type ChaosProxy, startChaosProxy } from './proxy.js';
import { type ChaosReport, faultsFrom, formatReport, passed } from './report.js';
import { createScratch } from './scratch.js';
import { placeOrders, skuPrefix } from './workers.js';

/** The demo key seeded into every fresh database: tenant a, read-write. */
const chaosToken = 'demo-writer-a';
const chaosTenant = 'a';
/** A killed process is started again after this pause (its port is new; the proxy follows). */
const restartDelayMs = 200;

export interface ChaosIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Aborted (e.g. on Ctrl-C): no new order starts; the run cleans up and reports what it has. */
  signal?: AbortSignal;
}

export async function runChaos(options: ChaosOptions, io: ChaosIo): Promise<ChaosReport> {
  const runId = randomBytes(4).toString('hex');
  const scratch = await createScratch({
    store: options.store,
    runId,
    postgresUrl: options.postgresUrl,
    redisUrl: options.redisUrl,
    keep: options.keep,
  });
  const startedAtMs = Date.now();
  const fleet = new Fleet({
    processes: options.processes,
    database: scratch.dbArgument,
    env: {
      ...scratch.env,
      IDEMPOTENCY_LEASE_MS: String(options.leaseMs),
      RETRYSAFE_TEST_FAIL_RATE: String(options.errorRate),
    },
  });
  let proxy: ChaosProxy | undefined;
  try {
    await fleet.start();
    proxy = await startChaosProxy({
      backends: () => fleet.backends(),
      rates: { reset: options.resetRate, delay: options.delayRate },
      delayMs: options.timeoutMs + 500,
    });
    const counts = proxy.counts;
    const progress = createProgress(options.progress, io.stderr);
    const snapshot = (done: number) => ({
      done,
      total: options.orders,
      elapsedMs: Date.now() - startedAtMs,
      kills: fleet.kills,
      resets: counts.resets,
      delays: counts.delays,
    });

    // Kills come at random moments whether or not the last victim is back up yet.
    const placing = new AbortController();
    const restartErrors: unknown[] = [];
    const restarts: Promise<void>[] = [];
    const killer = (async () => {
      if (options.killEveryMs === 0) return;
      for (;;) {
        const waitMs = options.killEveryMs * (0.5 + Math.random());
        const woke = await sleep(waitMs, true, { signal: placing.signal }).catch(() => false);
        if (!woke) return;
        restarts.push(
          fleet.killOneAndRestart(Math.random, restartDelayMs).catch((error: unknown) => {
            restartErrors.push(error);
          }),
        );
      }
    })();
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
        onSettled: (done) => progress.update(snapshot(done)),
      });
    } finally {
      placing.abort();
      await killer;
      await Promise.all(restarts);
    }
    progress.finish(snapshot(placed.orders.length));
    if (restartErrors.length > 0) {
      throw new Error(`a killed service process did not start again: ${String(restartErrors[0])}`);
    }
    await proxy.close();
    await fleet.stop();

    const stored = await readChaosOrders(scratch.database, chaosTenant, skuPrefix(runId));
    const figures = auditOrders(placed.orders, stored);
    const problems = {
      serverErrors: placed.counts.otherServerErrors,
      unexpectedExits: fleet.unexpectedExits,
    };
    const { progress: _p, jsonPath: _j, postgresUrl: _pg, redisUrl: _r, ...settings } = options;
    const report: ChaosReport = {
      passed: passed(figures, problems),
      runId,
      data: scratch.describe,
      settings,
      durationMs: Date.now() - startedAtMs,
      faults: faultsFrom(counts, placed.counts, fleet),
      problems,
      traffic: {
        httpAttempts: placed.orders.reduce((sum, order) => sum + order.attempts, 0),
        proxiedResponses: counts.responses,
        failedAttemptsByKind: placed.counts.failedAttempts,
        callerRepeats: placed.counts.callerRepeats,
      },
      orders: figures,
    };
    io.stdout(formatReport(report));
    if (options.jsonPath) await writeFile(options.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await proxy?.close();
    await fleet.stop();
    await scratch.remove();
  }
}
