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
