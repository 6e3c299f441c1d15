// What the operation tests share: the harness each dialect builds, and the crash fixture's launcher
// (a real child process, SIGKILLed once it says it is inside a step).
import { fileURLToPath } from 'node:url';
import type { JobQueue } from '../../src/effects/jobs/index.js';
import type { OperationStore } from '../../src/operations/index.js';
import { runFixtureUntilThenKill } from '../helpers/kill-fixture.js';

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

const crashWorker = fileURLToPath(new URL('./fixtures/operation-crash-worker.ts', import.meta.url));

/** Starts the crash fixture on `target`, waits until it prints `marker`, then SIGKILLs it. */
export function runCrashWorkerUntil(target: OperationWorkerTarget, marker: string): Promise<void> {
  return runFixtureUntilThenKill(crashWorker, [JSON.stringify(target)], marker);
}
