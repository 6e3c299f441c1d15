// The `retrysafe` command: `serve` runs the reference service; `keys create` issues an API key;
// `payments-sim` serves the payment provider simulator the checkout charges.
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../auth.js';
import { type ChaosOptions, chaosFlags, chaosUsage, parseChaosOptions } from '../chaos/options.js';
import { runChaos } from '../chaos/run.js';
import { ConfigError, resolveServiceConfig } from '../config.js';
import type { Role } from '../data/types.js';
import { paymentsSimUsage, runPaymentsSim } from '../payments/cli.js';
import { openServiceData, serve } from '../server.js';

const usage = `Usage:
  retrysafe serve [--port N] [--host H] [--db PATH|postgres://…]
      Serves the reference service (env: PORT, HOST, DATABASE_URL, REDIS_URL,
      IDEMPOTENCY_LEASE_MS, IDEMPOTENCY_RETENTION_MS, LOG_LEVEL).
  retrysafe keys create --tenant T [--role writer|reader] [--label L] [--db …]
      Creates an API key, prints it once and stores only its hash. The first real key
      disables the demo keys.
${paymentsSimUsage}
${chaosUsage}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'chaos') return chaos(rest);
  if (command === 'payments-sim') return runPaymentsSim(rest);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
      tenant: { type: 'string' },
      role: { type: 'string' },
      label: { type: 'string' },
    },
  });
  const config = resolveServiceConfig(values, process.env);
  if (command === 'serve') {
    await serve(config);
    return -1; // keep running
  }
  if (command === 'keys' && positionals[0] === 'create') {
    const role = (values.role ?? 'writer') as Role;
    if (!values.tenant || (role !== 'writer' && role !== 'reader'))
      throw new ConfigError('keys create needs --tenant and --role writer|reader');
    const data = await openServiceData(config.database, config.postgres);
    const key = generateApiKey();
    await data.apiKeys.add({
      keyHash: hashApiKey(key),
      tenant: values.tenant,
      role,
      label: values.label ?? 'cli',
    });
    await data.close();
    process.stdout.write(
      `${key}\n(shown once; tenant ${values.tenant}, ${role}. Demo keys are now disabled.)\n`,
    );
    return 0;
  }
  process.stdout.write(`${usage}\n`);
  return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
}

/**
 * Exit status 0 when the run found no duplicate and no loss (and, for `--scenario checkout`, no
 * double charge, unpaid order, orphaned charge, missing or twice-processed event), 1 when it did,
 * 2 for bad options.
 */
async function chaos(args: string[]): Promise<number> {
  let options: ChaosOptions;
  try {
    const { values } = parseArgs({ args, options: chaosFlags });
    options = parseChaosOptions(values, process.env, process.stderr.isTTY === true);
  } catch (error) {
    process.stderr.write(`retrysafe chaos: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  // Ctrl-C (or a CI timeout's SIGTERM) ends the run early but still stops the service
  // processes and removes the scratch database; a second one exits at once.
  const interrupted = new AbortController();
  const onSignal = () => {
    if (interrupted.signal.aborted) process.exit(130);
    process.stderr.write('\nretrysafe chaos: stopping; cleaning up (again to quit at once)\n');
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runChaos(options, {
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
      signal: interrupted.signal,
    });
    return report.passed ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
