// The reference service's SQLite schema as migrations, one part per repository. Version 1 is the
// schema of the releases before the registry (`IF NOT EXISTS`), so their files are adopted as they are.
import type { SqliteMigration } from 'retrysafe/stores/sqlite';

export const sqliteServiceMigrations: SqliteMigration[] = [
  {
    part: 'service.users',
    version: 1,
    name: 'create users',
    up: `CREATE TABLE IF NOT EXISTS users (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      username TEXT NOT NULL,
      email TEXT NOT NULL,
      age INTEGER,
      bio TEXT,
      interests TEXT NOT NULL,
      version INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      etag TEXT NOT NULL,
      UNIQUE (tenant, id),
      UNIQUE (tenant, username)
    )`,
  },
  {
    part: 'service.orders',
    version: 1,
    name: 'create orders',
    up: `CREATE TABLE IF NOT EXISTS orders (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      currency TEXT NOT NULL,
      items TEXT NOT NULL,
      note TEXT,
      total_cents INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      etag TEXT NOT NULL,
      UNIQUE (tenant, id)
    )`,
  },
  {
    part: 'service.api-keys',
    version: 1,
    name: 'create api_keys',
    up: `CREATE TABLE IF NOT EXISTS api_keys (
      key_hash TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('writer', 'reader')),
      label TEXT NOT NULL
    )`,
  },
];
