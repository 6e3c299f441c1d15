// Starts the payment provider simulator on its own SQLite file: the provider the reference
// service charges, built with retrysafe, so a charge retried with its key replays.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyServerOptions } from 'fastify';
import { buildPaymentsApp } from './app.js';
import { openPaymentsData } from './data.js';
import { FaultInjector, type FaultSettings, type PaymentsFaults } from './faults.js';
import type { PaymentsStats } from './types.js';

/** How long close() lets requests in flight finish before it cuts their connections. */
export const defaultCloseGraceMs = 5_000;

export interface PaymentsSimOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port (read it from `url`). */
  port?: number;
  /** The SQLite file; default a new file in a temporary directory that close() removes. */
  databasePath?: string;
  /** Turns fault injection (and `POST /_faults`) on; rates default to 0. */
  faults?: PaymentsFaults;
  /** Fastify's logger option; default none. */
  logger?: FastifyServerOptions['logger'];
  /** Default `defaultCloseGraceMs`. */
  closeGraceMs?: number;
}

export interface PaymentsSim {
  /** `http://<host>:<port>`, without a trailing slash. */
  url: string;
  /** Where the charges are: restart on this file to keep them and their keys. */
  databasePath: string;
  /** Every charge and refund ever made (replays make none). Read from the file, so exact. */
  stats(): PaymentsStats;
  /** The fault settings now, when started with faults. */
  faults(): FaultSettings | undefined;
  /** Stops listening, lets requests in flight finish (up to the grace period), closes the file. */
  close(): Promise<void>;
}

export async function startPaymentsSim(options: PaymentsSimOptions = {}): Promise<PaymentsSim> {
  const host = options.host ?? '127.0.0.1';
  const ownDir =
    options.databasePath === undefined ? mkdtempSync(join(tmpdir(), 'payments-sim-')) : undefined;
  const databasePath = options.databasePath ?? join(ownDir!, 'payments.db');
  const removeOwnDir = () => {
    if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
  };
  const faults = options.faults === undefined ? undefined : new FaultInjector(options.faults);
  const data = openPaymentsData(databasePath);
  const app = await buildPaymentsApp({ data, faults, logger: options.logger });
  app.addHook('onClose', async () => {
    await data.close();
  });
  try {
    await app.listen({ host, port: options.port ?? 0 });
  } catch (error) {
    await app.close();
    removeOwnDir();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const graceMs = options.closeGraceMs ?? defaultCloseGraceMs;

  let closed: Promise<void> | undefined;
  return {
    url,
    databasePath,
    stats: () => data.stats(),
    faults: () => faults?.settings,
    close() {
      closed ??= (async () => {
        // A request held past the grace (a slow fault, a stalled body) is cut, not waited for.
        const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
        cut.unref();
        try {
          await app.close();
        } finally {
          clearTimeout(cut);
          removeOwnDir();
        }
      })();
      return closed;
    },
  };
}
