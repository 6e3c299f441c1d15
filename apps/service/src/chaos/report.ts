// What a chaos run found, as a table for people and as JSON for machines. A run passes when
// no order was duplicated, none was lost, and no unasked-for order appeared.
import type { AuditFigures } from './audit.js';
import type { ChargeFigures, CheckoutOrderFigures, EventFigures } from './checkout-audit.js';
import type { DbFaultCounts } from './db-faults.js';
import type { DbProxyCounts } from './db-proxy.js';
import type { ChaosOptions } from './options.js';
import type { ProviderFaultCounts } from './payments-provider.js';
import type { ProxyCounts } from './proxy.js';
import type { WorkerCounts } from './workers.js';

export interface ChaosReport {
  passed: boolean;
  runId: string;
  data: string;
  /** The run's settings, without URLs (they may carry passwords). */
  settings: Omit<ChaosOptions, 'progress' | 'jsonPath' | 'postgresUrl' | 'redisUrl' | 'natsUrl' | 'amqpUrl'>;
  durationMs: number;
  faults: {
    responsesReset: number;
    responsesDelayed: number;
    /** 5xx answers the test hooks injected, by status. */
    serverErrors: Record<string, number>;
    kills: number;
    restarts: number;
    /** Restarts that failed (a database fault during the start) and were tried again. */
    failedStarts: number;
    connectionsWithNoProcessUp: number;
    /** Service backends terminated with pg_terminate_backend, and of those inside a transaction. */
    dbBackendsTerminated: number;
    dbBackendsTerminatedInTransaction: number;
    /** Service ↔ PostgreSQL connections reset, and of those inside a transaction. */
    dbConnectionsCut: number;
    dbConnectionsCutInTransaction: number;
    /** Database stalls shorter than every PG timeout of the service, and longer than its query timeout. */
    dbStallsShort: number;
    dbStallsLong: number;
    /** Restarts of the run's own redis-server (with its append-only file). */
    redisRestarts: number;
    /** First requests held in their transaction past their lease, … */
    leaseOverruns: number;
    /** … and of those, answered 409 because a second caller had taken the key over meanwhile. */
    leaseTakeovers: number;
    /** The checkout's provider faults (`--scenario checkout`). */
    provider?: ProviderFaultCounts & {
      /** Checkout answers 503 payments-unavailable the callers got (the provider failed or timed out). */
      checkoutAnswers503: number;
    };
  };
  /** What went wrong beyond the injected faults. */
  problems: {
    /** 5xx answers nobody injected, by status. */
    serverErrors: Record<string, number>;
    /** Service processes that exited without being killed. */
    unexpectedExits: string[];
    /**
     * Restarts that hung instead of listening or exiting (killed and tried again). Reported, not
     * failed on: a start is outside what the audit measures, but a hang there is worth fixing.
     */
    startTimeouts: number;
  };
  traffic: {
    httpAttempts: number;
    proxiedResponses: number;
    failedAttemptsByKind: WorkerCounts['failedAttempts'];
    callerRepeats: number;
  };
  /** With `--scenario checkout`, also the checkout's figures (each of its failures must be 0). */
  orders: AuditFigures & Partial<CheckoutOrderFigures>;
  charges?: ChargeFigures;
  events?: EventFigures;
  /** `--scenario checkout`: where events went and how the wait after the load ended. */
  checkout?: {
    events: string;
    /** From the last order settled to the completer and the relays done (or the bound). */
    drainMs: number;
    drainTimedOut: boolean;
    /** Times the broker ended the audit consumer and it was started again. */
    auditConsumerRestarts: number;
  };
}

/** The checkout's own failures: money or an event gone wrong. Empty for a run without checkout figures. */
export function checkoutFailures(report: {
  orders: Partial<CheckoutOrderFigures>;
  charges?: ChargeFigures | undefined;
  events?: EventFigures | undefined;
}): string[] {
  const { orders, charges, events } = report;
  const found: string[] = [];
  if (orders.doubleCharged) found.push(`${orders.doubleCharged} double-charged`);
  if (orders.unpaid) found.push(`${orders.unpaid} unpaid after the completer`);
  if (orders.paidIncomplete) found.push(`${orders.paidIncomplete} paid but incomplete`);
  if (charges?.orphaned) found.push(`${charges.orphaned} orphaned charges`);
  if (events?.missing) found.push(`${events.missing} events missing`);
  if (events?.processedTwice) found.push(`${events.processedTwice} events processed twice`);
  if (events?.unexpected) found.push(`${events.unexpected} unexpected events`);
  return found;
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
  fleet: { kills: number; restarts: number; failedStarts: number },
  db: DbFaultCounts,
  dbProxy: DbProxyCounts | undefined,
): ChaosReport['faults'] {
  return {
    responsesReset: proxy.resets,
    responsesDelayed: proxy.delays,
    serverErrors: workers.injectedServerErrors,
    kills: fleet.kills,
    restarts: fleet.restarts,
    failedStarts: fleet.failedStarts,
    connectionsWithNoProcessUp: proxy.refused,
    dbBackendsTerminated: db.backendsTerminated,
    dbBackendsTerminatedInTransaction: db.backendsTerminatedInTransaction,
    dbConnectionsCut: dbProxy?.cuts ?? 0,
    dbConnectionsCutInTransaction: dbProxy?.cutsInTransaction ?? 0,
    dbStallsShort: db.stallsShort,
    dbStallsLong: db.stallsLong,
    redisRestarts: db.redisRestarts,
    leaseOverruns: workers.leaseOverruns,
    leaseTakeovers: workers.leaseTakeovers,
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
    ['restarts that hung (killed, tried again)', report.problems.startTimeouts],
    [
      'processes SIGKILLed / restarted (failed starts)',
      `${faults.kills} / ${faults.restarts} (${faults.failedStarts})`,
    ],
    ['connections with no process up', faults.connectionsWithNoProcessUp],
    [
      'DB backends terminated (in a transaction)',
      `${faults.dbBackendsTerminated} (${faults.dbBackendsTerminatedInTransaction})`,
    ],
    [
      'DB connections cut (in a transaction)',
      `${faults.dbConnectionsCut} (${faults.dbConnectionsCutInTransaction})`,
    ],
    ['DB stalls short / long', `${faults.dbStallsShort} / ${faults.dbStallsLong}`],
    ['Redis restarts', faults.redisRestarts],
    ['requests held past their lease / taken over', `${faults.leaseOverruns} / ${faults.leaseTakeovers}`],
    ['HTTP attempts / repeats by callers', `${traffic.httpAttempts} / ${traffic.callerRepeats}`],
    ...checkoutRows(report),
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    `retrysafe chaos ${report.runId}: ${settings.processes} processes on ${report.data}, ` +
      `${settings.workers} workers, ${(report.durationMs / 1000).toFixed(1)} s`,
    '',
    ...rows.map(([label, value]) => (label === '—' ? '' : `  ${label.padEnd(width)}  ${value}`)),
    '',
    report.passed
      ? report.charges
        ? 'PASS: no duplicate and no lost order; no double charge, no unpaid order, no orphaned charge, no missing or twice-processed event.'
        : 'PASS: no duplicate and no lost order.'
      : `FAIL: ${failures(report).join(', ')}.`,
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
  found.push(...checkoutFailures(report));
  return found;
}

function checkoutRows(report: ChaosReport): Array<[string, string | number]> {
  const { orders, charges, events, checkout } = report;
  const provider = report.faults.provider;
  if (!charges || !events || !checkout || !provider) return [];
  return [
    ['—', ''],
    ['paid orders', orders.paid ?? 0],
    ['unpaid (pending after the completer)', orders.unpaid ?? 0],
    ['double-charged orders', orders.doubleCharged ?? 0],
    ['paid but incomplete (shipment, payment)', orders.paidIncomplete ?? 0],
    [
      'abandoned at a 503 / finished by the completer',
      `${orders.abandoned ?? 0} / ${orders.abandonedAndPaid ?? 0}`,
    ],
    ['charges made / orphaned', `${charges.made} / ${charges.orphaned}`],
    [
      'provider: refused / reset / slow after charging',
      `${provider.refused} / ${provider.resetAfterCharge} / ${provider.slowAfterCharge}`,
    ],
    [
      `events (${events.broker}) expected / in outbox / published`,
      `${events.expected} / ${events.inOutbox} / ${events.published}`,
    ],
    [
      'events processed by the audit / duplicates skipped',
      `${events.processed} / ${events.duplicatesSkipped}`,
    ],
    ['events missing', events.missing],
    ['events processed twice', events.processedTwice],
    [
      'wait for the completer and relays',
      `${(checkout.drainMs / 1000).toFixed(1)} s${checkout.drainTimedOut ? ' (bound reached)' : ''}`,
    ],
  ];
}
