// Issue 10 item 6: another process's SQLite write lock froze this process's event loop, because
// better-sqlite3 is synchronous and the busy timeout was 5 s per write. The wait for the lock is
// asynchronous now: while a transaction or a claim waits, the event loop keeps turning and reads
// on the same connection answer; the write succeeds once the lock is free within `lockWaitMs`,
// and fails with a 503 past it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { TransactionUnavailableError } from '../../src/idempotency/errors.js';
import {
  createSqliteStore,
  createSqliteUnitOfWork,
  SqliteLockWaitError,
  type SqliteUnitOfWork,
} from '../../src/stores/sqlite.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-sqlite-lock-wait-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;

/** A unit of work on a fresh file, and another connection (another process, in production) on it. */
function setUp(lockWaitMs: number): { unitOfWork: SqliteUnitOfWork; holder: Database.Database } {
  const path = join(directory, `lock-${++files}.db`);
  const unitOfWork = createSqliteUnitOfWork(path, { lockWaitMs });
  unitOfWork.db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY)');
  return { unitOfWork, holder: new Database(path) };
}

/** Counts turns of the event loop until `done`; each turn only runs if the loop is not blocked. */
function countTurns(): { turns: () => number; stop: () => void } {
  let turns = 0;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    turns++;
    nextTurn(tick);
  };
  nextTurn(tick);
  return { turns: () => turns, stop: () => (stopped = true) };
}

async function untilTurns(counter: { turns: () => number }, wanted: number): Promise<void> {
  while (counter.turns() < wanted) await new Promise((resolve) => nextTurn(resolve));
}

const claimInput = (scopeKey: string) => ({
  scopeKey,
  recordId: `record-${scopeKey}`,
  fingerprint: 'f',
  token: `token-${scopeKey}`,
  nowMs: 1000,
  leaseExpiresAtMs: 61_000,
  expiresAtMs: 1_000_000,
});

it('a transaction waits for another connection’s lock without blocking the event loop, then commits', async () => {
  const { unitOfWork, holder } = setUp(60_000);
  holder.exec('BEGIN IMMEDIATE');
  const counter = countTurns();
  let settled = false;
  const waiting = unitOfWork
    .transaction((tx) => tx.prepare('INSERT INTO rows (id) VALUES (1)').run())
    .finally(() => {
      settled = true;
    });
  // The loop keeps turning and a read on the same connection answers while the lock is held.
  await untilTurns(counter, 200);
  expect(unitOfWork.db.prepare('SELECT count(*) AS n FROM rows').get()).toEqual({ n: 0 });
  expect(settled).toBe(false);
  holder.exec('COMMIT');
  await waiting;
  counter.stop();
  expect(unitOfWork.db.prepare('SELECT count(*) AS n FROM rows').get()).toEqual({ n: 1 });
  holder.close();
  await unitOfWork.close();
});

it('a transaction that cannot take the lock within lockWaitMs fails with a 503, the loop turning meanwhile', async () => {
  const { unitOfWork, holder } = setUp(200);
  holder.exec('BEGIN IMMEDIATE');
  const counter = countTurns();
  let ran = false;
  const failure = await unitOfWork
    .transaction(() => {
      ran = true;
    })
    .catch((error: unknown) => error);
  counter.stop();
  expect(failure).toBeInstanceOf(TransactionUnavailableError);
  expect((failure as TransactionUnavailableError).status).toBe(503);
  expect(ran).toBe(false);
  // A synchronous busy wait of the whole bound would have let no turn run.
  expect(counter.turns()).toBeGreaterThan(10);
  holder.exec('ROLLBACK');
  holder.close();
  await unitOfWork.close();
});

it('a batch of claims waits for the lock without blocking reads, then every claim wins', async () => {
  const { unitOfWork, holder } = setUp(60_000);
  const store = createSqliteStore({ database: unitOfWork });
  await store.claim(claimInput('before'));
  holder.exec('BEGIN IMMEDIATE');
  const counter = countTurns();
  let settled = 0;
  const claims = ['a', 'b', 'c'].map((key) =>
    store.claim(claimInput(key)).finally(() => {
      settled++;
    }),
  );
  await untilTurns(counter, 200);
  // A claim queued while the batch waits joins it.
  claims.push(store.claim(claimInput('late')).finally(() => settled++));
  await untilTurns(counter, 400);
  expect(store.get('before')?.state).toBe('claimed');
  expect(settled).toBe(0);
  holder.exec('COMMIT');
  const results = await Promise.all(claims);
  counter.stop();
  expect(results.map((result) => result.claimed)).toEqual([true, true, true, true]);
  holder.close();
  await store.close();
});

it('claims, completions and releases past lockWaitMs fail with SqliteLockWaitError and write nothing', async () => {
  const { unitOfWork, holder } = setUp(150);
  const store = createSqliteStore({ database: unitOfWork });
  await store.claim(claimInput('held'));
  holder.exec('BEGIN IMMEDIATE');
  const counter = countTurns();
  const failures = await Promise.all([
    store.claim(claimInput('new')).catch((error: unknown) => error),
    store
      .complete({
        scopeKey: 'held',
        token: 'token-held',
        response: { status: 201, headers: {}, body: new Uint8Array(0) },
        expiresAtMs: 1_000_000,
      })
      .catch((error: unknown) => error),
    store.release('held', 'token-held').catch((error: unknown) => error),
    store.reap(2_000_000, 10).catch((error: unknown) => error),
  ]);
  counter.stop();
  for (const failure of failures) {
    expect(failure).toBeInstanceOf(SqliteLockWaitError);
    expect((failure as SqliteLockWaitError).code).toBe('SQLITE_BUSY');
  }
  expect(counter.turns()).toBeGreaterThan(10);
  holder.exec('ROLLBACK');
  expect(store.get('new')).toBeUndefined();
  expect(store.get('held')?.state).toBe('claimed');
  // Free again: the same writes go through.
  expect((await store.claim(claimInput('new'))).claimed).toBe(true);
  await store.release('held', 'token-held');
  expect(store.get('held')?.state).toBe('released');
  holder.close();
  await store.close();
});

it('refuses a lockWaitMs that is not a finite number of milliseconds ≥ 0', () => {
  expect(() => createSqliteUnitOfWork(':memory:', { lockWaitMs: -1 })).toThrow(/lockWaitMs/);
  expect(() => createSqliteUnitOfWork(':memory:', { lockWaitMs: Number.NaN })).toThrow(/lockWaitMs/);
});
