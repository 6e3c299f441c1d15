// Runs the store contract against the SQLite store on a real database file per case.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createSqliteStore, openSqliteDatabase, type SqliteDatabase } from '../../src/stores/sqlite.js';
import { describeStoreContract } from './contract.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-sqlite-contract-'));
let databases = 0;

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

function openFresh(): SqliteDatabase {
  databases++;
  return openSqliteDatabase(join(directory, `store-${databases}.db`));
}

describeStoreContract<SqliteDatabase>(
  'sqlite',
  {
    create: async () => {
      const db = openFresh();
      db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
      const store = createSqliteStore({ database: db });
      return {
        store,
        // The INSERT the release before record formats ran: format_version and data take their defaults.
        writeFormat1Record: async (record) => {
          db.prepare(
            `INSERT INTO retrysafe_idempotency (scope_key, record_id, fingerprint, token, state, lease_expires_at_ms,
               expires_at_ms, status, headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            record.scopeKey,
            record.recordId,
            record.fingerprint,
            record.token,
            record.response ? 'completed' : 'claimed',
            record.leaseExpiresAtMs,
            record.expiresAtMs,
            record.response?.status ?? null,
            record.response ? JSON.stringify(record.response.headers) : null,
            record.response ? Buffer.from(record.response.body) : null,
          );
        },
        business: {
          insert: async (tx, id) => {
            tx.prepare('INSERT INTO orders (id) VALUES (?)').run(id);
          },
          count: async () => (db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n,
        },
        cleanup: () => store.close(),
      };
    },
    writesFormat1: true,
    // A closed database is SQLite's "store down": every statement throws.
    unavailable: async () => {
      const store = createSqliteStore({ database: openFresh() });
      await store.close();
      return { store, cleanup: async () => {} };
    },
  },
  { expiry: 'reaper', transactional: true },
);
