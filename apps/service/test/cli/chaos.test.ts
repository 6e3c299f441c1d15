// `retrysafe chaos` end to end: the real command, real service processes SIGKILLed and
// restarted, a fault proxy, real SQLite / PostgreSQL / Redis; then its own audit must find no
// duplicate and no loss, and every kind of fault must actually have happened.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosReport } from '../../src/chaos/report.js';
import { type CliRun, runCli } from '../helpers/cli.js';
import { postgresAdminUrl } from '../helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'retrysafe-chaos-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chaos(args: string[]): Promise<CliRun> {
  return runCli(['chaos', ...args]);
}

/** About 500 orders with every fault on and a kill every ~1 s (a few kills per run). */
const boundedRun = ['--orders', '500', '--workers', '16', '--processes', '3', '--kill-every-ms', '1000'];

function expectCleanRun(report: ChaosReport): void {
  expect(report.passed).toBe(true);
  expect(report.orders.attempted).toBe(500);
  expect(report.orders.duplicated).toBe(0);
  expect(report.orders.lost).toBe(0);
  expect(report.orders.unexpected).toBe(0);
  // Every caller that was told 201 has its order, and nobody else's order exists.
  expect(report.orders.created).toBe(
    report.orders.attempted -
      report.orders.refused -
      (report.orders.unknownOutcome - report.orders.unknownButCreated),
  );
  // The faults really happened, or the run proves nothing.
  expect(report.faults.kills).toBeGreaterThanOrEqual(2);
  expect(report.faults.restarts).toBe(report.faults.kills);
  expect(report.faults.responsesReset).toBeGreaterThan(0);
  expect(report.faults.responsesDelayed).toBeGreaterThan(0);
  // Both injected failures happened (503 before the writes, 500 after them), and nothing else.
  expect(Object.keys(report.faults.serverErrors).sort()).toEqual(['500', '503']);
  expect(report.problems.serverErrors['500']).toBeUndefined();
  expect(report.problems.unexpectedExits).toEqual([]);
  expect(report.orders.replayedAnswers).toBeGreaterThan(0);
}

// Each run is bounded by its order count; under a loaded CI machine it can take a minute.
describe('retrysafe chaos', { timeout: 240_000 }, () => {
  it('places ~500 orders on SQLite through resets, delays, 5xx and kills: no duplicate, no loss', async () => {
    const jsonPath = join(dir, 'sqlite.json');
    const run = await chaos([...boundedRun, '--json', jsonPath]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('PASS: no duplicate and no lost order.');
    expect(run.stdout).toMatch(/duplicated\s+0\n/);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanRun(report);
    // The scratch database is removed afterwards.
    const path = /SQLite (\S+)/.exec(report.data)![1]!;
    expect(existsSync(path)).toBe(false);
  });

  it('does the same on PostgreSQL and drops its scratch database', async () => {
    const jsonPath = join(dir, 'postgres.json');
    const run = await chaos([
      ...boundedRun,
      '--store',
      'postgres',
      '--database-url',
      postgresAdminUrl,
      '--json',
      jsonPath,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanRun(report);
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      `retrysafe_chaos_${report.runId}`,
    ]);
    await admin.end();
    expect(left.rowCount).toBe(0);
  });

  it('does the same on PostgreSQL while its backends are terminated, its connections cut mid-transaction and the database stalled', async () => {
    const jsonPath = join(dir, 'postgres-db-faults.json');
    const run = await chaos([
      ...boundedRun,
      '--store',
      'postgres',
      '--database-url',
      postgresAdminUrl,
      '--db-kill-every-ms',
      '500',
      '--db-cut-every-ms',
      '500',
      // Stalls alternate long (past PG_QUERY_TIMEOUT_MS) and short (under every PG timeout).
      '--db-stall-every-ms',
      '1000',
      '--json',
      jsonPath,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanRun(report);
    expect(report.faults.dbBackendsTerminatedInTransaction).toBeGreaterThan(0);
    expect(report.faults.dbConnectionsCutInTransaction).toBeGreaterThan(0);
    expect(report.faults.dbStallsLong).toBeGreaterThan(0);
    expect(report.faults.dbStallsShort).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/DB backends terminated \(in a transaction\)\s+[1-9]\d* \([1-9]/);
  });

  it('does the same with idempotency records in Redis and deletes its keys', async () => {
    const jsonPath = join(dir, 'redis.json');
    const run = await chaos([...boundedRun, '--store', 'redis', '--json', jsonPath]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanRun(report);
    const redis = createClient({ url: 'redis://127.0.0.1:6379' });
    await redis.connect();
    const left = await redis.keys(`retrysafe-chaos:${report.runId}:*`);
    await redis.quit();
    expect(left).toEqual([]);
  });

  it('does the same with records in its own Redis, restarted with its AOF, while held requests outlive their lease and are taken over', async () => {
    const jsonPath = join(dir, 'postgres-redis-faults.json');
    const run = await chaos([
      ...boundedRun,
      '--store',
      'postgres+redis',
      '--database-url',
      postgresAdminUrl,
      '--redis-restart-every-ms',
      '1000',
      // Held requests wait 3 leases inside their transaction; a second caller comes after 1.5.
      '--lease-ms',
      '500',
      '--lease-overrun-rate',
      '0.08',
      '--json',
      jsonPath,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanRun(report);
    expect(report.faults.redisRestarts).toBeGreaterThan(0);
    expect(report.faults.leaseOverruns).toBeGreaterThan(0);
    // A held request answered 409 "took longer than its lease": the second caller had taken over.
    expect(report.faults.leaseTakeovers).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/requests held past their lease \/ taken over\s+[1-9]\d* \/ [1-9]/);
    // Its own redis-server is stopped and its directory removed; the shared one was not used.
    const aofDir = /AOF in ([^)]+)\)/.exec(report.data)![1]!;
    expect(existsSync(aofDir)).toBe(false);
    const redis = createClient({ url: 'redis://127.0.0.1:6379' });
    await redis.connect();
    const left = await redis.keys(`retrysafe-chaos:${report.runId}:*`);
    await redis.quit();
    expect(left).toEqual([]);
  });

  it('refuses bad options with exit status 2 and a message, starting nothing', async () => {
    const run = await chaos(['--store', 'mysql']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--store mysql');
  });
});
