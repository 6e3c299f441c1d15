// What `--scenario checkout` adds around a chaos run: the provider process and (with a broker)
// the event audit before the fleet starts, the environment that points every service process at
// them, the bounded wait after the load for the completer and the relays, and the audit of the
// database against the provider and the consumer. Everything it made is removed by close().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseConfig } from '../config.js';
import { openServiceData } from '../server.js';
import {
  auditCheckouts,
  type ChargeFigures,
  type CheckoutOrderFigures,
  countPending,
  type EventFigures,
  readCheckoutOrders,
} from './checkout-audit.js';
import { type EventAudit, startEventAudit } from './event-audit.js';
import type { CheckoutChaosOptions } from './options.js';
import {
  type PaymentsProvider,
  type ProviderFaultCounts,
  startPaymentsProvider,
} from './payments-provider.js';
import type { LogicalOrder } from './workers.js';

/** Often enough that the job runners see due completers soon after their delay. */
const jobPollIntervalMs = 250;
/** Short, so a job held by a SIGKILLed process is taken over within the run. */
const jobLeaseMs = 2_000;
/** How often the wait after the load looks at the database and the audit consumer. */
const drainPollMs = 500;

export interface CheckoutSideOptions {
  runId: string;
  checkout: CheckoutChaosOptions;
  natsUrl: string;
  amqpUrl: string;
  keep: boolean;
}

export interface CheckoutAudit {
  orders: CheckoutOrderFigures;
  charges: ChargeFigures;
  events: EventFigures;
  provider: ProviderFaultCounts;
}

export interface CheckoutSide {
  /** Environment for every service process. */
  env: Record<string, string>;
  /** Where `order.paid` events go, for the report. */
  events: string;
  /** Processes of its own that exited by themselves (the provider). */
  unexpectedExits(): string[];
  auditConsumerRestarts(): number;
  /**
   * Waits until no order of the run is pending and (with a broker) the audit consumer has
   * processed every paid order's event, or the drain bound (or `signal`) ends the wait.
   */
  drain(
    database: DatabaseConfig,
    tenant: string,
    skuPrefix: string,
    signal: AbortSignal | undefined,
  ): Promise<{ drainMs: number; timedOut: boolean }>;
  /** After the fleet stopped: the figures, from the database, the provider and the consumer. */
  audit(
    callers: LogicalOrder[],
    database: DatabaseConfig,
    tenant: string,
    skuPrefix: string,
  ): Promise<CheckoutAudit>;
  close(): Promise<void>;
}

export async function startCheckoutSide(options: CheckoutSideOptions): Promise<CheckoutSide> {
  const { checkout } = options;
  const dir = mkdtempSync(join(tmpdir(), `retrysafe-chaos-${options.runId}-checkout-`));
  let provider: PaymentsProvider | undefined;
  let eventAudit: EventAudit | undefined;
  const close = async () => {
    await eventAudit?.close();
    await provider?.stop();
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    provider = await startPaymentsProvider(join(dir, 'payments.sqlite'), {
      failRate: checkout.paymentsFailRate,
      resetAfterChargeRate: checkout.paymentsResetRate,
      slowRate: checkout.paymentsSlowRate,
      // Past the service's timeout: every slow answer is a charge its caller did not hear of.
      slowMs: checkout.paymentsTimeoutMs * 2,
    });
    if (checkout.broker !== undefined) {
      eventAudit = await startEventAudit({
        broker: checkout.broker,
        runId: options.runId,
        natsUrl: options.natsUrl,
        amqpUrl: options.amqpUrl,
        databasePath: join(dir, 'audit-consumer.sqlite'),
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  const events = eventAudit;
  const payments = provider;
  return {
    env: {
      PAYMENTS_URL: payments.url,
      PAYMENTS_TIMEOUT_MS: String(checkout.paymentsTimeoutMs),
      CHECKOUT_COMPLETER_DELAY_MS: String(checkout.completerDelayMs),
      JOBS_POLL_INTERVAL_MS: String(jobPollIntervalMs),
      JOBS_LEASE_MS: String(jobLeaseMs),
      ...events?.serviceEnv,
    },
    events: events?.describe ?? 'none (order.paid events wait in the outbox)',
    unexpectedExits: () => (payments.unexpectedExit === undefined ? [] : [payments.unexpectedExit]),
    auditConsumerRestarts: () => events?.counts.restarts ?? 0,
    async drain(database, tenant, skuPrefix, signal) {
      const startedAtMs = Date.now();
      const giveUpAtMs = startedAtMs + checkout.drainSeconds * 1000;
      const data = await openServiceData(database);
      try {
        for (;;) {
          const { pending, paidEventIds } = await countPending(data, tenant, skuPrefix);
          const processed = events?.processings();
          const eventsDone = processed === undefined || paidEventIds.every((id) => processed.has(id));
          if (pending === 0 && eventsDone) return { drainMs: Date.now() - startedAtMs, timedOut: false };
          if (Date.now() >= giveUpAtMs || signal?.aborted === true) {
            return { drainMs: Date.now() - startedAtMs, timedOut: true };
          }
          await new Promise((resolve) => setTimeout(resolve, drainPollMs));
        }
      } finally {
        await data.close();
      }
    },
    async audit(callers, database, tenant, skuPrefix) {
      const [orders, charges, provider] = await Promise.all([
        readCheckoutOrders(database, tenant, skuPrefix),
        payments.charges(),
        payments.injected(),
      ]);
      const figures = auditCheckouts({
        callers,
        orders,
        charges,
        broker: checkout.broker,
        processings: events?.processings(),
        duplicatesSkipped: events?.counts.duplicatesSkipped ?? 0,
      });
      return { ...figures, provider };
    },
    close,
  };
}
