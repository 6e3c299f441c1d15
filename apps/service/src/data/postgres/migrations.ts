// The reference service's PostgreSQL schema as migrations, one part per repository. Version 1 is
// the schema of the releases before the registry (`IF NOT EXISTS`), so their databases are adopted.
import type { PoolClient } from 'pg';
import type { PostgresMigration } from 'retrysafe/stores/postgres';

export const postgresServiceMigrations: PostgresMigration<PoolClient>[] = [
  {
    part: 'service.users',
    version: 1,
    name: 'create users',
    up: `CREATE TABLE IF NOT EXISTS users (
      seq bigserial PRIMARY KEY,
      tenant text NOT NULL,
      id text NOT NULL,
      username text NOT NULL,
      email text NOT NULL,
      age integer,
      bio text,
      interests jsonb NOT NULL,
      version integer NOT NULL,
      created_at text NOT NULL,
      updated_at text NOT NULL,
      etag text NOT NULL,
      UNIQUE (tenant, id),
      UNIQUE (tenant, username)
    )`,
  },
  {
    part: 'service.orders',
    version: 1,
    name: 'create orders',
    up: `CREATE TABLE IF NOT EXISTS orders (
      seq bigserial PRIMARY KEY,
      tenant text NOT NULL,
      id text NOT NULL,
      currency text NOT NULL,
      items jsonb NOT NULL,
      note text,
      total_cents bigint NOT NULL,
      created_at text NOT NULL,
      etag text NOT NULL,
      UNIQUE (tenant, id)
    )`,
  },
  {
    part: 'service.orders',
    version: 2,
    name: 'checkout: payment state, versions, shipments and the provider payments of each order',
    // Orders from before checkouts read as `placed` (never charged here).
    up: `ALTER TABLE orders
        ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'placed',
        ADD COLUMN IF NOT EXISTS paid_cents bigint NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS charge_id text,
        ADD COLUMN IF NOT EXISTS charge_key text,
        ADD COLUMN IF NOT EXISTS paid_at text,
        ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1,
        ADD COLUMN IF NOT EXISTS updated_at text,
        ADD COLUMN IF NOT EXISTS replaced_etag text,
        ADD COLUMN IF NOT EXISTS replaced_body_digest text;
      CREATE TABLE IF NOT EXISTS shipments (
        tenant text NOT NULL,
        order_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'shipped')),
        created_at text NOT NULL,
        PRIMARY KEY (tenant, order_id)
      );
      CREATE TABLE IF NOT EXISTS order_payments (
        key text PRIMARY KEY,
        tenant text NOT NULL,
        order_id text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('charge', 'refund')),
        provider_id text NOT NULL,
        amount_cents bigint NOT NULL,
        refunds_charge text,
        created_at text NOT NULL
      );
      CREATE INDEX IF NOT EXISTS order_payments_by_order ON order_payments (tenant, order_id);`,
  },
  {
    part: 'service.orders',
    version: 3,
    name: 'replacement by PUT: the change reserved on an order while its money moves',
    up: 'ALTER TABLE orders ADD COLUMN IF NOT EXISTS pending_change jsonb',
  },
  {
    part: 'service.orders',
    version: 4,
    name: 'bulk imports: the import an order came from, and each import with its input and batch results',
    // The input waits in its own row (a job payload is kept small) until the import's last batch.
    // JSON as text, not jsonb: jsonb refuses a \u0000 escape that JSON text (and a bad order) may hold.
    up: `ALTER TABLE orders ADD COLUMN IF NOT EXISTS import_id text;
      CREATE INDEX IF NOT EXISTS orders_by_import ON orders (tenant, import_id, seq) WHERE import_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS order_imports (
        tenant text NOT NULL,
        id text NOT NULL,
        total integer NOT NULL,
        input text,
        callback_url text,
        created_at text NOT NULL,
        PRIMARY KEY (tenant, id)
      );
      CREATE TABLE IF NOT EXISTS order_import_batches (
        tenant text NOT NULL,
        import_id text NOT NULL,
        batch integer NOT NULL,
        created integer NOT NULL,
        failed integer NOT NULL,
        errors text NOT NULL,
        PRIMARY KEY (tenant, import_id, batch)
      );`,
  },
  {
    part: 'service.api-keys',
    version: 1,
    name: 'create api_keys',
    up: `CREATE TABLE IF NOT EXISTS api_keys (
      key_hash text PRIMARY KEY,
      tenant text NOT NULL,
      role text NOT NULL CHECK (role IN ('writer', 'reader')),
      label text NOT NULL
    )`,
  },
];
