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
    serverErrors: Record<string, number>;
    kills: number;
    restarts: number;
    connectionsWithNoProcessUp: number;
  };
  traffic: {
    httpAttempts: number;
    proxiedResponses: number;
    failedAttemptsByKind: WorkerCounts['failedAttempts'];
    callerRepeats: number;
  };
  orders: AuditFigures;
}

export function passed(figures: AuditFigures): boolean {
  return figures.duplicated === 0 && figures.lost === 0 && figures.unexpected === 0;
}

export function faultsFrom(
  proxy: ProxyCounts,
  workers: WorkerCounts,
  fleet: { kills: number; restarts: number },
): ChaosReport['faults'] {
  return {
    responsesReset: proxy.resets,
    responsesDelayed: proxy.delays,
    serverErrors: workers.serverStatuses,
    kills: fleet.kills,
    restarts: fleet.restarts,
    connectionsWithNoProcessUp: proxy.refused,
  };
}

export function formatReport(report: ChaosReport): string {
  const { orders, faults, traffic, settings } = report;
  const serverErrors = Object.entries(faults.serverErrors)
    .map(([status, n]) => `${n}× ${status}`)
    .join(', ');
  const rows: Array<[string, string | number]> = [
    ['logical orders attempted', orders.attempted],
    ['created (exist in the database)', orders.created],
    ['duplicated', orders.duplicated],
    ['lost (caller saw 201, order missing)', orders.lost],
    ['unknown outcome (caller gave up)', orders.unknownOutcome],
    ['  … of which exist', orders.unknownButCreated],
    ['refused with a 4xx', orders.refused],
    ['unexpected orders', orders.unexpected],
    ['answers that were replays', orders.replayedAnswers],
    ['—', ''],
    ['responses reset after the server acted', faults.responsesReset],
    ['responses delayed past the timeout', faults.responsesDelayed],
    ['5xx answers seen by callers', serverErrors === '' ? 0 : serverErrors],
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
    report.passed
      ? 'PASS: no duplicate and no lost order.'
      : `FAIL: ${orders.duplicated} duplicated, ${orders.lost} lost, ${orders.unexpected} unexpected.`,
  ];
  return `${lines.join('\n')}\n`;
}
