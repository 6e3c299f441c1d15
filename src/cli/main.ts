// The `retrysafe` command: `serve` runs the reference service; `keys create` issues an API key.
import { parseArgs } from 'node:util';
import { generateApiKey, hashApiKey } from '../service/auth.js';
import { ConfigError, resolveServiceConfig } from '../service/config.js';
import type { Role } from '../service/data/types.js';
import { openServiceData, serve } from '../service/server.js';

const usage = `Usage:
  retrysafe serve [--port N] [--host H] [--db PATH|postgres://…]
      Serves the reference service (env: PORT, HOST, DATABASE_URL, REDIS_URL,
      IDEMPOTENCY_LEASE_MS, IDEMPOTENCY_RETENTION_MS, LOG_LEVEL).
  retrysafe keys create --tenant T [--role writer|reader] [--label L] [--db …]
      Creates an API key, prints it once and stores only its hash. The first real key
      disables the demo keys.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
    const data = await openServiceData(config.database);
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
