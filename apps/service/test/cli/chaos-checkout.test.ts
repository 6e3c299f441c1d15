// `retrysafe chaos --scenario checkout` end to end: the real command, real service processes
// SIGKILLed and restarted (their relays with them), a real payments-sim process with faults, real
// SQLite / PostgreSQL, real NATS JetStream and RabbitMQ; its audit must find no double charge, no
// unpaid order, no orphaned charge, no missing or twice-processed event, every fault must have
// happened, and the run must remove its stream or exchange and queue.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectAmqp } from 'amqplib';
import { connect as connectNats, type NatsError } from 'nats';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosReport } from '../../src/chaos/report.js';
import { type CliRun, runCli } from '../helpers/cli.js';
import { postgresAdminUrl } from '../helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'retrysafe-chaos-checkout-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chaos(args: string[]): Promise<CliRun> {
  return runCli(['chaos', '--scenario', 'checkout', ...args]);
}

/**
 * 150 checkouts, a kill about every second, provider faults on, and half of the callers giving up
 * at their first 503, so the completer has abandoned checkouts to finish in every run.
 */
const boundedRun = [
  '--orders',
  '150',
  '--workers',
  '12',
  '--processes',
  '3',
  '--kill-every-ms',
  '800',
  '--abandon-rate',
  '0.5',
  '--payments-fail-rate',
  '0.08',
  '--payments-reset-rate',
  '0.08',
  '--payments-slow-rate',
  '0.08',
];

function expectCleanCheckout(report: ChaosReport): void {
  expect(report.passed).toBe(true);
  const { orders, charges, events } = report;
  expect(orders.attempted).toBe(150);
  expect(orders.duplicated).toBe(0);
  expect(orders.lost).toBe(0);
  // Money: every order of the run is paid, with exactly one charge each, and no charge is left over.
  expect(orders.unpaid).toBe(0);
  expect(orders.doubleCharged).toBe(0);
  expect(orders.paidIncomplete).toBe(0);
  expect(orders.paid).toBe(orders.created);
  expect(charges?.made).toBe(orders.paid);
  expect(charges?.orphaned).toBe(0);
  // Events: one per paid order, none missing, none processed twice.
  expect(events?.expected).toBe(orders.paid);
  expect(events?.missing).toBe(0);
  expect(events?.processedTwice).toBe(0);
  expect(report.checkout?.drainTimedOut).toBe(false);
  // The faults really happened, or the run proves nothing.
  expect(report.faults.kills).toBeGreaterThanOrEqual(2);
  expect(report.faults.restarts).toBe(report.faults.kills);
  expect(report.faults.responsesReset).toBeGreaterThan(0);
  const provider = report.faults.provider!;
  expect(provider.refused).toBeGreaterThan(0);
  expect(provider.resetAfterCharge).toBeGreaterThan(0);
  expect(provider.slowAfterCharge).toBeGreaterThan(0);
  expect(provider.checkoutAnswers503).toBeGreaterThan(0);
  // Abandoned checkouts that had been placed were finished by the completer.
  expect(orders.abandoned).toBeGreaterThan(0);
  expect(orders.abandonedAndPaid).toBeGreaterThan(0);
  expect(report.problems.unexpectedExits).toEqual([]);
  expect(report.problems.serverErrors['500']).toBeUndefined();
}

async function natsStreamExists(name: string): Promise<boolean> {
  const connection = await connectNats({ servers: 'nats://127.0.0.1:4222' });
  try {
    await (await connection.jetstreamManager()).streams.info(name);
    return true;
  } catch (error) {
    if ((error as NatsError).api_error?.err_code === 10059) return false;
    throw error;
  } finally {
    await connection.close();
  }
}

/** A passive declare fails (and closes its channel) when the exchange or queue is gone. */
async function rabbitHas(kind: 'exchange' | 'queue', name: string): Promise<boolean> {
  const connection = await connectAmqp('amqp://guest:guest@127.0.0.1:5672');
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await (kind === 'exchange' ? channel.checkExchange(name) : channel.checkQueue(name));
    return true;
  } catch {
    return false;
  } finally {
    await connection.close().catch(() => {});
  }
}

// Each run is bounded by its order count and the drain bound; about 10–20 s each here.
describe('retrysafe chaos --scenario checkout', { timeout: 180_000 }, () => {
  it('on SQLite with NATS: every checkout paid once, every order.paid processed once, the stream deleted', async () => {
    const jsonPath = join(dir, 'sqlite-nats.json');
    const run = await chaos([...boundedRun, '--broker', 'nats', '--json', jsonPath]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('no double charge, no unpaid order, no orphaned charge');
    expect(run.stdout).toMatch(/double-charged orders\s+0\n/);
    expect(run.stdout).toMatch(/events processed twice\s+0\n/);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanCheckout(report);
    expect(report.events?.broker).toBe('nats');
    expect(report.events?.processed).toBe(report.orders.paid);
    expect(report.events?.published).toBe(report.orders.paid);
    expect(await natsStreamExists(`RETRYSAFE_CHAOS_${report.runId}`)).toBe(false);
    const path = /SQLite (\S+)/.exec(report.data)![1]!;
    expect(existsSync(path)).toBe(false);
  });

  it('on PostgreSQL with RabbitMQ: the same, and the exchange, the audit queue and the database removed', async () => {
    const jsonPath = join(dir, 'postgres-rabbitmq.json');
    const run = await chaos([
      ...boundedRun,
      '--store',
      'postgres',
      '--database-url',
      postgresAdminUrl,
      '--broker',
      'rabbitmq',
      '--json',
      jsonPath,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanCheckout(report);
    expect(report.events?.broker).toBe('rabbitmq');
    expect(report.events?.processed).toBe(report.orders.paid);
    expect(await rabbitHas('exchange', `retrysafe-chaos.${report.runId}.events`)).toBe(false);
    expect(await rabbitHas('queue', `retrysafe-chaos.${report.runId}.audit`)).toBe(false);
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      `retrysafe_chaos_${report.runId}`,
    ]);
    await admin.end();
    expect(left.rowCount).toBe(0);
  });

  it('without a broker, every paid order has its order.paid row waiting in the outbox', async () => {
    const jsonPath = join(dir, 'sqlite-outbox.json');
    const run = await chaos([...boundedRun, '--json', jsonPath]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as ChaosReport;
    expectCleanCheckout(report);
    expect(report.events).toMatchObject({ broker: 'none', processed: 0, published: 0 });
    expect(report.events?.inOutbox).toBe(report.orders.paid);
  });

  it('fails with exit status 1 when abandoned checkouts are never completed within the wait', async () => {
    // The completer is due only after 10 minutes and the wait is 1 s: abandoned orders stay pending.
    const run = await chaos([
      '--orders',
      '40',
      '--workers',
      '8',
      '--processes',
      '1',
      '--kill-every-ms',
      '0',
      '--abandon-rate',
      '1',
      '--payments-fail-rate',
      '0.5',
      '--payments-reset-rate',
      '0',
      '--payments-slow-rate',
      '0',
      '--completer-delay-ms',
      '600000',
      '--drain-seconds',
      '1',
    ]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/FAIL: .*[1-9]\d* unpaid after the completer/);
    // Their charges were never made, so nothing is orphaned: the audit tells the two apart.
    expect(run.stdout).toMatch(/charges made \/ orphaned\s+\d+ \/ 0\n/);
  });

  it('refuses a broker it does not know with exit status 2, starting nothing', async () => {
    const run = await chaos(['--broker', 'kafka']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--broker kafka: choose nats or rabbitmq');
  });
});
