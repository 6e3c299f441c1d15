// The consumer ledger alone, on a real SQLite file and a real PostgreSQL database: an id is
// processed once, a throw rolls the id back with the work so a redelivery processes it, ids are
// per consumer, and reap forgets old ids in bounded batches, never inside the retry horizon.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consumerLedgerPart } from '../../../src/effects/consumer/ledger.js';
import { createPostgresConsumerLedger } from '../../../src/effects/consumer/postgres.js';
import { createSqliteConsumerLedger } from '../../../src/effects/consumer/sqlite.js';
import { createPostgresUnitOfWork } from '../../../src/stores/postgres/unit-of-work.js';
import { createSqliteUnitOfWork } from '../../../src/stores/sqlite/unit-of-work.js';
import { createTestDatabase } from '../../helpers/postgres.js';
import { dialects, LedgerFixtures } from './fixtures.js';

const fixtures = new LedgerFixtures('retrysafe-ledger');

afterAll(() => fixtures.close());

describe.each(dialects)('the %s consumer ledger', (dialect) => {
  it('runs the work for a new id, and skips it for the same id again', async () => {
    const { ledger, recordEffect, effects } = await fixtures.open(dialect);
    const first = await ledger.processOnce('evt-1', async (tx) => {
      await recordEffect(tx, 'evt-1');
      return 'charged';
    });
    const second = await ledger.processOnce('evt-1', async (tx) => {
      await recordEffect(tx, 'evt-1');
      return 'charged again';
    });
    expect(first).toEqual({ processed: true, result: 'charged' });
    expect(second).toEqual({ processed: false });
    expect(await effects()).toEqual(new Map([['evt-1', 1]]));
  });

  it('a throw rolls back the work and the id together, so the redelivery processes it', async () => {
    const { ledger, recordEffect, effects, processedIds } = await fixtures.open(dialect);
    await expect(
      ledger.processOnce('evt-fails-once', async (tx) => {
        await recordEffect(tx, 'evt-fails-once');
        throw new Error('payment provider down');
      }),
    ).rejects.toThrow('payment provider down');
    expect(await processedIds()).toEqual([]);
    expect(await effects()).toEqual(new Map());

    const retried = await ledger.processOnce('evt-fails-once', (tx) => recordEffect(tx, 'evt-fails-once'));
    expect(retried.processed).toBe(true);
    expect(await effects()).toEqual(new Map([['evt-fails-once', 1]]));
    expect(await processedIds()).toEqual(['evt-fails-once']);
  });

  it('remembers ids per consumer: two consumers each process the same event once', async () => {
    const billing = await fixtures.open(dialect, { consumer: 'billing' });
    const shipping = billing.sibling('shipping');
    expect((await billing.ledger.processOnce('evt-shared', () => 1)).processed).toBe(true);
    expect((await shipping.processOnce('evt-shared', () => 1)).processed).toBe(true);
    expect((await shipping.processOnce('evt-shared', () => 1)).processed).toBe(false);
    expect((await billing.ledger.processOnce('evt-shared', () => 1)).processed).toBe(false);
  });

  it('concurrent deliveries of one id: exactly one runs the work', async () => {
    const { ledger, recordEffect, effects } = await fixtures.open(dialect);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        ledger.processOnce('evt-raced', async (tx) => {
          await recordEffect(tx, 'evt-raced');
          // Hold the transaction open a moment so the others really overlap it.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.processed)).toHaveLength(1);
    expect(await effects()).toEqual(new Map([['evt-raced', 1]]));
  });

  it('reap forgets ids older than olderThanMs, at most limit per call, and only this consumer’s', async () => {
    let nowMs = 1_000_000;
    const { ledger, processedIds } = await fixtures.open(dialect, { now: () => nowMs });
    for (const id of ['old-1', 'old-2', 'old-3']) await ledger.processOnce(id, () => undefined);
    nowMs += 60_000;
    await ledger.processOnce('recent', () => undefined);
    nowMs += 1_000;

    expect(await ledger.reap({ olderThanMs: 30_000, limit: 2 })).toEqual({ deleted: 2 });
    expect(await ledger.reap({ olderThanMs: 30_000, limit: 2 })).toEqual({ deleted: 1 });
    expect(await ledger.reap({ olderThanMs: 30_000, limit: 2 })).toEqual({ deleted: 0 });
    expect(await processedIds()).toEqual(['recent']);
    // A forgotten id is new again: this is why the retention must cover the retry horizon.
    expect((await ledger.processOnce('old-1', () => undefined)).processed).toBe(true);
  });

  it('reap refuses a retention shorter than the retry horizon, and an unbounded batch', async () => {
    const { ledger } = await fixtures.open(dialect, { retryHorizonMs: 28 * 3_600_000 });
    await expect(ledger.reap({ olderThanMs: 3_600_000, limit: 100 })).rejects.toThrow(/retry horizon/);
    await expect(ledger.reap({ olderThanMs: 30 * 3_600_000, limit: 0 })).rejects.toThrow(/limit/);
    expect(await ledger.reap({ olderThanMs: 30 * 3_600_000, limit: 100 })).toEqual({ deleted: 0 });
  });
});

describe('the ledger’s migrations', () => {
  it('SQLite: registered on the unit of work and applied once, by name', () => {
    const directory = mkdtempSync(join(tmpdir(), 'retrysafe-ledger-migrations-'));
    const unitOfWork = createSqliteUnitOfWork(join(directory, 'ledger.db'));
    try {
      createSqliteConsumerLedger({ database: unitOfWork, consumer: 'first' });
      expect(unitOfWork.migrations.list().map((migration) => migration.part)).toContain(consumerLedgerPart());
      expect(unitOfWork.applied().filter((row) => row.part === consumerLedgerPart())).toHaveLength(1);
      // A second ledger on the same file finds its table migrated.
      createSqliteConsumerLedger({ database: unitOfWork, consumer: 'second' });
      expect(unitOfWork.migrate().applied).toEqual([]);
    } finally {
      unitOfWork.db.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: registered on the unit of work, applied by migrate(), again a no-op', async () => {
    const database = await createTestDatabase('retrysafe_ledger_migrations');
    try {
      const unitOfWork = createPostgresUnitOfWork(database.pool);
      const ledger = createPostgresConsumerLedger({ database: unitOfWork, consumer: 'first' });
      expect(unitOfWork.migrations.list().map((migration) => migration.part)).toContain(consumerLedgerPart());
      expect(await unitOfWork.applied()).toEqual([]);
      await ledger.migrate();
      expect((await unitOfWork.applied()).filter((row) => row.part === consumerLedgerPart())).toHaveLength(1);
      expect((await unitOfWork.migrate()).applied).toEqual([]);
    } finally {
      await database.drop();
    }
  });
});
