// `retrysafe payments-sim`: serves the payment provider simulator until SIGTERM or SIGINT,
// then closes gracefully. Flags are checked here; main.ts only dispatches to it.
import { parseArgs } from 'node:util';
import { serviceLoggerOptions } from '../log-fields.js';
import { normaliseFaults, type PaymentsFaults } from './faults.js';
import { startPaymentsSim } from './sim.js';

export const paymentsSimUsage = `  retrysafe payments-sim [--port N] [--host 127.0.0.1] [--db PATH] [--fail-rate R]
      [--reset-after-charge-rate R] [--slow-rate R --slow-ms N] [--seed N]
      Serves the payment provider simulator (POST /charges, POST /refunds, GET /stats) on its
      own SQLite file (default: a temporary one). Any fault flag turns faults on (rates 0–1)
      and POST /_faults to change them while it runs (env: LOG_LEVEL).`;

const flags = {
  port: { type: 'string' },
  host: { type: 'string' },
  db: { type: 'string' },
  'fail-rate': { type: 'string' },
  'reset-after-charge-rate': { type: 'string' },
  'slow-rate': { type: 'string' },
  'slow-ms': { type: 'string' },
  seed: { type: 'string' },
} as const;

const logLevels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Resolves with the exit status once a signal closed it; 2 for bad flags (printed to stderr). */
export async function runPaymentsSim(args: string[]): Promise<number> {
  let options: Parameters<typeof startPaymentsSim>[0];
  try {
    const { values } = parseArgs({ args, options: flags });
    const faults: PaymentsFaults = {};
    const fault = (flag: keyof typeof values, set: (n: number) => void) => {
      const value = values[flag];
      if (value !== undefined) set(number(`--${flag}`, value));
    };
    fault('fail-rate', (n) => (faults.failRate = n));
    fault('reset-after-charge-rate', (n) => (faults.resetAfterChargeRate = n));
    fault('slow-rate', (n) => (faults.slowRate = n));
    fault('slow-ms', (n) => (faults.slowMs = n));
    fault('seed', (n) => (faults.seed = n));
    normaliseFaults(faults); // a rate of 2 is a bad flag too: refused here, before anything starts
    const level = process.env.LOG_LEVEL ?? 'info';
    if (!logLevels.has(level))
      throw new Error(`LOG_LEVEL=${level} is not one of ${[...logLevels].join(', ')}`);
    options = {
      host: values.host ?? '127.0.0.1',
      port: values.port === undefined ? 0 : port(values.port),
      ...(values.db === undefined ? {} : { databasePath: values.db }),
      ...(Object.keys(faults).length === 0 ? {} : { faults }),
      logger: serviceLoggerOptions(level),
    };
  } catch (error) {
    process.stderr.write(
      `retrysafe payments-sim: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 2;
  }
  const sim = await startPaymentsSim(options);
  process.stdout.write(
    `payments-sim listening on ${sim.url} (data: ${sim.databasePath}${options.faults ? '; faults on' : ''})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await sim.close();
  return 0;
}

function number(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`${flag} must be a number, got ${text}`);
  return value;
}

function port(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new Error(`--port must be a whole number from 0 to 65535, got ${text}`);
  }
  return value;
}
