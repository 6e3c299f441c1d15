// The reference service's data on PostgreSQL: users, orders and API keys beside the
// idempotency records, so several service processes share one database and an order and its
// stored response still commit in one transaction. `pg` is loaded only when this is used.
import type { Pool, PoolClient } from 'pg';
import { PostgresIdempotencyStore } from 'retrysafe/stores/postgres';
import type { StoredOrder } from '../domain/orders.js';
import type { StoredUser } from '../domain/users.js';
import { type ApiKeyRecord, type ServiceData, toPage } from './types.js';

const schema = `
  CREATE TABLE IF NOT EXISTS users (
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
  );
  CREATE TABLE IF NOT EXISTS orders (
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
  );
  CREATE TABLE IF NOT EXISTS api_keys (
    key_hash text PRIMARY KEY,
    tenant text NOT NULL,
    role text NOT NULL CHECK (role IN ('writer', 'reader')),
    label text NOT NULL
  );
`;

// Created-at strings are kept as text: the representation (and so its ETag) must come back
// byte for byte, and timestamptz would re-format it.
interface UserRow {
  seq: string;
  tenant: string;
  id: string;
  username: string;
  email: string;
  age: number | null;
  bio: string | null;
  interests: string[];
  version: number;
  created_at: string;
  updated_at: string;
  etag: string;
}

interface OrderRow {
  seq: string;
  tenant: string;
  id: string;
  currency: string;
  items: StoredOrder['items'];
  note: string | null;
  total_cents: string;
  created_at: string;
  etag: string;
}

const uniqueViolation = '23505';

export async function openPostgresServiceData(url: string): Promise<ServiceData<PoolClient>> {
  const { default: pg } = await import('pg');
  const pool: Pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client that loses its server emits 'error'; without a listener it would crash the process.
  pool.on('error', () => {});
  await migrate(pool);
  const store = new PostgresIdempotencyStore<PoolClient>({ pool });
  await store.migrate();

  return {
    store,
    transaction: (work) => store.transaction(work),
    users: {
      async get(tenant, id) {
        const { rows } = await pool.query<UserRow>('SELECT * FROM users WHERE tenant = $1 AND id = $2', [
          tenant,
          id,
        ]);
        return rows[0] && toUser(rows[0]);
      },
      async list(tenant, afterSeq, limit) {
        const { rows } = await pool.query<UserRow>(
          'SELECT * FROM users WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3',
          [tenant, afterSeq, limit + 1],
        );
        return toPage(rows, limit, toUser, (row) => Number(row.seq));
      },
      async insert(tx, user) {
        const inserted = await tx.query(
          `INSERT INTO users (tenant, id, username, email, age, bio, interests, version, created_at, updated_at, etag)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
          userValues(user),
        );
        if (inserted.rowCount === 1) return { ok: true };
        const clash = await usernameOwner(tx, user.tenant, user.username);
        return clash
          ? { ok: false, reason: 'username-taken', existingId: clash }
          : { ok: false, reason: 'id-taken' };
      },
      async replace(tx, user, expectedEtag) {
        // A savepoint keeps the transaction usable when the new username is taken.
        await tx.query('SAVEPOINT replace_user');
        try {
          const changed = await tx.query(
            // created_at ($9) is rewritten unchanged: PostgreSQL refuses parameters a statement never uses.
            `UPDATE users SET username = $3, email = $4, age = $5, bio = $6, interests = $7, version = $8,
               created_at = $9, updated_at = $10, etag = $11
             WHERE tenant = $1 AND id = $2 AND etag = $12`,
            [...userValues(user), expectedEtag],
          );
          await tx.query('RELEASE SAVEPOINT replace_user');
          return changed.rowCount === 1 ? { ok: true } : { ok: false, reason: 'stale' };
        } catch (error) {
          if ((error as { code?: string }).code !== uniqueViolation) throw error;
          await tx.query('ROLLBACK TO SAVEPOINT replace_user');
          const clash = await usernameOwner(tx, user.tenant, user.username);
          return { ok: false, reason: 'username-taken', existingId: clash ?? '' };
        }
      },
      async delete(tx, tenant, id, expectedEtag) {
        const deleted = await tx.query('DELETE FROM users WHERE tenant = $1 AND id = $2 AND etag = $3', [
          tenant,
          id,
          expectedEtag,
        ]);
        return deleted.rowCount === 1;
      },
    },
    orders: {
      async get(tenant, id) {
        const { rows } = await pool.query<OrderRow>('SELECT * FROM orders WHERE tenant = $1 AND id = $2', [
          tenant,
          id,
        ]);
        return rows[0] && toOrder(rows[0]);
      },
      async list(tenant, afterSeq, limit) {
        const { rows } = await pool.query<OrderRow>(
          'SELECT * FROM orders WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3',
          [tenant, afterSeq, limit + 1],
        );
        return toPage(rows, limit, toOrder, (row) => Number(row.seq));
      },
      async insertOnce(tx, order) {
        const inserted = await tx.query(
          `INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (tenant, id) DO NOTHING`,
          [
            order.tenant,
            order.id,
            order.currency,
            JSON.stringify(order.items),
            order.note,
            order.totalCents,
            order.createdAt,
            order.etag,
          ],
        );
        if (inserted.rowCount === 1) return order;
        const { rows } = await tx.query<OrderRow>('SELECT * FROM orders WHERE tenant = $1 AND id = $2', [
          order.tenant,
          order.id,
        ]);
        return toOrder(rows[0]!);
      },
      async count(tenant) {
        const { rows } = await pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM orders WHERE tenant = $1',
          [tenant],
        );
        return Number(rows[0]?.n ?? 0);
      },
    },
    apiKeys: {
      async find(keyHash) {
        const { rows } = await pool.query<ApiKeyRecord>(
          'SELECT key_hash AS "keyHash", tenant, role, label FROM api_keys WHERE key_hash = $1',
          [keyHash],
        );
        return rows[0];
      },
      async add(key) {
        await store.transaction(async (tx) => {
          await tx.query(`DELETE FROM api_keys WHERE label = 'demo'`);
          await tx.query('INSERT INTO api_keys (key_hash, tenant, role, label) VALUES ($1, $2, $3, $4)', [
            key.keyHash,
            key.tenant,
            key.role,
            key.label,
          ]);
        });
      },
      async seedDemoKeys(keys) {
        return store.transaction(async (tx) => {
          // Several processes may start at once: the lock makes exactly one of them seed.
          await tx.query(`SELECT pg_advisory_xact_lock(hashtext('retrysafe:api_keys'))`);
          const { rows } = await tx.query('SELECT 1 FROM api_keys LIMIT 1');
          if (rows.length > 0) return false;
          for (const key of keys) {
            await tx.query('INSERT INTO api_keys (key_hash, tenant, role, label) VALUES ($1, $2, $3, $4)', [
              key.keyHash,
              key.tenant,
              key.role,
              key.label,
            ]);
          }
          return true;
        });
      },
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}

/** Concurrent CREATE … IF NOT EXISTS can collide between processes; an advisory lock serialises them. */
async function migrate(pool: Pool): Promise<void> {
  await pool.query(`SELECT pg_advisory_xact_lock(hashtext('retrysafe:service-schema'));\n${schema}`);
}

async function usernameOwner(tx: PoolClient, tenant: string, username: string): Promise<string | undefined> {
  const { rows } = await tx.query<{ id: string }>(
    'SELECT id FROM users WHERE tenant = $1 AND username = $2',
    [tenant, username],
  );
  return rows[0]?.id;
}

function userValues(user: StoredUser): unknown[] {
  return [
    user.tenant,
    user.id,
    user.username,
    user.email,
    user.age,
    user.bio,
    JSON.stringify(user.interests),
    user.version,
    user.createdAt,
    user.updatedAt,
    user.etag,
  ];
}

function toUser(row: UserRow): StoredUser & { seq: number } {
  return {
    seq: Number(row.seq),
    tenant: row.tenant,
    id: row.id,
    username: row.username,
    email: row.email,
    age: row.age,
    bio: row.bio,
    interests: row.interests,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    etag: row.etag,
  };
}

function toOrder(row: OrderRow): StoredOrder & { seq: number } {
  return {
    seq: Number(row.seq),
    tenant: row.tenant,
    id: row.id,
    currency: row.currency,
    items: row.items,
    note: row.note,
    totalCents: Number(row.total_cents),
    createdAt: row.created_at,
    etag: row.etag,
  };
}
