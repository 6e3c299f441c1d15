// `retrysafe chaos`: one bounded run. Scratch data → service processes → fault proxy →
// workers placing orders while processes are killed → stop everything → audit → report.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { auditOrders, readChaosOrders } from './audit.js';
import { Fleet } from './fleet.js';
import type { ChaosOptions } from './options.js';
import { createProgress } from './progress.js';
import { startChaosProxy } from './proxy.js';
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
  try {
    await fleet.start();
    const proxy = await startChaosProxy({
      backends: () => fleet.backends(),
      rates: { reset: options.resetRate, delay: options.delayRate },
      delayMs: options.timeoutMs + 500,
    });
    const progress = createProgress(options.progress, io.stderr);
    const snapshot = (done: number) => ({
      done,
      total: options.orders,
      elapsedMs: Date.now() - startedAtMs,
      kills: fleet.kills,
      resets: proxy.counts.resets,
      delays: proxy.counts.delays,
    });

    // Kills come at random moments whether or not the last victim is back up yet.
    let placing = true;
    const restarts: Promise<void>[] = [];
    const killer = (async () => {
      if (options.killEveryMs === 0) return;
      while (placing) {
        await new Promise((resolve) => setTimeout(resolve, options.killEveryMs * (0.5 + Math.random())));
        if (placing) restarts.push(fleet.killOneAndRestart(Math.random, restartDelayMs));
      }
    })();
    let placed: Awaited<ReturnType<typeof placeOrders>>;
    try {
      placed = await placeOrders({
        baseUrl: `http://127.0.0.1:${proxy.port}`,
        token: chaosToken,
        runId,
        workers: options.workers,
        orders: options.orders,
        deadlineAtMs: startedAtMs + options.maxSeconds * 1000,
        timeoutMs: options.timeoutMs,
        maxCalls: 5,
        onSettled: (done) => progress.update(snapshot(done)),
      });
    } finally {
      placing = false;
      await killer;
      await Promise.all(restarts);
      await proxy.close();
      await fleet.stop();
    }
    progress.finish(snapshot(placed.orders.length));

    const stored = await readChaosOrders(scratch.database, chaosTenant, skuPrefix(runId));
    const figures = auditOrders(placed.orders, stored);
    const { progress: _p, jsonPath: _j, postgresUrl: _pg, redisUrl: _r, ...settings } = options;
    const report: ChaosReport = {
      passed: passed(figures),
      runId,
      data: scratch.describe,
      settings,
      durationMs: Date.now() - startedAtMs,
      faults: faultsFrom(proxy.counts, placed.counts, fleet),
      traffic: {
        httpAttempts: placed.orders.reduce((sum, order) => sum + order.attempts, 0),
        proxiedResponses: proxy.counts.responses,
        failedAttemptsByKind: placed.counts.failedAttempts,
        callerRepeats: placed.counts.callerRepeats,
      },
      orders: figures,
    };
    io.stdout(formatReport(report));
    if (options.jsonPath) await writeFile(options.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await fleet.stop();
    await scratch.remove();
  }
}
