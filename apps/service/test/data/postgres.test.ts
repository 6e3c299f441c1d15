// The repository contract on PostgreSQL (a throwaway database per case), plus its migrations:
// several data layers on separate pools migrating one fresh database at once, and adopting a
// database of the release before the registry.
import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { openPostgresServiceData } from '../../src/data/postgres.js';
import type { ServiceData } from '../../src/data/types.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { describeDataContract } from './contract.js';

describeDataContract<PoolClient>('postgres', {
  open: async () => {
    const database = await createTestDatabase('retrysafe_data');
    const data = await openPostgresServiceData(database.url);
    return {
      ...data,
      async close() {
        await data.close();
        await database.drop();
      },
    } satisfies ServiceData<PoolClient>;
  },
});

describe('postgres service migrations', () => {
  it('applies each migration exactly once when four data layers open one fresh database at once', async () => {
    const database = await createTestDatabase('retrysafe_data_migrate');
    try {
      const layers = await Promise.all(
        Array.from({ length: 4 }, () => openPostgresServiceData(database.url)),
      );
      await Promise.all(layers.map((layer) => layer.close()));
      const { rows } = await database.pool.query(
        'SELECT part, version, count(*)::int AS n FROM retrysafe_migrations GROUP BY part, version ORDER BY part, version',
      );
      expect(rows).toEqual([
        { part: 'retrysafe.idempotency', version: 1, n: 1 },
        { part: 'retrysafe.idempotency', version: 2, n: 1 },
        { part: 'retrysafe.idempotency', version: 3, n: 1 },
        { part: 'retrysafe.idempotency', version: 4, n: 1 },
        { part: 'retrysafe.jobs', version: 1, n: 1 },
        { part: 'retrysafe.operations', version: 1, n: 1 },
        { part: 'service.api-keys', version: 1, n: 1 },
        { part: 'service.orders', version: 1, n: 1 },
        { part: 'service.orders', version: 2, n: 1 },
        { part: 'service.orders', version: 3, n: 1 },
        { part: 'service.orders', version: 4, n: 1 },
        { part: 'service.users', version: 1, n: 1 },
      ]);
    } finally {
      await database.drop();
    }
  });

  it('adopts a database created by the release before the registry without losing rows', async () => {
    const database = await createTestDatabase('retrysafe_data_legacy');
    try {
      await database.pool.query(`
        CREATE TABLE retrysafe_idempotency (scope_key text PRIMARY KEY, record_id text NOT NULL,
          fingerprint text NOT NULL, token text NOT NULL, state text NOT NULL CHECK (state IN ('claimed', 'completed')),
          lease_expires_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL, status integer, headers jsonb, body bytea);
        CREATE TABLE orders (seq bigserial PRIMARY KEY, tenant text NOT NULL, id text NOT NULL, currency text NOT NULL,
          items jsonb NOT NULL, note text, total_cents bigint NOT NULL, created_at text NOT NULL, etag text NOT NULL,
          UNIQUE (tenant, id));
        CREATE TABLE api_keys (key_hash text PRIMARY KEY, tenant text NOT NULL,
          role text NOT NULL CHECK (role IN ('writer', 'reader')), label text NOT NULL);
        INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
          VALUES ('t', 'o-1', 'EUR', '[]', NULL, 0, '2026-01-01', '"e"');
        INSERT INTO api_keys VALUES ('h', 't', 'writer', 'ci');
        INSERT INTO retrysafe_idempotency VALUES ('s', 'r', 'f', 'tok', 'completed', 0, 99999999999999, 201, '{}', '\\x00ff');
      `);
      const data = await openPostgresServiceData(database.url);
      try {
        expect(await data.orders.get('t', 'o-1')).toMatchObject({ id: 'o-1', currency: 'EUR' });
        expect(await data.apiKeys.find('h')).toMatchObject({ tenant: 't', label: 'ci' });
        expect(await data.apiKeys.seedDemoKeys([])).toBe(false);
        const store = data.store as unknown as { get(scopeKey: string): Promise<unknown> };
        expect(await store.get('s')).toMatchObject({ recordId: 'r', formatVersion: 1, data: {} });
      } finally {
        await data.close();
      }
    } finally {
      await database.drop();
    }
  });
});
