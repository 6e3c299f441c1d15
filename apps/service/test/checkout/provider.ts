// The payment provider of the checkout proofs: a real `retrysafe payments-sim` child process on
// its own SQLite file, with faults switchable at runtime, so it outlives every service kill and
// its ledger of charges is the ground truth of "charged once". Needs `npm run build` first.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Charge, ChargePage, PaymentsStats } from '../../src/payments/types.js';

const binPath = new URL('../../bin/retrysafe.js', import.meta.url).pathname;
/** A cold start of a Node process on a loaded 2-core machine, with room to spare. */
const startTimeoutMs = 30_000;

export interface ProviderFaults {
  failRate?: number;
  resetAfterChargeRate?: number;
  slowRate?: number;
  slowMs?: number;
}

export interface Provider {
  /** `http://127.0.0.1:<port>`: the same across `restart()`, so PAYMENTS_URL stays valid. */
  url: string;
  stats(): Promise<PaymentsStats>;
  /** Every charge the provider made for `reference` (an order id). */
  charges(reference: string): Promise<Charge[]>;
  faults(faults: ProviderFaults): Promise<void>;
  /** How many times each fault was injected since this process started. */
  injected(): Promise<{ failed: number; reset: number; slowed: number }>;
  /** SIGKILL: the provider is down (connection refused) until `restart()`. */
  kill(): Promise<void>;
  /** Starts it again on the same file and port: it replays every key charged before. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

function run(args: string[]): Promise<Running & { url: string }> {
  const child = spawn(process.execPath, [binPath, 'payments-sim', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`payments-sim did not listen within ${startTimeoutMs} ms: ${stderr}`));
    }, startTimeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /payments-sim listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ child, exited, url: match[1]! });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`payments-sim exited (${signal ?? code}) before listening: ${stderr}`));
    });
  });
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Starts the provider with faults enabled (all rates 0), on `dir/payments.db`. */
export async function startProvider(dir: string): Promise<Provider> {
  const db = join(dir, 'payments.db');
  let current = await run(['--port', '0', '--host', '127.0.0.1', '--db', db, '--fail-rate', '0']);
  const url = current.url;
  const port = new URL(url).port;
  const kill = async () => {
    if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill('SIGKILL');
    await current.exited;
  };
  return {
    url,
    stats: () => getJson<PaymentsStats>(`${url}/stats`),
    async charges(reference) {
      const page = await getJson<ChargePage>(
        `${url}/charges?${new URLSearchParams({ reference, limit: '100' })}`,
      );
      return page.data;
    },
    async faults(faults) {
      const response = await fetch(`${url}/_faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(faults),
      });
      if (!response.ok) throw new Error(`POST /_faults: ${response.status} ${await response.text()}`);
    },
    async injected() {
      return (
        await getJson<{ injected: { failed: number; reset: number; slowed: number } }>(`${url}/_faults`)
      ).injected;
    },
    kill,
    async restart() {
      await kill();
      current = await run(['--port', port, '--host', '127.0.0.1', '--db', db, '--fail-rate', '0']);
    },
    async stop() {
      if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill('SIGTERM');
      await current.exited;
    },
  };
}
