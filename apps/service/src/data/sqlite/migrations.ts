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
    part: 'service.orders',
    version: 2,
    name: 'checkout: payment state, versions, shipments and the provider payments of each order',
    // Orders from before checkouts read as `placed` (never charged here).
    up: `ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'placed';
      ALTER TABLE orders ADD COLUMN paid_cents INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE orders ADD COLUMN charge_id TEXT;
      ALTER TABLE orders ADD COLUMN charge_key TEXT;
      ALTER TABLE orders ADD COLUMN paid_at TEXT;
      ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE orders ADD COLUMN updated_at TEXT;
      ALTER TABLE orders ADD COLUMN replaced_etag TEXT;
      ALTER TABLE orders ADD COLUMN replaced_body_digest TEXT;
      CREATE TABLE shipments (
        tenant TEXT NOT NULL,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'shipped')),
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant, order_id)
      ) WITHOUT ROWID;
      CREATE TABLE order_payments (
        key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        order_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
        provider_id TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        refunds_charge TEXT,
        created_at TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX order_payments_by_order ON order_payments (tenant, order_id);`,
  },
  {
    part: 'service.orders',
    version: 3,
    name: 'replacement by PUT: the change reserved on an order while its money moves',
    up: 'ALTER TABLE orders ADD COLUMN pending_change TEXT',
  },
  {
    part: 'service.orders',
    version: 4,
    name: 'bulk imports: the import an order came from, and each import with its input and batch results',
    // The input waits in its own row (a job payload is kept small) until the import's last batch.
    up: `ALTER TABLE orders ADD COLUMN import_id TEXT;
      CREATE INDEX orders_by_import ON orders (tenant, import_id, seq) WHERE import_id IS NOT NULL;
      CREATE TABLE order_imports (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        total INTEGER NOT NULL,
        input TEXT,
        callback_url TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
      ) WITHOUT ROWID;
      CREATE TABLE order_import_batches (
        tenant TEXT NOT NULL,
        import_id TEXT NOT NULL,
        batch INTEGER NOT NULL,
        created INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        errors TEXT NOT NULL,
        PRIMARY KEY (tenant, import_id, batch)
      ) WITHOUT ROWID;`,
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
