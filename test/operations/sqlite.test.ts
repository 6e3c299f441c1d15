// The operation store contract on SQLite, a real database file per case (with the outbox and a
// business table in the same file); plus what is SQLite's own: the migration part, refusing a
// transaction of another connection, and the 24 h retention floor.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createSqliteJobQueue } from '../../src/effects/jobs/sqlite.js';
import { createSqliteOperations } from '../../src/operations/sqlite.js';
import type { SqliteDatabase } from '../../src/stores/sqlite/unit-of-work.js';
import { createSqliteUnitOfWork, openSqliteDatabase } from '../../src/stores/sqlite.js';
import { describeOperationStoreContract } from './contract.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-operations-sqlite-'));
let files = 0;

afterAll(() => rmSync(directory, { recursive: true, force: true }));

describeOperationStoreContract<SqliteDatabase>('sqlite', {
  async create({ now, retentionMs, waitPollMs }) {
    const path = join(directory, `operations-${++files}.db`);
    const unitOfWork = createSqliteUnitOfWork(path);
    unitOfWork.db.exec('CREATE TABLE business_rows (id TEXT PRIMARY KEY, tag TEXT NOT NULL)');
    const queue = createSqliteJobQueue({ database: unitOfWork, ...(now === undefined ? {} : { now }) });
    const store = createSqliteOperations({
      database: unitOfWork,
      jobs: queue,
      allowShortRetention: true,
      ...(now === undefined ? {} : { now }),
      ...(retentionMs === undefined ? {} : { retentionMs }),
      ...(waitPollMs === undefined ? {} : { waitPollMs }),
    });
    return {
      store,
      queue,
      insertRow: async (tx, id, tag) => {
        tx.prepare('INSERT INTO business_rows (id, tag) VALUES (?, ?)').run(id, tag);
      },
      rows: async () => unitOfWork.db.prepare('SELECT id, tag FROM business_rows ORDER BY id').all() as never,
      worker: {
        dialect: 'sqlite',
        location: path,
        jobsTable: queue.tableName,
        operationsTable: store.tableName,
        rowsTable: 'business_rows',
        topic: 'operation.export',
      },
      cleanup: () => unitOfWork.close(),
    };
  },
});

it('registers its table as a migration part of the unit of work, once per table name', async () => {
  const unitOfWork = createSqliteUnitOfWork(join(directory, `migrations-${++files}.db`));
  const jobs = createSqliteJobQueue({ database: unitOfWork });
  createSqliteOperations({ database: unitOfWork, jobs });
  createSqliteOperations({ database: unitOfWork, jobs });
  createSqliteOperations({ database: unitOfWork, jobs, tableName: 'report_operations' });
  expect(unitOfWork.applied().map((row) => `${row.part} v${row.version}`)).toEqual([
    'retrysafe.jobs v1',
    'retrysafe.operations v1',
    'retrysafe.operations:report_operations v1',
  ]);
  await unitOfWork.close();
});

it('refuses to create outside a transaction or on another connection, so an operation never escapes one', async () => {
  const path = join(directory, `refusals-${++files}.db`);
  const unitOfWork = createSqliteUnitOfWork(path);
  const jobs = createSqliteJobQueue({ database: unitOfWork });
  const store = createSqliteOperations({ database: unitOfWork, jobs });
  const input = { scope: 't', kind: 'export', jobTopic: 'export', jobPayload: {} };
  await expect(store.create(store.db, input)).rejects.toThrow(/must run inside a transaction/);
  const other = openSqliteDatabase(path);
  await expect(store.transaction(async () => store.create(other, input))).rejects.toThrow(
    /different database connection/,
  );
  other.close();
  expect((await store.list('t')).operations).toEqual([]);
  await unitOfWork.close();
});

it('keeps operations at least 24 h unless a test explicitly allows less', async () => {
  const unitOfWork = createSqliteUnitOfWork(join(directory, `retention-${++files}.db`));
  const jobs = createSqliteJobQueue({ database: unitOfWork });
  expect(() => createSqliteOperations({ database: unitOfWork, jobs, retentionMs: 60_000 })).toThrow(/24 h/);
  expect(createSqliteOperations({ database: unitOfWork, jobs }).retentionMs).toBe(24 * 60 * 60_000);
  expect(
    createSqliteOperations({ database: unitOfWork, jobs, retentionMs: 60_000, allowShortRetention: true })
      .retentionMs,
  ).toBe(60_000);
  await unitOfWork.close();
});
