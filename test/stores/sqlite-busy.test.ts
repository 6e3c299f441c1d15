// Issue 10 item 3 on SQLite: a transaction that cannot start because another connection (another
// process, in production) holds the file's write lock is a 503 TransactionUnavailableError with
// Retry-After — nothing ran — never a raw SQLITE_BUSY that a service would answer as 500.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { TransactionUnavailableError } from '../../src/idempotency/errors.js';
import { openSqliteDatabase, runSqliteTransaction } from '../../src/stores/sqlite.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-sqlite-busy-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

it('answers a transaction that cannot take the write lock with a 503 and runs none of its work', async () => {
  const path = join(directory, 'busy.db');
  const db = openSqliteDatabase(path);
  db.pragma('busy_timeout = 50');
  db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY)');
  const holder = new Database(path);
  holder.exec('BEGIN IMMEDIATE');
  let ran = false;
  try {
    const failure = await runSqliteTransaction(
      db,
      () => {
        ran = true;
      },
      100,
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransactionUnavailableError);
    expect((failure as TransactionUnavailableError).status).toBe(503);
    expect((failure as TransactionUnavailableError).headers['retry-after']).toBe('1');
    expect(ran).toBe(false);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
  // Once the lock is free, the same connection works again.
  await runSqliteTransaction(db, (tx) => tx.prepare('INSERT INTO rows (id) VALUES (1)').run());
  expect(db.prepare('SELECT count(*) AS n FROM rows').get()).toEqual({ n: 1 });
  db.close();
});
