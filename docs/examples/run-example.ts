// Starts one of the payment examples: `npm run example -- <fastify|express|hono> --port <N>`
// prints `listening on http://127.0.0.1:<N>` and serves on a temporary SQLite file until stopped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningPayments } from './payments-shared.js';

const frameworks = {
  fastify: () => import('./payments-fastify.js'),
  express: () => import('./payments-express.js'),
  hono: () => import('./payments-hono.js'),
} satisfies Record<
  string,
  () => Promise<{ startPayments(port: number, database: string): Promise<RunningPayments> }>
>;

const args = process.argv.slice(2);
const framework = args.find((arg) => !arg.startsWith('-') && arg in frameworks) as
  | keyof typeof frameworks
  | undefined;
const portIndex = args.indexOf('--port');
const port = portIndex === -1 ? 3000 : Number(args[portIndex + 1]);
if (framework === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: npm run example -- <fastify|express|hono> --port <N>');
  process.exit(2);
}

const directory = mkdtempSync(join(tmpdir(), `retrysafe-example-${framework}-`));
const { startPayments } = await frameworks[framework]();
const running = await startPayments(port, join(directory, 'payments.db'));
console.log(`listening on ${running.url}`);

async function stop(): Promise<void> {
  await running.close();
  rmSync(directory, { recursive: true, force: true });
  process.exit(0);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
