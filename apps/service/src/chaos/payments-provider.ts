// The payment provider of a checkout chaos run: one `retrysafe payments-sim` child process on a
// SQLite file of the run's own, with faults on, shared by every service process and surviving
// their kills. Afterwards it is asked for every charge it made and the faults it injected.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Charge, ChargePage } from '../payments/types.js';

const binPath = new URL('../../bin/retrysafe.js', import.meta.url).pathname;
/** A cold start on a loaded machine; past this the run fails naming the provider. */
const startTimeoutMs = 30_000;
const stopGraceMs = 5_000;
/** The simulator's largest page of `GET /charges`. */
const chargePageSize = 100;

export interface ProviderFaults {
  failRate: number;
  resetAfterChargeRate: number;
  slowRate: number;
  slowMs: number;
}

/** What the simulator says it injected (`GET /_faults`). */
export interface ProviderFaultCounts {
  /** Charges refused with 503 before anything was charged. */
  refused: number;
  /** Connections destroyed after the charge committed, unanswered. */
  resetAfterCharge: number;
  /** Answers held past the service's timeout after the charge committed. */
  slowAfterCharge: number;
}

export interface PaymentsProvider {
  url: string;
  /** Set when the process exited while the run had not stopped it: the run fails. */
  readonly unexpectedExit: string | undefined;
  /** Every charge it made, oldest first. */
  charges(): Promise<Charge[]>;
  injected(): Promise<ProviderFaultCounts>;
  stop(): Promise<void>;
}

export async function startPaymentsProvider(
  databasePath: string,
  faults: ProviderFaults,
): Promise<PaymentsProvider> {
  const child = spawn(
    process.execPath,
    [
      binPath,
      'payments-sim',
      '--port',
      '0',
      '--db',
      databasePath,
      '--fail-rate',
      String(faults.failRate),
      '--reset-after-charge-rate',
      String(faults.resetAfterChargeRate),
      '--slow-rate',
      String(faults.slowRate),
      '--slow-ms',
      String(faults.slowMs),
    ],
    { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stopping = false;
  let unexpectedExit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      if (!stopping) unexpectedExit = `the payments-sim process exited (${signal ?? code})`;
      resolve();
    }),
  );
  const url = await listeningUrl(child);
  const getJson = async <T>(path: string): Promise<T> => {
    const response = await fetch(new URL(path, url));
    if (!response.ok) throw new Error(`payments-sim GET ${path} answered ${response.status}`);
    return (await response.json()) as T;
  };
  return {
    url,
    get unexpectedExit() {
      return unexpectedExit;
    },
    async charges() {
      const all: Charge[] = [];
      let cursor: string | null = null;
      do {
        const query = new URLSearchParams({ limit: String(chargePageSize) });
        if (cursor !== null) query.set('cursor', cursor);
        const page: ChargePage = await getJson<ChargePage>(`/charges?${query}`);
        all.push(...page.data);
        cursor = page.nextCursor;
      } while (cursor !== null);
      return all;
    },
    async injected() {
      const { injected } = await getJson<{ injected: { failed: number; reset: number; slowed: number } }>(
        '/_faults',
      );
      return { refused: injected.failed, resetAfterCharge: injected.reset, slowAfterCharge: injected.slowed };
    },
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const grace = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(grace);
    },
  };
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let partial = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the payments-sim process did not listen within ${startTimeoutMs} ms`));
    }, startTimeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_096);
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const match = /payments-sim listening on (http:\/\/\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`the payments-sim process exited (${signal ?? code}) before listening: ${stderr.trim()}`),
      );
    });
  });
}
