// The job queue contract on SQLite, a real database file per case; plus what is SQLite's own:
// the migration part in the unit of work, and enqueue refusing a connection or no transaction.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createJobRunner, type JobContext } from '../../../src/effects/jobs/index.js';
import { createSqliteJobQueue } from '../../../src/effects/jobs/sqlite.js';
import {
  createSqliteUnitOfWork,
  openSqliteDatabase,
  type SqliteDatabase,
} from '../../../src/stores/sqlite.js';
import { describeJobQueueContract } from './contract.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-jobs-sqlite-'));
let files = 0;

afterAll(() => rmSync(directory, { recursive: true, force: true }));

describeJobQueueContract<SqliteDatabase>('sqlite', {
  async create({ now }) {
    const path = join(directory, `jobs-${++files}.db`);
    const unitOfWork = createSqliteUnitOfWork(path);
    unitOfWork.db.exec('CREATE TABLE job_rows (id TEXT PRIMARY KEY, tag TEXT NOT NULL)');
    const queue = createSqliteJobQueue({ database: unitOfWork, ...(now === undefined ? {} : { now }) });
    return {
      queue,
      insertRow: async (tx, id, tag) => {
        tx.prepare('INSERT INTO job_rows (id, tag) VALUES (?, ?)').run(id, tag);
      },
      rows: async () => unitOfWork.db.prepare('SELECT id, tag FROM job_rows ORDER BY id').all() as never,
      worker: { dialect: 'sqlite', location: path, tableName: queue.tableName, rowsTable: 'job_rows' },
      cleanup: () => unitOfWork.close(),
    };
  },
});

it('registers its table as a migration part of the unit of work, once per table name', async () => {
  const unitOfWork = createSqliteUnitOfWork(join(directory, `migrations-${++files}.db`));
  createSqliteJobQueue({ database: unitOfWork });
  createSqliteJobQueue({ database: unitOfWork });
  createSqliteJobQueue({ database: unitOfWork, tableName: 'billing_jobs' });
  expect(unitOfWork.applied().map((row) => `${row.part} v${row.version}`)).toEqual([
    'retrysafe.jobs v1',
    'retrysafe.jobs:billing_jobs v1',
  ]);
  expect(unitOfWork.migrations.list().map((migration) => migration.part)).toEqual([
    'retrysafe.jobs',
    'retrysafe.jobs:billing_jobs',
  ]);
  await unitOfWork.close();
});

it('refuses to enqueue outside a transaction or on another connection, so a job never escapes one', async () => {
  const path = join(directory, `refusals-${++files}.db`);
  const queue = createSqliteJobQueue({ database: path });
  await expect(queue.enqueue(queue.db, { topic: 'email', payload: {} })).rejects.toThrow(
    /must run inside a transaction/,
  );
  const other = openSqliteDatabase(path);
  await expect(
    queue.transaction(async () => queue.enqueue(other, { topic: 'email', payload: {} })),
  ).rejects.toThrow(/different database connection/);
  other.close();
  expect((await queue.stats(Date.now())).queued).toBe(0);
  await queue.unitOfWork.close();
});

it('takes a handler written for its payload type in the handlers map', async () => {
  const queue = createSqliteJobQueue({ database: join(directory, `typed-${++files}.db`) });
  const totals: number[] = [];
  const sendInvoice = async (ctx: JobContext<SqliteDatabase, { cents: number }>) => {
    totals.push(ctx.job.payload.cents);
  };
  const runner = createJobRunner({ queue, handlers: { invoice: sendInvoice } });
  await queue.transaction((tx) => queue.enqueue(tx, { topic: 'invoice', payload: { cents: 1250 } }));
  expect(await runner.drain()).toBe(1);
  expect(totals).toEqual([1250]);
  await queue.unitOfWork.close();
});
