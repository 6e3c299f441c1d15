// What the operation tests share: the harness each dialect builds, and the crash fixture's launcher
// (a real child process, SIGKILLed once it says it is inside a step).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { JobQueue } from '../../src/effects/jobs/index.js';
import type { OperationStore } from '../../src/operations/index.js';

/** What the crash fixture needs to open the same queue, store and business table in another process. */
export interface OperationWorkerTarget {
  dialect: 'sqlite' | 'postgres';
  /** A file path (SQLite) or a connection URL (PostgreSQL). */
  location: string;
  jobsTable: string;
  operationsTable: string;
  rowsTable: string;
  topic: string;
}

export interface OperationsHarness<Tx> {
  store: OperationStore<Tx>;
  queue: JobQueue<Tx>;
  /** Writes a business row inside a transaction. */
  insertRow(tx: Tx, id: string, tag: string): Promise<void>;
  /** The business rows, ordered by id. */
  rows(): Promise<{ id: string; tag: string }[]>;
  worker: OperationWorkerTarget;
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  now?: () => number;
  /** Default 24 h; shorter ones are allowed here (tests only). */
  retentionMs?: number;
  waitPollMs?: number;
}

export interface OperationsFactory<Tx> {
  create(options: HarnessOptions): Promise<OperationsHarness<Tx>>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const crashWorker = fileURLToPath(new URL('./fixtures/operation-crash-worker.ts', import.meta.url));

/** Starts the crash fixture on `target`, waits until it prints `marker`, then SIGKILLs it. */
export async function runCrashWorkerUntil(target: OperationWorkerTarget, marker: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=retrysafe-source',
      '--import',
      fileURLToPath(new URL('test/helpers/register-ts.mjs', `file://${repoRoot}`)),
      crashWorker,
      JSON.stringify(target),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the worker never printed ${marker}: ${output}`)),
        20_000,
      );
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(marker)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the worker exited (${code ?? signal}) before ${marker}: ${output}`));
      });
    });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}
