// What a chaos run found, as a table for people and as JSON for machines. A run passes when
// no order was duplicated, none was lost, and no unasked-for order appeared.
import type { AuditFigures } from './audit.js';
import type { ChaosOptions } from './options.js';
import type { ProxyCounts } from './proxy.js';
import type { WorkerCounts } from './workers.js';

export interface ChaosReport {
  passed: boolean;
  runId: string;
  data: string;
  /** The run's settings, without URLs (they may carry passwords). */
  settings: Omit<ChaosOptions, 'progress' | 'jsonPath' | 'postgresUrl' | 'redisUrl'>;
  durationMs: number;
  faults: {
    responsesReset: number;
    responsesDelayed: number;
    /** 5xx answers the test hooks injected, by status. */
    serverErrors: Record<string, number>;
    kills: number;
    restarts: number;
    connectionsWithNoProcessUp: number;
  };
  /** What went wrong beyond the injected faults. */
  problems: {
    /** 5xx answers nobody injected, by status. */
    serverErrors: Record<string, number>;
    /** Service processes that exited without being killed. */
    unexpectedExits: string[];
  };
  traffic: {
    httpAttempts: number;
    proxiedResponses: number;
    failedAttemptsByKind: WorkerCounts['failedAttempts'];
    callerRepeats: number;
  };
  orders: AuditFigures;
}

/**
 * A run passes when no order was duplicated or lost and nothing else went wrong: no order
 * nobody asked for, no call refused for good (the orders are valid, so a refusal such as a 422
 * idempotency-key-reuse is a bug), no 500 that was not injected, no process that died by
 * itself, and at least one order made (a run that created nothing proves nothing).
 */
export function passed(figures: AuditFigures, problems: ChaosReport['problems']): boolean {
  return (
    figures.duplicated === 0 &&
    figures.lost === 0 &&
    figures.unexpected === 0 &&
    figures.refused === 0 &&
    figures.created > 0 &&
    (problems.serverErrors['500'] ?? 0) === 0 &&
    problems.unexpectedExits.length === 0
  );
}

export function faultsFrom(
  proxy: ProxyCounts,
  workers: WorkerCounts,
  fleet: { kills: number; restarts: number },
): ChaosReport['faults'] {
  return {
    responsesReset: proxy.resets,
    responsesDelayed: proxy.delays,
    serverErrors: workers.injectedServerErrors,
    kills: fleet.kills,
    restarts: fleet.restarts,
    connectionsWithNoProcessUp: proxy.refused,
  };
}

export function formatReport(report: ChaosReport): string {
  const { orders, faults, traffic, settings } = report;
  const byStatus = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([status, n]) => `${n}× ${status}`)
      .join(', ') || 0;
  const rows: Array<[string, string | number]> = [
    ['logical orders attempted', orders.attempted],
    ['created (exist in the database)', orders.created],
    ['duplicated', orders.duplicated],
    ['lost (caller saw 201, order missing)', orders.lost],
    ['unknown outcome (caller gave up)', orders.unknownOutcome],
    ['  … of which exist', orders.unknownButCreated],
    ['failed for good (4xx or bad answer)', orders.refused],
    ['unexpected orders', orders.unexpected],
    ['answers that were replays', orders.replayedAnswers],
    ['—', ''],
    ['responses reset after the server answered', faults.responsesReset],
    ['responses delayed past the timeout', faults.responsesDelayed],
    ['injected 5xx answers', byStatus(faults.serverErrors)],
    ['other 5xx answers', byStatus(report.problems.serverErrors)],
    ['processes that died by themselves', report.problems.unexpectedExits.length],
    ['processes SIGKILLed / restarted', `${faults.kills} / ${faults.restarts}`],
    ['connections with no process up', faults.connectionsWithNoProcessUp],
    ['HTTP attempts / repeats by callers', `${traffic.httpAttempts} / ${traffic.callerRepeats}`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    `retrysafe chaos ${report.runId}: ${settings.processes} processes on ${report.data}, ` +
      `${settings.workers} workers, ${(report.durationMs / 1000).toFixed(1)} s`,
    '',
    ...rows.map(([label, value]) => (label === '—' ? '' : `  ${label.padEnd(width)}  ${value}`)),
    '',
    report.passed ? 'PASS: no duplicate and no lost order.' : `FAIL: ${failures(report).join(', ')}.`,
  ];
  return `${lines.join('\n')}\n`;
}

function failures(report: ChaosReport): string[] {
  const { orders, problems } = report;
  const found: string[] = [];
  if (orders.duplicated > 0) found.push(`${orders.duplicated} duplicated`);
  if (orders.lost > 0) found.push(`${orders.lost} lost`);
  if (orders.unexpected > 0) found.push(`${orders.unexpected} unexpected`);
  if (orders.refused > 0) found.push(`${orders.refused} failed for good`);
  if (orders.created === 0) found.push('no order created');
  if (problems.serverErrors['500']) found.push(`${problems.serverErrors['500']} real 500 answers`);
  if (problems.unexpectedExits.length > 0) found.push(`${problems.unexpectedExits.join('; ')}`);
  return found;
}
