// The repository contract on SQLite (a fresh file per case), plus its migrations: several
// processes migrating one fresh file at once, and adopting a file of the release before the registry.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteServiceData } from '../../src/data/sqlite.js';
import { describeDataContract } from './contract.js';

const directory = mkdtempSync(join(tmpdir(), 'retrysafe-data-sqlite-'));
let files = 0;

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describeDataContract('sqlite', {
  open: async () => openSqliteServiceData(join(directory, `data-${++files}.db`)),
});

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Runs `openSqliteServiceData(path)` in a separate Node process (TypeScript sources, via a loader). */
function migrateInChild(path: string): Promise<string> {
  const script = `
    const { openSqliteServiceData } = await import(${JSON.stringify(new URL('../../src/data/sqlite.ts', import.meta.url).href)});
    const data = openSqliteServiceData(${JSON.stringify(path)});
    await data.close();
    process.stdout.write('ok');`;
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=retrysafe-source',
        '--import',
        join(repoRoot, 'test/helpers/register-ts.mjs'),
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`child exited ${code}: ${output}`)),
    );
  });
}

describe('sqlite service migrations', () => {
  it('applies each migration exactly once when four processes open one fresh file at once', async () => {
    const path = join(directory, 'concurrent.db');
    const outputs = await Promise.all(Array.from({ length: 4 }, () => migrateInChild(path)));
    expect(outputs).toEqual(['ok', 'ok', 'ok', 'ok']);
    const db = new Database(path, { readonly: true });
    try {
      const rows = db
        .prepare('SELECT part, version, count(*) AS n FROM retrysafe_migrations GROUP BY part, version')
        .all();
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
      db.close();
    }
  });

  it('adopts a file created by the release before the registry without losing rows', async () => {
    const path = join(directory, 'legacy.db');
    const legacy = new Database(path);
    // The schema and rows as main's CREATE TABLE IF NOT EXISTS left them: no migrations table.
    legacy.exec(`
      CREATE TABLE retrysafe_idempotency (scope_key TEXT PRIMARY KEY, record_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
        token TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('claimed', 'completed')),
        lease_expires_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL, status INTEGER, headers TEXT, body BLOB
      ) WITHOUT ROWID;
      CREATE INDEX retrysafe_idempotency_expires_at_ms ON retrysafe_idempotency (expires_at_ms);
      CREATE TABLE orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, id TEXT NOT NULL,
        currency TEXT NOT NULL, items TEXT NOT NULL, note TEXT, total_cents INTEGER NOT NULL, created_at TEXT NOT NULL,
        etag TEXT NOT NULL, UNIQUE (tenant, id));
      CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('writer', 'reader')), label TEXT NOT NULL);
      INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
        VALUES ('t', 'o-1', 'EUR', '[]', NULL, 0, '2026-01-01', '"e"');
      INSERT INTO api_keys VALUES ('h', 't', 'writer', 'ci');
      INSERT INTO retrysafe_idempotency VALUES ('s', 'r', 'f', 'tok', 'completed', 0, 99999999999999, 201, '{}', x'00ff');
    `);
    legacy.close();
    const data = openSqliteServiceData(path);
    try {
      expect(await data.orders.get('t', 'o-1')).toMatchObject({ id: 'o-1', currency: 'EUR' });
      expect(await data.apiKeys.find('h')).toMatchObject({ tenant: 't', label: 'ci' });
      expect(await data.apiKeys.seedDemoKeys([])).toBe(false);
      const store = data.store as unknown as { get(scopeKey: string): unknown };
      expect(store.get('s')).toMatchObject({
        recordId: 'r',
        formatVersion: 1,
        data: {},
        response: { status: 201 },
      });
    } finally {
      await data.close();
    }
  });
});
