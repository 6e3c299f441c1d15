// The reference service's data on SQLite: users, orders and API keys in the same file as the
// idempotency records, so an order and its stored response commit in one transaction.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  openSqliteDatabase,
  runSqliteTransaction,
  type SqliteDatabase,
  SqliteIdempotencyStore,
  withSqliteWriteLock,
} from 'retrysafe/stores/sqlite';
import type { StoredOrder } from '../domain/orders.js';
import type { StoredUser } from '../domain/users.js';
import { type ApiKeyRecord, type ServiceData, toPage } from './types.js';

const schema = `
  CREATE TABLE IF NOT EXISTS users (
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
  );
  CREATE TABLE IF NOT EXISTS orders (
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
  );
  CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('writer', 'reader')),
    label TEXT NOT NULL
  );
`;

interface UserRow {
  seq: number;
  tenant: string;
  id: string;
  username: string;
  email: string;
  age: number | null;
  bio: string | null;
  interests: string;
  version: number;
  created_at: string;
  updated_at: string;
  etag: string;
}

interface OrderRow {
  seq: number;
  tenant: string;
  id: string;
  currency: string;
  items: string;
  note: string | null;
  total_cents: number;
  created_at: string;
  etag: string;
}

export function openSqliteServiceData(path: string): ServiceData<SqliteDatabase> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = openSqliteDatabase(path);
  db.exec(schema);
  const store = new SqliteIdempotencyStore({ database: db });
  const sql = prepare(db);

  return {
    store,
    transaction: (work) => runSqliteTransaction(db, work),
    users: {
      async get(tenant, id) {
        const row = sql.userById.get(tenant, id) as UserRow | undefined;
        return row && toUser(row);
      },
      async list(tenant, afterSeq, limit) {
        return toPage(
          sql.usersAfter.all(tenant, afterSeq, limit + 1) as UserRow[],
          limit,
          toUser,
          (row) => row.seq,
        );
      },
      async insert(_tx, user) {
        const clash = sql.userByUsername.get(user.tenant, user.username) as { id: string } | undefined;
        if (clash) return { ok: false, reason: 'username-taken', existingId: clash.id };
        if (sql.userById.get(user.tenant, user.id)) return { ok: false, reason: 'id-taken' };
        sql.insertUser.run(userParams(user));
        return { ok: true };
      },
      async replace(_tx, user, expectedEtag) {
        const clash = sql.userByUsername.get(user.tenant, user.username) as { id: string } | undefined;
        if (clash && clash.id !== user.id)
          return { ok: false, reason: 'username-taken', existingId: clash.id };
        const changed = sql.replaceUser.run({ ...userParams(user), expectedEtag }).changes;
        return changed === 1 ? { ok: true } : { ok: false, reason: 'stale' };
      },
      async delete(_tx, tenant, id, expectedEtag) {
        return sql.deleteUser.run(tenant, id, expectedEtag).changes === 1;
      },
    },
    orders: {
      async get(tenant, id) {
        const row = sql.orderById.get(tenant, id) as OrderRow | undefined;
        return row && toOrder(row);
      },
      async list(tenant, afterSeq, limit) {
        return toPage(
          sql.ordersAfter.all(tenant, afterSeq, limit + 1) as OrderRow[],
          limit,
          toOrder,
          (row) => row.seq,
        );
      },
      async insertOnce(_tx, order) {
        const inserted = sql.insertOrder.run({
          tenant: order.tenant,
          id: order.id,
          currency: order.currency,
          items: JSON.stringify(order.items),
          note: order.note,
          totalCents: order.totalCents,
          createdAt: order.createdAt,
          etag: order.etag,
        });
        if (inserted.changes === 1) return order;
        return toOrder(sql.orderById.get(order.tenant, order.id) as OrderRow);
      },
      async count(tenant) {
        return (sql.countOrders.get(tenant) as { n: number }).n;
      },
    },
    apiKeys: {
      async find(keyHash) {
        return sql.apiKey.get(keyHash) as ApiKeyRecord | undefined;
      },
      async add(key) {
        await runSqliteTransaction(db, () => {
          sql.deleteDemoKeys.run();
          sql.insertApiKey.run(key);
        });
      },
      async seedDemoKeys(keys) {
        return withSqliteWriteLock(
          db,
          db.transaction(() => {
            if ((sql.countApiKeys.get() as { n: number }).n > 0) return false;
            for (const key of keys) sql.insertApiKey.run(key);
            return true;
          }),
        );
      },
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      await store.close();
    },
  };
}

function prepare(db: SqliteDatabase) {
  return {
    userById: db.prepare('SELECT * FROM users WHERE tenant = ? AND id = ?'),
    userByUsername: db.prepare('SELECT id FROM users WHERE tenant = ? AND username = ?'),
    usersAfter: db.prepare('SELECT * FROM users WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?'),
    insertUser: db.prepare(`
      INSERT INTO users (tenant, id, username, email, age, bio, interests, version, created_at, updated_at, etag)
      VALUES (@tenant, @id, @username, @email, @age, @bio, @interests, @version, @createdAt, @updatedAt, @etag)`),
    replaceUser: db.prepare(`
      UPDATE users SET username = @username, email = @email, age = @age, bio = @bio, interests = @interests,
        version = @version, updated_at = @updatedAt, etag = @etag
      WHERE tenant = @tenant AND id = @id AND etag = @expectedEtag`),
    deleteUser: db.prepare('DELETE FROM users WHERE tenant = ? AND id = ? AND etag = ?'),
    orderById: db.prepare('SELECT * FROM orders WHERE tenant = ? AND id = ?'),
    ordersAfter: db.prepare('SELECT * FROM orders WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?'),
    countOrders: db.prepare('SELECT count(*) AS n FROM orders WHERE tenant = ?'),
    insertOrder: db.prepare(`
      INSERT INTO orders (tenant, id, currency, items, note, total_cents, created_at, etag)
      VALUES (@tenant, @id, @currency, @items, @note, @totalCents, @createdAt, @etag)
      ON CONFLICT (tenant, id) DO NOTHING`),
    apiKey: db.prepare('SELECT key_hash AS keyHash, tenant, role, label FROM api_keys WHERE key_hash = ?'),
    countApiKeys: db.prepare('SELECT count(*) AS n FROM api_keys'),
    insertApiKey: db.prepare(
      'INSERT INTO api_keys (key_hash, tenant, role, label) VALUES (@keyHash, @tenant, @role, @label)',
    ),
    deleteDemoKeys: db.prepare(`DELETE FROM api_keys WHERE label = 'demo'`),
  };
}

function userParams(user: StoredUser) {
  return {
    tenant: user.tenant,
    id: user.id,
    username: user.username,
    email: user.email,
    age: user.age,
    bio: user.bio,
    interests: JSON.stringify(user.interests),
    version: user.version,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    etag: user.etag,
  };
}

function toUser(row: UserRow): StoredUser & { seq: number } {
  return {
    seq: row.seq,
    tenant: row.tenant,
    id: row.id,
    username: row.username,
    email: row.email,
    age: row.age,
    bio: row.bio,
    interests: JSON.parse(row.interests) as string[],
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    etag: row.etag,
  };
}

function toOrder(row: OrderRow): StoredOrder & { seq: number } {
  return {
    seq: row.seq,
    tenant: row.tenant,
    id: row.id,
    currency: row.currency,
    items: JSON.parse(row.items) as StoredOrder['items'],
    note: row.note,
    totalCents: row.total_cents,
    createdAt: row.created_at,
    etag: row.etag,
  };
}
